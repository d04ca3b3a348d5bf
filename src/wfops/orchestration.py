"""Runs phases or a whole release and turns what happened into a RunSummary on disk."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wfops.phases import Phase, get_phase, phase_for_role
from wfops.preconditions import check_environment, require_backup
from wfops.progress import ProgressPrinter
from wfops.project import inventory_path, project_root, runs_dir
from wfops.results import PhaseResult, RunSummary, summary_status
from wfops.runner import EventCollector, PlaybookOutcome, follow_playbook, run_playbook
from wfops.secrets import is_secret
from wfops.streaming import WorkerTarget
from wfops.streaming import describe as describe_job
from wfops.vault import Vault

# The playbooks that take the release lock: an interrupted run of one of them is recorded and its lock released.
LOCKING_PLAYBOOKS = {
    "playbooks/release.yml": "release",
    "playbooks/rollback.yml": "rollback",
    "playbooks/deploy.yml": "deploy",
}
_command_vault = Vault()
# The reason of a phase a guard's error kept from running (the error itself is shown once, under the table).
_STOPPED = "the run stopped before it (see the error)"


def use_vault(vault: Vault) -> None:
    """The vault of this wfops command: every play it runs gets the same identities (a prompt is asked once)."""
    global _command_vault  # one vault per command, set once by the CLI
    _command_vault = vault


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
        if is_secret(key):
            raise SecretInExtraVarsError(key)


def phase_result(phase: Phase, outcome: PlaybookOutcome, earlier_failure: str | None) -> PhaseResult:
    """The result of one phase from the role's set_stats, its failures, its timing and how the play ended."""
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
    if outcome.stopped_by is not None and timing is not None:
        # It was running when the play stopped: whatever it did before its report is done, the rest is not.
        reported["error"] = f"interrupted ({outcome.stopped_by}) while it ran"
        return PhaseResult(phase.name, "interrupted", duration, reported)
    if earlier_failure is not None or not outcome.successful:
        return PhaseResult(phase.name, "skipped", 0.0, {"reason": f"not run: {earlier_failure or 'the run stopped'}"})
    return PhaseResult(phase.name, "failed", duration, {"error": f"the phase reported no result ({phase.stats_key})"})


def _guard_error(outcome: PlaybookOutcome) -> str | None:
    """A failure outside every phase role (a guard, the release lock) when no phase failed, or a run that died."""
    if any(phase_for_role(role) is not None for role in outcome.failures):
        return None
    for message in outcome.failures.values():
        return message
    if outcome.stopped_by is not None:
        return f"interrupted ({outcome.stopped_by})"
    if not outcome.successful and not outcome.failures:
        return f"ansible-runner ended {outcome.runner_status} (rc {outcome.rc}); see the run's artifacts"
    return None


def _first_failure(results: list[PhaseResult]) -> str | None:
    for result in results:
        if result.status in ("failed", "interrupted"):
            return f"{result.name} {result.status}"
    return None


def _preconditions(request: RunRequest, root: Path) -> None:
    """Bad input and a machine that cannot do it are found here, before any run dir or play exists."""
    check_extravars(request.extravars)
    check_environment(request.env, root, _command_vault)
    backup = request.extravars.get("rollback_backup_id")
    if backup:
        require_backup(str(backup), lambda: run_admin(request.env, "backups", ProgressPrinter(show_tasks=False)))


