"""The results of a run: per-phase outcomes, summary.json, junit.xml and the closing table."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from xml.etree import ElementTree

from wfops.ledger import Entry, Serving

# interrupted: the phase was running when the run was stopped (Ctrl-C, SIGTERM, its process killed).
PhaseStatus = Literal["ok", "failed", "skipped", "interrupted"]
RunStatus = Literal["successful", "failed", "interrupted"]


@dataclass
class PhaseResult:
    """What one phase did: its status, how long it took, and the facts it reported."""

    name: str
    status: PhaseStatus
    duration_s: float
    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunSummary:
    """One wfops run: the phases it ran, in order, and the overall status."""

    run_id: str
    env: str
    status: RunStatus
    phases: list[PhaseResult]
    started_at: str
    finished_at: str
    command: str
    check_mode: bool = False
    release_ref: str | None = None
    error: str | None = None
    # After a failed release: the commands (wfops, ansible-playbook) that roll back what it changed, as printed.
    rollback_command: list[str] | None = None
    # The run was refused before anything changed: "input" (bad input, exit 2).
    refused: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        phases = [PhaseResult(**phase) for phase in data.get("phases", [])]
        command = data.get("rollback_command")
        if isinstance(command, str):  # summaries written before it was a list joined its commands with "|"
            command = [part.strip() for part in command.split("|") if part.strip()]
        return cls(**{**data, "phases": phases, "rollback_command": command})

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")

    def write_junit(self, path: Path) -> None:
        path.write_bytes(junit_xml(self))


def summary_status(phases: list[PhaseResult], error: str | None, interrupted: bool = False) -> RunStatus:
    """A run succeeds when nothing failed, no guard stopped it and nobody stopped it."""
    if interrupted or any(phase.status == "interrupted" for phase in phases):
        return "interrupted"
    if error is not None or any(phase.status == "failed" for phase in phases):
        return "failed"
    return "successful"


def _phase_message(phase: PhaseResult) -> str:
    """One line for the table: why it failed, why it was skipped, or the role's own summary."""
    key = {"failed": "error", "interrupted": "error", "skipped": "reason"}.get(phase.status, "summary")
    return str(phase.result.get(key) or phase.result.get("summary") or "")


def junit_xml(summary: RunSummary) -> bytes:
    """JUnit XML with one test case per phase, the shape CI systems display."""
    failures = sum(phase.status in ("failed", "interrupted") for phase in summary.phases)
    skipped = sum(phase.status == "skipped" for phase in summary.phases)
    suite = ElementTree.Element(
        "testsuite",
        name=f"wfops.{summary.env}",
        tests=str(len(summary.phases)),
        failures=str(failures),
        errors="1" if summary.error else "0",
        skipped=str(skipped),
        time=f"{sum(phase.duration_s for phase in summary.phases):.3f}",
        timestamp=summary.started_at,
    )
    for phase in summary.phases:
        case = ElementTree.SubElement(
            suite,
            "testcase",
            classname=f"wfops.{summary.env}",
            name=phase.name,
            time=f"{phase.duration_s:.3f}",
        )
        message = _phase_message(phase)
        if phase.status in ("failed", "interrupted"):
            ElementTree.SubElement(case, "failure", message=message or f"phase {phase.status}")
        elif phase.status == "skipped":
            ElementTree.SubElement(case, "skipped", message=message)
        ElementTree.SubElement(case, "system-out").text = json.dumps(phase.result, sort_keys=True)
    if summary.error:
        case = ElementTree.SubElement(suite, "testcase", classname=f"wfops.{summary.env}", name="run")
        ElementTree.SubElement(case, "error", message=summary.error)
    ElementTree.indent(suite)
    return ElementTree.tostring(suite, encoding="utf-8", xml_declaration=True) + b"\n"


_MARKS = {"ok": "ok", "failed": "FAILED", "skipped": "skipped", "interrupted": "INTERRUPTED"}


def render_table(summary: RunSummary) -> str:
    """The closing table printed on the terminal."""
    rows = [("phase", "status", "time", "details")]
    for phase in summary.phases:
        rows.append((phase.name, _MARKS[phase.status], f"{phase.duration_s:.1f}s", _phase_message(phase)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths) + "  -------")
    verdict = summary.status.upper()
    header = f"wfops {summary.command} · run {summary.run_id} · env {summary.env}"
    if summary.check_mode:
        header += " · check mode (dry run)"
    footer = [*_signal_lines(summary), f"result: {verdict}"]
    if summary.error:
        footer.append(f"error: {summary.error}")
    if summary.rollback_command:
        footer.append("to roll back:")
        footer.extend(f"  {command}" for command in summary.rollback_command)
    return "\n".join([header, "", *[line.rstrip() for line in lines], "", *footer])


