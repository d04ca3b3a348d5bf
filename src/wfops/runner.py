"""The ansible-runner driver: one playbook in, its events and set_stats results out."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import ansible_runner

from wfops import streaming
from wfops.phases import phase_for_role
from wfops.progress import ProgressPrinter

# Environment variables that may hold secrets. ansible-runner records the whole environment in the
# run's `command` artifact, so these never reach it; secrets come from the vault or sandbox files.
_SECRET_ENV = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|DATABASE_URL|DSN|PGPASS)", re.I)


@contextmanager
def environment_without_secrets() -> Iterator[list[str]]:
    """Temporarily remove secret-looking variables from os.environ; yields their names."""
    removed = {key: os.environ.pop(key) for key in list(os.environ) if _SECRET_ENV.search(key)}
    try:
        yield sorted(removed)
    finally:
        os.environ.update(removed)


@dataclass
class RoleTiming:
    first_event: float
    last_event: float

    @property
    def duration_s(self) -> float:
        return round(self.last_event - self.first_event, 3)


@dataclass
class PlaybookOutcome:
    """What one ansible-runner invocation produced, reduced to what wfops reports."""

    runner_status: str
    rc: int
    stats_data: dict[str, Any] = field(default_factory=dict)
    # The first failure message per role ("" is a task outside any role, e.g. a play's guard).
    failures: dict[str, str] = field(default_factory=dict)
    role_timings: dict[str, RoleTiming] = field(default_factory=dict)
    artifact_dir: Path | None = None

    @property
    def successful(self) -> bool:
        return self.runner_status == "successful" and self.rc == 0


def _failure_message(event_data: dict[str, Any]) -> str:
    res = event_data.get("res") or {}
    message = res.get("msg") or res.get("reason") or "task failed"
    stderr_lines = [line for line in str(res.get("stderr") or "").splitlines() if line.strip()]
    if stderr_lines and message in ("non-zero return code", "task failed"):
        # A command's own last words say more than Ansible's "non-zero return code".
        message = stderr_lines[-1]
    task = event_data.get("task", "")
    return f"{task}: {message}" if task else str(message)


def _event_time(event: dict[str, Any]) -> float:
    """When the event happened (its `created`): a re-attached run replays its events long after they happened."""
    created = event.get("created")
    return datetime.fromisoformat(created).timestamp() if isinstance(created, str) else time.time()


class EventCollector:
    """ansible-runner's event_handler: follows roles, failures and set_stats as events arrive."""

    def __init__(self, progress: ProgressPrinter) -> None:
        self.outcome_failures: dict[str, str] = {}
        self.role_timings: dict[str, RoleTiming] = {}
        self.stats_data: dict[str, Any] = {}
        self._progress = progress
        self._current_role: str | None = None

    def _enter_role(self, role: str) -> None:
        if role == self._current_role:
            return
        if phase_for_role(role) is None and self._current_role is not None:
            # A shared role used inside a phase (its report) does not end the phase.
            return
        self.finish_current_role()
        self._current_role = role
        phase = phase_for_role(role)
        if phase is not None:
            self._progress.phase_started(phase.name, phase.runbook_number)

    def finish_current_role(self) -> None:
        role = self._current_role
        if role is None:
            return
        self._current_role = None
        phase = phase_for_role(role)
        if phase is None:
            return
        reported = self.stats_data.get(phase.stats_key) or {}
        status = "failed" if role in self.outcome_failures else reported.get("status", "ok")
        self._progress.phase_finished(phase.name, str(status))

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        role = data.get("role") or ""
        now = _event_time(event)
        if kind == "playbook_on_task_start":
            if role:
                self._enter_role(role)
            task = str(data.get("task", ""))
            if not task.startswith("Validating arguments against arg spec"):
                self._progress.task_started(task)
        if kind == "runner_on_ok" and str(data.get("task_action", "")).endswith("set_stats"):
            # The role's report arrives here first; playbook_on_stats repeats it at the very end.
            reported = ((data.get("res") or {}).get("ansible_stats") or {}).get("data") or {}
            self.stats_data.update(reported)
        # Time spent in shared roles (a phase's report) counts for the phase; failures stay with their own role,
        # so a release's closing "fail" after a rolled-back phase does not mark that phase failed.
        timed_role = self._current_role if phase_for_role(role) is None and self._current_role else role
        if timed_role and kind.startswith(("runner_", "playbook_on_task_start")):
            timing = self.role_timings.setdefault(timed_role, RoleTiming(now, now))
            timing.last_event = now
        failed = kind in ("runner_on_failed", "runner_item_on_failed", "runner_on_unreachable")
        if failed and not data.get("ignore_errors"):
            self.outcome_failures.setdefault(role, _failure_message(data))
        if kind == "playbook_on_stats":
            self.stats_data.update(data.get("artifact_data") or {})
            self.finish_current_role()
        # ansible-runner only keeps (and writes to disk) events for which the handler returns True.
        return True


def run_playbook(
    *,
    project_dir: Path,
    private_data_dir: Path,
    playbook: Path,
    inventory: Path,
    extravars: dict[str, Any],
    check_mode: bool,
    progress: ProgressPrinter,
    ident: str,
    worker: streaming.WorkerTarget | None = None,
    request: dict[str, Any] | None = None,
) -> PlaybookOutcome:
    """Run one playbook through ansible_runner.run with an AWX-style private data dir, or through the streaming
    interface with its worker on `worker` (`request` travels with it, for `wfops attach`)."""
    private_data_dir.mkdir(parents=True, exist_ok=True)
    # The venv's ansible-playbook must be found even when wfops runs without an activated venv.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    collector = EventCollector(progress)
    if worker is not None:
        stream = streaming.transmit(
            playbook=str(playbook.relative_to(project_dir)),
            inventory=str(inventory.relative_to(project_dir)),
            request=request or {},
            extravars=extravars,
            envvars=_envvars(project_dir),
            cmdline=_cmdline(check_mode),
            ident=ident,
        )
        run_id = str(extravars["run_id"])
        streaming.start(worker, run_id, ident, stream)
        return follow_playbook(worker, run_id, ident, private_data_dir, collector)
    with environment_without_secrets():
        runner = _run(private_data_dir, project_dir, playbook, inventory, extravars, check_mode, ident, collector)
    return _outcome(collector, str(runner.status), runner.rc, private_data_dir / "artifacts" / ident)


def follow_playbook(
    worker: streaming.WorkerTarget, run_id: str, ident: str, private_data_dir: Path, collector: EventCollector
) -> PlaybookOutcome:
    """Follow a streamed playbook on its node from its first event (a first run, or wfops attach) to its end."""
    streamed = streaming.follow_and_process(worker, run_id, ident, private_data_dir, collector)
    return _outcome(collector, streamed.status, streamed.rc, private_data_dir / "artifacts" / ident)


def _outcome(collector: EventCollector, status: str, rc: int | None, artifact_dir: Path) -> PlaybookOutcome:
    collector.finish_current_role()
    return PlaybookOutcome(
        runner_status=status,
        rc=int(rc if rc is not None else 1),
        stats_data=collector.stats_data,
        failures=collector.outcome_failures,
        role_timings=collector.role_timings,
        artifact_dir=artifact_dir,
    )


def _envvars(project_dir: Path) -> dict[str, str]:
    # WFOPS_CONTROLLER_PID lets a later run tell a lock left by a killed wfops from one still in use.
    return {
        "ANSIBLE_CONFIG": str(project_dir / "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
        "WFOPS_CONTROLLER_PID": str(os.getpid()),
    }


def _cmdline(check_mode: bool) -> str | None:
    return "--check --diff" if check_mode else None


def _run(
    private_data_dir: Path,
    project_dir: Path,
    playbook: Path,
    inventory: Path,
    extravars: dict[str, Any],
    check_mode: bool,
    ident: str,
    collector: EventCollector,
) -> Any:
    return ansible_runner.run(
        private_data_dir=str(private_data_dir),
        project_dir=str(project_dir),
        playbook=str(playbook),
        inventory=str(inventory),
        extravars=extravars,
        envvars=_envvars(project_dir),
        cmdline=_cmdline(check_mode),
        ident=ident,
        event_handler=collector,
        quiet=True,
        # Keep the process environment (which may hold DATABASE_URL) out of env/ and the command artifact.
        suppress_env_files=True,
    )