def execute(request: RunRequest, progress: ProgressPrinter, run_id: str | None = None) -> RunSummary:
    """Run the request's playbooks, then write summary.json and junit.xml into its run dir."""
    root = project_root()
    _preconditions(request, root)
    run_id = run_id or new_run_id()
    run_dir = runs_dir(root) / run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    started = _now()
    progress.check_mode = request.check_mode
    progress.run_started(run_id, request.env, request.command)
    extravars = {**request.extravars, "run_id": run_id, "wfops_run_dir": str(run_dir)}
    if request.release_ref:
        extravars["release_ref"] = request.release_ref

    record = request.to_record(started)

    def play(playbook: str, ident: str) -> PlaybookOutcome:
        return run_playbook(
            project_dir=root,
            private_data_dir=run_dir,
            playbook=root / playbook,
            inventory=inventory_path(request.env, root),
            extravars=extravars,
            check_mode=request.check_mode,
            progress=progress,
            ident=ident,
            run_id=run_id,
            vault=_command_vault,
            worker=request.worker,
            request=record,
        )

    results = _resumed_past(request)
    error: str | None = None
    outcome: PlaybookOutcome | None = None
    last_playbook = request.playbook
    if request.playbook is not None:
        # One playbook running several phases (release.yml, rollback.yml).
        outcome = play(request.playbook, Path(request.playbook).stem)
        error = _playbook_results(request, outcome, results)
    else:
        for index, phase in enumerate(request.phases, start=1):
            earlier = _first_failure(results) or (_STOPPED if error else None)
            if earlier is not None:
                results.append(PhaseResult(phase.name, "skipped", 0.0, {"reason": f"not run: {earlier}"}))
                continue
            outcome, last_playbook = play(phase.playbook, f"{index:02d}-{phase.name}"), phase.playbook
            error = error or _guard_error(outcome)
            results.append(phase_result(phase, outcome, _STOPPED if error else None))

    stopped_by = outcome.stopped_by if outcome else None
    if stopped_by is not None and last_playbook in LOCKING_PLAYBOOKS:
        kind = LOCKING_PLAYBOOKS[str(last_playbook)]
        recorded = _record_interruption(request, kind, root, run_id, run_dir, started, results, stopped_by, progress)
        error = recorded or error
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
        # A guard's error is shown once, under the table; the phases it stopped only point at it.
        results.append(phase_result(phase, outcome, _first_failure(results) or (_STOPPED if error else None)))
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
    stats = outcome.stats_data if outcome else {}
    stopped_by = outcome.stopped_by if outcome else None
    release_report = stats.get("wfops_release") or {}
    summary = RunSummary(
        run_id=run_id,
        env=request.env,
        status=summary_status(results, error, interrupted=stopped_by is not None),
        phases=results,
        started_at=started,
        finished_at=_now(),
        command=request.command,
        check_mode=request.check_mode,
        release_ref=request.release_ref,
        error=error,
        rollback_command=release_report.get("rollback_command"),
        refused=(stats.get("wfops_refusal") or {}).get("kind"),
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


def _record_interruption(
    request: RunRequest,
    kind: str,
    root: Path,
    run_id: str,
    run_dir: Path,
    started: str,
    results: list[PhaseResult],
    stopped_by: str,
    progress: ProgressPrinter,
) -> str | None:
    """The interrupted release or rollback goes into the ledger and its lock is released, once its processes are
    gone; None when that worked, else why the lock stays (the run's error says so)."""
    interrupted = next((r.name for r in results if r.status == "interrupted"), None)
    backup = next((r.result.get("id") for r in results if r.name == "backup" and r.status == "ok"), None)
    progress.note(f"wfops: {stopped_by}: recording the run as interrupted and releasing its lock")
    outcome = run_playbook(
        project_dir=root,
        private_data_dir=run_dir,
        playbook=root / "playbooks" / "interrupted.yml",
        inventory=inventory_path(request.env, root),
        extravars={
            "run_id": run_id,
            "release_ref": request.release_ref or "",
            "release_kind": kind,
            "release_interruption": {
                "started_at": datetime.fromisoformat(started).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "signal": stopped_by,
                "interrupted_phase": interrupted,
                "phases": {r.name: r.status for r in results},
                "backup_id": backup,
            },
        },
        check_mode=request.check_mode,
        progress=ProgressPrinter(show_tasks=False),
        ident="interrupted",
        # Its own processes must not count as the interrupted run's (it waits for those to end).
        run_id=f"cleanup-{run_id}",
        vault=_command_vault,
    )
    if outcome.successful:
        return None
    reason = next(iter(outcome.failures.values()), outcome.stopped_by or f"rc {outcome.rc}")
    return f"interrupted ({stopped_by}); its lock could not be released: {reason}"


class AdminError(RuntimeError):
    """An admin playbook (lock, history, backups) that failed; the message is Ansible's reason."""


def run_admin(
    env: str, action: str, progress: ProgressPrinter, extravars: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run playbooks/admin.yml for `action` (lock-status, lock-release, history, backups, freeze, unfreeze)."""
    root = project_root()
    check_environment(env, root, _command_vault)
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
        run_id=run_id,
        vault=_command_vault,
    )
    if not outcome.successful:
        ended = outcome.stopped_by or f"ansible-runner ended {outcome.runner_status}"
        reason = next(iter(outcome.failures.values()), ended)
        raise AdminError(f"wfops {action} on {env} failed: {reason}")
    return dict(outcome.stats_data.get("wfops_admin") or {})