def _signal_lines(summary: RunSummary) -> list[str]:
    """The monitor's signals, each with its status and evidence (and the action when it is not ok)."""
    lines: list[str] = []
    for phase in summary.phases:
        signals = phase.result.get("signals") or []
        if not signals:
            continue
        rows = [(str(s.get("status")).upper(), str(s.get("name")), str(s.get("evidence", ""))) for s in signals]
        width = max(len(name) for _, name, _ in rows)
        lines.append(f"{phase.name} signals:")
        for (status, name, evidence), signal in zip(rows, signals, strict=True):
            action = f" -> {signal['action']}" if status != "OK" and signal.get("action") else ""
            lines.append(f"  {status:<4}  {name:<{width}}  {evidence}{action}")
        lines.append("")
    return lines


def render_history(entries: list[Entry], serving: Serving | None = None) -> str:
    """The host's ledger, newest last: who released or rolled back what, when, with which backup; and what serves now
    (its release's row is marked `*` in the column `now`, and the last line names it)."""
    if not entries:
        return "no releases or rollbacks recorded yet"
    rows = [("finished (UTC)", "kind", "ref", "now", "who", "status", "backup", "deployment", "run", "notes")]
    for entry in entries:
        deployment = entry.serving or entry.deployed
        status = str(entry.status or "") + (f" in {entry.failed_phase}" if entry.failed_phase else "")
        serves = serving is not None and entry.kind in ("release", "deploy") and entry.run_id == serving.release_run
        ref = entry.ref or ("(database only)" if entry.kind == "rollback" else "-")
        rows.append(
            (
                str(entry.finished_at or ""),
                str(entry.kind),
                f"-> {ref}" if entry.kind == "rollback" and entry.ref else str(ref),
                "*" if serves else "",
                str(entry.who or ""),
                status,
                _backup(entry),
                str((deployment.deployment_id if deployment else None) or "-"),
                str(entry.run_id or ""),
                _audit_note(entry),
            )
        )
    lines = [_columns(rows)]
    if serving is not None:
        reported = f", reporting {serving.reported}" if serving.reported else ""
        lines.append(f"\n* serving now: {serving.describe()}{reported}")
    return "\n".join(lines)


def _backup(entry: Entry) -> str:
    if entry.kind == "rollback" and entry.backup_id:
        return f"restored {entry.backup_id}" if entry.restored_database else f"{entry.backup_id} (not restored)"
    return entry.backup_id or "-"


def _audit_note(entry: Entry) -> str:
    """What let this run through or what it changed: its staging run, every override, a freeze's reason, a resume."""
    notes = [f"staged in {entry.staged_run}"] if entry.staged_run else []
    notes += [f"OVERRIDE {o.get('rule')}: {o.get('reason')}" for o in entry.overrides]
    if entry.kind in ("freeze", "unfreeze") and entry.reason:
        notes.append(entry.reason + (f" (until {entry.until})" if entry.until else ""))
    if entry.resumed_from:
        notes.append(f"resumed {entry.resumed_from}")
    if entry.rolled_back_run and entry.kind == "rollback":
        notes.append(f"left {entry.rolled_back_run}")
    return "; ".join(notes) or "-"


def render_backups(backups: list[dict[str, Any]], notes: list[str] | None = None) -> str:
    """The host's backups, newest first: where each one is (local, offsite, both) and each copy's check.

    `local` is the last verification of the archive on the host (`not here` when only offsite has it); `offsite` is
    `verified` (its download matched the manifest), `unverified` (catalogued, not downloaded since), `MISMATCH` (do
    not use it) or `-` (no offsite copy). `notes` are the tool's own remarks (an offsite catalogue not refreshed).
    """
    rows = [("id", "created (UTC)", "reason", "size", "where", "local", "offsite", "release")]
    for backup in backups:
        offsite = backup.get("offsite") or {}
        rows.append(
            (
                str(backup.get("id")),
                str(backup.get("created_at")),
                str(backup.get("reason")),
                f"{(backup.get('size_bytes') or 0) / 1024 / 1024:.1f} MB",
                "+".join(backup.get("locations") or []) or "nowhere",
                str(backup.get("verification")),
                str(offsite.get("verification") or "-"),
                str(backup.get("release_ref") or ""),
            )
        )
    table = _columns(rows) if backups else "no backups"
    return "\n".join([table, *(notes or [])])


def _columns(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )
