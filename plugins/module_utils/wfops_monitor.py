"""The runbook's first-24-hours checklist (phase 7) as eight signals, each ok / warn / fail with evidence and action."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any

from ansible.module_utils.wfops_invariants import evaluate_all
from ansible.module_utils.wfops_pg import quote_ident
from ansible.module_utils.wfops_smoke import sse_flow

# The runbook's table: signal -> where to check -> what to do.
ACTIONS = {
    "500 errors": "check for missing env vars or migration issues (Dokploy logs, the app's error log)",
    "slow queries": "check that the new migrations' indexes are in place (\\di, EXPLAIN the slow statement)",
    "RLS policy violations": "verify company_id is populated on all rows (wfops run verify; wfops run normalize)",
    "SSE connection failures": "check the Redis connection and the SSE endpoint /api/chatbot/stream",
    "client stats drift": "repair the cached stats: wfops run stats-repair --env ENV",
    "auth failures": "verify Better Auth's session table and the cookie domain",
    "chatbot errors": "check the SSE streaming endpoint and the chatbot tRPC router",
    "enum display issues": "verify the normalisation ran (wfops run normalize); check the UI's label mapping",
}
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)")


@dataclass
class Signal:
    name: str
    status: str  # ok | warn | fail
    evidence: str
    action: str
    examples: list[str] = field(default_factory=list)


@dataclass
class Thresholds:
    """count > warn -> warn; count > fail -> fail (per window)."""

    errors_500: tuple[int, int] = (0, 10)
    auth_failures: tuple[int, int] = (5, 50)
    chatbot_errors: tuple[int, int] = (0, 5)
    rls_violations: tuple[int, int] = (0, 0)
    slow_queries: tuple[int, int] = (0, 20)


def _judge(count: int, limits: tuple[int, int]) -> str:
    warn, fail = limits
    if count > fail:
        return "fail"
    if count > warn:
        return "warn"
    return "ok"


def read_log(argv: list[str], window_s: float) -> tuple[list[str], str | None]:
    """The app's log lines within the window (lines stamped with an older time are dropped)."""
    if not argv:
        return [], "no log command configured (monitor_log_command)"
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"the log command failed: {exc}"
    if result.returncode != 0:
        return [], f"the log command exited {result.returncode}: {result.stderr.strip()[:200]}"
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=window_s)
    lines = []
    for line in (result.stdout + result.stderr).splitlines():
        match = _STAMP.match(line.strip())
        if match:
            stamp = dt.datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=dt.UTC)
            if stamp < cutoff:
                continue
        lines.append(line)
    return lines, None


def log_signal(name: str, lines: list[str], pattern: str, limits: tuple[int, int], log_error: str | None) -> Signal:
    if log_error:
        return Signal(name, "warn", f"logs unavailable: {log_error}", ACTIONS[name])
    regex = re.compile(pattern)
    hits = [line for line in lines if regex.search(line)]
    return Signal(
        name,
        _judge(len(hits), limits),
        f"{len(hits)} matching log lines of {len(lines)} in the window",
        ACTIONS[name],
        [hit[:200] for hit in hits[:3]],
    )


def slow_query_signal(connection: Any, threshold_ms: float, limits: tuple[int, int]) -> Signal:
    name = "slow queries"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'pg_stat_statements'"
        )
        schema = cursor.fetchone()
        if schema is not None:
            cursor.execute(
                f"SELECT count(*), coalesce(max(mean_exec_time), 0) FROM {quote_ident(schema[0])}.pg_stat_statements"
                " WHERE mean_exec_time > %s",
                (threshold_ms,),
            )
            source = "pg_stat_statements (mean time)"
        else:
            cursor.execute(
                "SELECT count(*), coalesce(max(extract(epoch FROM now() - query_start) * 1000), 0)"
                " FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid()"
                " AND now() - query_start > make_interval(secs => %s / 1000.0)",
                (threshold_ms,),
            )
            source = "pg_stat_activity (running now; pg_stat_statements is not installed)"
        count, worst = cursor.fetchone()
    connection.rollback()
    return Signal(
        name,
        _judge(int(count), limits),
        f"{count} statements over {threshold_ms / 1000:g}s in {source}; worst {float(worst) / 1000:.1f}s",
        ACTIONS[name],
    )


def invariant_signals(connection: Any, invariants: list[dict[str, Any]]) -> list[Signal]:
    results = {r.name: r for r in evaluate_all(connection, invariants)}
    signals = []
    for name, members in (
        ("client stats drift", ("client_guest_count_accurate", "client_budget_accurate")),
        ("enum display issues", ("rsvp_values_canonical", "guest_side_values_canonical")),
    ):
        failing = [results[m] for m in members if m in results and not results[m].passed]
        checked = [m for m in members if m in results]
        evidence = "; ".join(f"{r.name}: {r.value}" for r in failing) or f"{', '.join(checked)} hold"
        examples = [str(e) for r in failing for e in r.examples[:3]]
        signals.append(Signal(name, "fail" if failing else "ok", evidence, ACTIONS[name], examples))
    return signals


@dataclass
class Settings:
    log_argv: list[str]
    window_s: float
    patterns: dict[str, str]
    thresholds: Thresholds
    slow_query_ms: float
    app_url: str
    sse_path: str
    sse_timeout_s: float
    invariants: list[dict[str, Any]]


def check_all(connection: Any, settings: Settings) -> list[Signal]:
    lines, log_error = read_log(settings.log_argv, settings.window_s)
    t = settings.thresholds
    p = settings.patterns
    sse = sse_flow(settings.app_url, settings.sse_path, None, settings.sse_timeout_s)[0]
    signals = [
        log_signal("500 errors", lines, p["errors_500"], t.errors_500, log_error),
        slow_query_signal(connection, settings.slow_query_ms, t.slow_queries),
        log_signal("RLS policy violations", lines, p["rls_violations"], t.rls_violations, log_error),
        Signal(
            "SSE connection failures",
            "ok" if sse.status == "pass" else "fail",
            sse.evidence,
            ACTIONS["SSE connection failures"],
        ),
        *invariant_signals(connection, settings.invariants),
        log_signal("auth failures", lines, p["auth_failures"], t.auth_failures, log_error),
        log_signal("chatbot errors", lines, p["chatbot_errors"], t.chatbot_errors, log_error),
    ]
    order = list(ACTIONS)
    return sorted(signals, key=lambda s: order.index(s.name))


def as_dicts(signals: list[Signal]) -> list[dict[str, Any]]:
    return [asdict(signal) for signal in signals]
