"""The scenarios (issue 9's five, the fifth locally and over SSH): wfops and its bare counterpart back to back, with the
concurrent writer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import baseline
from bench.sandbox import MIGRATED, PRISTINE, Sandbox, log
from bench.writer import Writer

if TYPE_CHECKING:
    from bench.ssh_host import SshRelease

SCENARIOS = ("release", "normalize", "backup", "rollback", "migrate", "overhead", "overhead-ssh")
# Scenarios on the small sandbox only: when nothing else is asked, the big one is not brought up.
SMALL_SCENARIOS = frozenset({"overhead", "overhead-ssh"})


@dataclass
class Measure:
    """One measured command (or bare sequence) in one run."""

    scenario: str
    variant: str  # wfops | bare
    run: int
    wall_s: float
    ok: bool
    phases: dict[str, float] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)
    writer: dict[str, Any] = field(default_factory=dict)
    load_start: float = 0.0
    load_end: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    guests: int = 0  # the sandbox's size (the curve has several)


@dataclass
class Context:
    sandbox: Sandbox
    work: Path
    ids: list[str]
    migrations_sql: Path
    owner: str
    small: Sandbox | None = None
    small_ids: list[str] = field(default_factory=list)
    ssh: SshRelease | None = None


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _measure(
    scenario: str, variant: str, run: int, sandbox: Sandbox, ids: list[str], body: Callable[[Measure], None]
) -> Measure:
    measure = Measure(scenario, variant, run, wall_s=0.0, ok=True, load_start=_load())
    log(f"run {run}: {scenario} / {variant} ...")
    started = time.perf_counter()
    with Writer(sandbox.ops_url, ids) as writer:
        try:
            body(measure)
        except Exception as exc:  # recorded in RESULTS.md; the other scenarios go on
            measure.ok = False
            measure.error = " ".join(str(exc).split())[:600]
        measure.wall_s = round(time.perf_counter() - started, 3)
    measure.writer = writer.stats().as_dict()
    measure.load_end = _load()
    log(
        f"run {run}: {scenario} / {variant}: {measure.wall_s:.2f}s {'ok' if measure.ok else 'FAILED'}, writer max "
        f"{measure.writer['max_ms']} ms p99 {measure.writer['p99_ms']} ms ({measure.writer['writes']} writes, "
        f"{measure.writer['errors']} errors){'' if measure.ok else ': ' + str(measure.error)}"
    )
    return measure


def _wfops(sandbox: Sandbox, measure: Measure, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = sandbox.wfops(*args, "--json", extra_env=env)
    try:
        summary: dict[str, Any] = json.loads(done.stdout)
    except ValueError as exc:
        raise RuntimeError(f"wfops {args[0]} exited {done.returncode} without a summary: {done.stderr[-800:]}") from exc
    measure.phases = {p["name"]: float(p["duration_s"]) for p in summary["phases"] if p["status"] != "skipped"}
    measure.extra["run_id"] = summary.get("run_id")
    if summary.get("status") != "successful":
        failed = [f"{p['name']}: {str(p.get('result'))[:300]}" for p in summary["phases"] if p["status"] == "failed"]
        raise RuntimeError(f"wfops {args[0]} {summary.get('status')}: {summary.get('error')} {failed}")
    return summary


def _result(summary: dict[str, Any], phase: str) -> dict[str, Any]:
    return next((p.get("result") or {}) for p in summary["phases"] if p["name"] == phase)


def _reset(sandbox: Sandbox, template: str, owner: str) -> None:
    sandbox.restore(template, owner)
    sandbox.reset_host()


def release_and_rollback(ctx: Context, run: int, wanted: set[str]) -> list[Measure]:
    """Scenario 1 (release) and 4 (database rollback of that release): wfops, then the bare commands."""
    out: list[Measure] = []
    sandbox = ctx.sandbox
    order = ["wfops", "bare"] if run % 2 else ["bare", "wfops"]
    for variant in order:
        _reset(sandbox, PRISTINE, ctx.owner)
        if variant == "wfops":
            backup_id: dict[str, str] = {}

            def release(m: Measure, backup_id: dict[str, str] = backup_id) -> None:
                summary = _wfops(
                    sandbox,
                    m,
                    "release",
                    "--env",
                    "local",
                    "--ref",
                    f"bench-{run}-{time.time_ns()}",
                    "--from",
                    "backup",
                )
                backup_id["id"] = str(_result(summary, "backup").get("id"))

            out.append(_measure("release", variant, run, sandbox, ctx.ids, release))
            if "rollback" in wanted and out[-1].ok:

                def rollback(m: Measure, backup_id: dict[str, str] = backup_id) -> None:
                    bid = backup_id["id"]
                    summary = _wfops(
                        sandbox, m, "rollback", "--env", "local", "--database", "--backup", bid, "--confirm", bid
                    )
                    database = _result(summary, "rollback").get("database") or {}
                    m.extra["restore_s"] = database.get("restore_s")
                    m.extra["rows_lost"] = database.get("rows_lost")

                out.append(_measure("rollback", variant, run, sandbox, ctx.ids, rollback))
        else:

            def bare_release(m: Measure) -> None:
                timed = baseline.release(sandbox, ctx.work, ctx.migrations_sql)
                m.steps, m.extra["notes"] = timed.steps, timed.notes

            out.append(_measure("release", variant, run, sandbox, ctx.ids, bare_release))
            if "rollback" in wanted and out[-1].ok:

                def bare_rollback(m: Measure) -> None:
                    timed = baseline.Timed()
                    baseline.pg_dump(timed, sandbox, ctx.work / "bare-safety.dump", "pg_dump -Fc (safety)")
                    baseline.restore(timed, sandbox, ctx.work / "bare-release.dump")
                    m.steps, m.extra["notes"] = timed.steps, timed.notes

                out.append(_measure("rollback", variant, run, sandbox, ctx.ids, bare_rollback))
    if "release" not in wanted:
        out = [m for m in out if m.scenario != "release"]
    return out


def normalize(ctx: Context, run: int) -> list[Measure]:
    """Scenario 2: wfops's batched normalisation vs the four plain UPDATEs, both from the migrated copy."""
    out: list[Measure] = []
    sandbox = ctx.sandbox
    for variant in ["wfops", "bare"] if run % 2 else ["bare", "wfops"]:
        _reset(sandbox, MIGRATED, ctx.owner)
        if variant == "wfops":

            def body(m: Measure) -> None:
                summary = _wfops(sandbox, m, "run", "normalize", "--env", "local")
                result = _result(summary, "normalize")
                m.extra["rows"] = result.get("rows")
                m.extra["max_batch_ms"] = max(
                    (float(s.get("max_batch_ms") or 0) for s in result.get("sections", [])), default=None
                )

        else:

            def body(m: Measure) -> None:
                timed = baseline.Timed()
                baseline.normalize(timed, sandbox, ctx.work)
                m.steps, m.extra["notes"] = timed.steps, timed.notes

        out.append(_measure("normalize", variant, run, sandbox, ctx.ids, body))
    return out


def backup(ctx: Context, run: int) -> list[Measure]:
    """Scenario 3: the backup phase (dump + verify + manifest) vs a bare pg_dump --format=custom."""
    out: list[Measure] = []
    sandbox = ctx.sandbox
    _reset(sandbox, PRISTINE, ctx.owner)
    for variant in ["wfops", "bare"] if run % 2 else ["bare", "wfops"]:
        if variant == "wfops":

            def body(m: Measure) -> None:
                summary = _wfops(sandbox, m, "run", "backup", "--env", "local")
                result = _result(summary, "backup")
                m.extra["size_bytes"] = result.get("size_bytes")
                m.extra["dump_duration_s"] = result.get("dump_duration_s")
                m.extra.update(_free_disk_estimate(sandbox))

        else:

            def body(m: Measure) -> None:
                timed = baseline.Timed()
                archive = ctx.work / "bare-backup.dump"
                baseline.pg_dump(timed, sandbox, archive)
                m.steps, m.extra["size_bytes"] = timed.steps, archive.stat().st_size

        out.append(_measure("backup", variant, run, sandbox, ctx.ids, body))
    return out


def _free_disk_estimate(sandbox: Sandbox) -> dict[str, Any]:
    """What the backup tool's free-disk check estimates for this database (its own dry run, after the measure)."""
    host = sandbox.directory / "host"
    done = subprocess.run(
        [sys.executable, str(host / "usr/local/bin/weddingflo-backup"), "--env-file",
         str(host / "etc/weddingflo-backup/backup.env"), "create", "--dry-run"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return {"estimate_error": done.stderr.strip()[-300:]}
    estimate = json.loads(done.stdout)
    return {
        "table_bytes": estimate.get("table_bytes"),
        "estimated_size_bytes": estimate.get("estimated_size_bytes"),
        "database_bytes": sandbox.size(),
    }


def migrate(ctx: Context, run: int) -> list[Measure]:
    """The pending migrations from the pristine copy: `wfops run migrate` vs `psql -1`, the writer's stall in both."""
    out: list[Measure] = []
    sandbox = ctx.sandbox
    for variant in ["wfops", "bare"] if run % 2 else ["bare", "wfops"]:
        _reset(sandbox, PRISTINE, ctx.owner)
        if variant == "wfops":

            def body(m: Measure) -> None:
                _wfops(sandbox, m, "run", "migrate", "--env", "local")

        else:

            def body(m: Measure) -> None:
                timed = baseline.Timed()
                baseline.migrate(timed, sandbox, ctx.migrations_sql)
                m.steps = timed.steps

        out.append(_measure("migrate", variant, run, sandbox, ctx.ids, body))
    return out


def _small_release(small: Sandbox, m: Measure, ref: str, env: dict[str, str] | None = None) -> None:
    """The release from its backup phase on: scenario 5 excludes preflight (the app's own checks)."""
    _wfops(small, m, "release", "--env", "local", "--ref", ref, "--from", "backup", env=env)


def overhead(ctx: Context, run: int) -> list[Measure]:
    """Scenario 5: the whole release (preflight excluded) on the small sandbox, locally; the bare script beside."""
    small = ctx.small
    if small is None:
        return []
    owner = small.owner()
    out: list[Measure] = []
    migrations_sql = ctx.work / "small-migrations.sql"
    for variant in ["wfops", "bare"] if run % 2 else ["bare", "wfops"]:
        _reset(small, PRISTINE, owner)
        if variant == "wfops":

            def body(m: Measure) -> None:
                _small_release(small, m, f"bench-small-{run}-{time.time_ns()}")

        else:

            def body(m: Measure) -> None:
                if not migrations_sql.exists():
                    baseline.migrations_script(small, migrations_sql)
                timed = baseline.release(small, ctx.work, migrations_sql)
                m.steps = timed.steps

        out.append(_measure("overhead", variant, run, small, ctx.small_ids, body))
    return out


def overhead_ssh(ctx: Context, run: int) -> list[Measure]:
    """Scenario 5 over SSH: the same release on the small sandbox, through a project copy whose `local` host is
    reached as `deploy` over a loopback sshd, with become (sudo) for the backup user and root's files."""
    small, ssh = ctx.small, ctx.ssh
    if small is None or ssh is None:
        return []
    small.restore(PRISTINE, small.owner())
    small.reset_host(ssh.host.host_dir)

    def body(m: Measure) -> None:
        _small_release(small, m, f"bench-ssh-{run}-{time.time_ns()}", ssh.env)
        m.extra.update(ssh.evidence())

    return [_measure("overhead-ssh", "wfops", run, small, ctx.small_ids, body)]
