"""Runs phases or a whole release and turns what happened into a RunSummary on disk."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wfops.phases import Phase, get_phase, phase_for_role
from wfops.progress import ProgressPrinter
from wfops.project import inventory_path, project_root, runs_dir
from wfops.results import PhaseResult, RunSummary, summary_status
from wfops.runner import EventCollector, PlaybookOutcome, follow_playbook, run_playbook
from wfops.streaming import WorkerTarget
from wfops.streaming import describe as describe_job

_SECRET_LOOKING = re.compile(r"(password|passwd|secret|token|api_key|apikey|database_url|dsn)", re.I)


class SecretInExtraVarsError(ValueError):
    """A -e value that looks like a secret: it would be written to runs/<id>/env/extravars."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"-e {key}=...: secrets are not accepted on the command line (they would be stored in "
            "runs/); put them in group_vars/<env>/vault.yml or the environment"
        )


@dataclass
class RunRequest:
    """What the user asked for: which phases, where, and how."""

    env: str
    command: str
    phases: list[Phase]
    extravars: dict[str, Any] = field(default_factory=dict)
    check_mode: bool = False
    release_ref: str | None = None
    # Release phases not run because the release resumes after them.
    resumed_past: list[Phase] = field(default_factory=list)
    # One playbook that runs all the phases (release.yml, rollback.yml); None = each phase's own playbook.
    playbook: str | None = None
    # Run the playbooks through ansible-runner's streaming interface with their worker there (None: run them here).
    worker: WorkerTarget | None = None

    def to_record(self, started_at: str) -> dict[str, Any]:
        """What travels with a streamed job, so that `wfops attach` can rebuild this run's summary anywhere."""
        return {
            "env": self.env,
            "command": self.command,
            "phases": [phase.name for phase in self.phases],
            "check_mode": self.check_mode,
            "release_ref": self.release_ref,
            "resumed_past": [phase.name for phase in self.resumed_past],
            "playbook": self.playbook,
            "started_at": started_at,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], worker: WorkerTarget) -> RunRequest:
        return cls(
            env=record["env"],
            command=record["command"],
            phases=[get_phase(name) for name in record["phases"]],
            check_mode=bool(record["check_mode"]),
            release_ref=record.get("release_ref"),
            resumed_past=[get_phase(name) for name in record.get("resumed_past") or []],
            playbook=record.get("playbook"),
            worker=worker,
        )


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a short random suffix."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_extravars(extravars: dict[str, Any]) -> None:
    for key in extravars:
        if _SECRET_LOOKING.search(key):
            raise SecretInExtraVarsError(key)


def phase_result(phase: Phase, outcome: PlaybookOutcome, earlier_failure: str | None) -> PhaseResult:
    """The result of one phase from the role's set_stats, its failures and its timing."""
    reported = dict(outcome.stats_data.get(phase.stats_key) or {})
    timing = outcome.role_timings.get(phase.role)
    duration = float(reported.pop("duration_s", timing.duration_s if timing else 0.0) or 0.0)
    status = reported.pop("status", None)
    failure = outcome.failures.get(phase.role)
    if failure is not None:
        reported.setdefault("error", failure)
        return PhaseResult(phase.name, "failed", duration, reported)
    if status in ("ok", "failed", "skipped"):
        return PhaseResult(phase.name, status, duration, reported)
    if status is not None:
        reported["error"] = f"the role reported an unknown status {status!r}"
        return PhaseResult(phase.name, "failed", duration, reported)
    if earlier_failure is not None or not outcome.successful:
        reason = earlier_failure or "the run stopped before this phase"
        return PhaseResult(phase.name, "skipped", 0.0, {"reason": f"not run: {reason}"})
    return PhaseResult(phase.name, "failed", duration, {"error": f"the phase reported no result ({phase.stats_key})"})


def _guard_error(outcome: PlaybookOutcome) -> str | None:
    """A failure outside every phase role (a guard, the release lock) when no phase failed, or a run that died."""
    if any(phase_for_role(role) is not None for role in outcome.failures):
        return None
    for message in outcome.failures.values():
        return message
    if not outcome.successful and not outcome.failures:
        return f"ansible-runner ended {outcome.runner_status} (rc {outcome.rc}); see the run's artifacts"
    return None


def _first_failure(results: list[PhaseResult]) -> str | None:
    for result in results:
        if result.status == "failed":
            return f"{result.name} failed"
    return None


def execute(request: RunRequest, progress: ProgressPrinter, run_id: str | None = None) -> RunSummary:
    """Run the request's playbooks, then write summary.json and junit.xml into its run dir."""
    check_extravars(request.extravars)
    root = project_root()
    run_id = run_id or new_run_id()
    run_dir = runs_dir(root) / run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    started = _now()
    progress.run_started(run_id, request.env, request.command)
    extravars = {**request.extravars, "run_id": run_id, "wfops_run_dir": str(run_dir)}
    if request.release_ref:
        extravars["release_ref"] = request.release_ref

    results = _resumed_past(request)
    error: str | None = None
    outcome: PlaybookOutcome | None = None
    record = request.to_record(started)
    if request.playbook is not None:
        # One playbook running several phases (release.yml, rollback.yml).
        outcome = run_playbook(
            project_dir=root,
            private_data_dir=run_dir,
            playbook=root / request.playbook,
            inventory=inventory_path(request.env, root),
            extravars=extravars,
            check_mode=request.check_mode,
            progress=progress,
            ident=Path(request.playbook).stem,
            worker=request.worker,
            request=record,
        )
        error = _playbook_results(request, outcome, results)
    else:
        for index, phase in enumerate(request.phases, start=1):
            earlier = _first_failure(results) or error
            if earlier is not None:
                results.append(PhaseResult(phase.name, "skipped", 0.0, {"reason": f"not run: {earlier}"}))
                continue
            outcome = run_playbook(
                project_dir=root,
                private_data_dir=run_dir,
                playbook=root / phase.playbook,
                inventory=inventory_path(request.env, root),
                extravars=extravars,
                check_mode=request.check_mode,
                progress=progress,
                ident=f"{index:02d}-{phase.name}",
                worker=request.worker,
                request=record,
            )
            error = error or _guard_error(outcome)
            results.append(phase_result(phase, outcome, error))
    return _write_summary(request, run_id, run_dir, started, results, error, outcome)


def _resumed_past(request: RunRequest) -> list[PhaseResult]:
    return [
        PhaseResult(p.name, "skipped", 0.0, {"reason": "not re-run: the release resumed after it"})
        for p in request.resumed_past
    ]


def _playbook_results(request: RunRequest, outcome: PlaybookOutcome, results: list[PhaseResult]) -> str | None:
    """Append the results of the phases one playbook ran (release.yml, rollback.yml); returns the guard's error."""
    error = _guard_error(outcome)
    for phase in request.phases:
        results.append(phase_result(phase, outcome, _first_failure(results) or error))
    rollback = get_phase("rollback")
    if rollback not in request.phases and rollback.stats_key in outcome.stats_data:
        # The release rolled its code back by itself (release_auto_rollback).
        results.append(phase_result(rollback, outcome, None))
    return error


def _write_summary(
    request: RunRequest,
    run_id: str,
    run_dir: Path,
    started: str,
    results: list[PhaseResult],
    error: str | None,
    outcome: PlaybookOutcome | None,
) -> RunSummary:
    release_report = (outcome.stats_data.get("wfops_release") or {}) if outcome else {}
    summary = RunSummary(
        run_id=run_id,
        env=request.env,
        status=summary_status(results, error),
        phases=results,
        started_at=started,
        finished_at=_now(),
        command=request.command,
        check_mode=request.check_mode,
        release_ref=request.release_ref,
        error=error,
        rollback_command=release_report.get("rollback_command"),
    )
    summary.write_json(run_dir / "summary.json")
    summary.write_junit(run_dir / "junit.xml")
    return summary


def attach(worker: WorkerTarget, run_id: str, progress: ProgressPrinter) -> RunSummary:
    """Re-attach to a streamed run on its node: replay its events, follow the rest, write its summary here.
    A run of several playbooks (wfops run a b) is followed in its latest one: the controller that went away ran
    the sequence, so the playbooks after it never started."""
    job = describe_job(worker, run_id)
    request = RunRequest.from_record(job["request"], worker)
    run_dir = runs_dir(project_root()) / run_id
    progress.run_started(run_id, request.env, f"{request.command} (attached on {worker.url})")
    outcome = follow_playbook(worker, run_id, job["ident"], run_dir, EventCollector(progress))
    results = _resumed_past(request)
    if request.playbook is not None:
        error = _playbook_results(request, outcome, results)
    else:
        followed = next(p for p in request.phases if job["ident"].endswith(f"-{p.name}"))
        error = _guard_error(outcome)
        results.append(phase_result(followed, outcome, error))
    return _write_summary(request, run_id, run_dir, job["request"]["started_at"], results, error, outcome)


class AdminError(RuntimeError):
    """An admin playbook (lock, history, backups) that failed; the message is Ansible's reason."""


def run_admin(
    env: str, action: str, progress: ProgressPrinter, extravars: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run playbooks/admin.yml for `action` (lock-status, lock-release, history, backups, freeze, unfreeze)."""
    root = project_root()
    run_id = new_run_id()
    run_dir = runs_dir(root) / f"{run_id}-{action}"
    outcome = run_playbook(
        project_dir=root,
        private_data_dir=run_dir,
        playbook=root / "playbooks" / "admin.yml",
        inventory=inventory_path(env, root),
        extravars={**(extravars or {}), "run_id": run_id, "release_admin_action": action},
        check_mode=False,
        progress=progress,
        ident="admin",
    )
    if not outcome.successful:
        reason = next(iter(outcome.failures.values()), f"ansible-runner ended {outcome.runner_status}")
        raise AdminError(f"wfops {action} on {env} failed: {reason}")
    return dict(outcome.stats_data.get("wfops_admin") or {})
