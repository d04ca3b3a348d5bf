"""ansible-runner's events in, what the wrapper reports out: phases entered, their set_stats, failures, timing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wfops.phases import phase_for_role
from wfops.progress import ProgressPrinter

# Bookkeeping the live view leaves out even when it ran: it does nothing an SRE watches for.
QUIET_ACTIONS = {
    "assert",
    "set_fact",
    "set_stats",
    "include_role",
    "include_tasks",
    "import_role",
    "import_tasks",
    "meta",
    "validate_argument_spec",
}
# Roles a phase uses for its own bookkeeping (its report, a notification): they do not end the phase.
SHARED_ROLES = {"wfops_common", "notify"}
RESULT_EVENTS = {
    "runner_on_ok",
    "runner_on_failed",
    "runner_on_unreachable",
    "runner_item_on_ok",
    "runner_item_on_failed",
}
SKIPPED_EVENTS = {"runner_on_skipped"}


@dataclass
class RoleTiming:
    first_event: float
    last_event: float

    @property
    def duration_s(self) -> float:
        return round(self.last_event - self.first_event, 3)


def failure_message(event_data: dict[str, Any]) -> str:
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
    if not isinstance(created, str):
        return time.time()
    moment = datetime.fromisoformat(created)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()  # ansible-runner writes UTC


def _short_action(data: dict[str, Any]) -> str:
    return str(data.get("resolved_action") or data.get("task_action") or "").rsplit(".", 1)[-1]


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
        if role in SHARED_ROLES and self._current_role is not None:
            # A shared role used inside a phase (its report) does not end the phase.
            return
        self.finish_current_role()
        self._current_role = role
        phase = phase_for_role(role)
        if phase is not None:
            self._progress.phase_started(phase.name, phase.runbook_number)

    def finish_current_role(self, stopped: bool = False) -> None:
        """The current phase ended: with the status it reported; failed or interrupted when it reported none."""
        role = self._current_role
        if role is None:
            return
        self._current_role = None
        if stopped and role in self.role_timings:
            # It ran until the stop (no result event marked its last moment).
            self.role_timings[role].last_event = time.time()
        phase = phase_for_role(role)
        if phase is None:
            return
        reported = self.stats_data.get(phase.stats_key) or {}
        if role in self.outcome_failures:
            status = "failed"
        elif reported.get("status"):
            status = str(reported["status"])
        else:
            status = "interrupted" if stopped else "failed"
        self._progress.phase_finished(phase.name, status)

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        role = data.get("role") or ""
        task_id = str(data.get("task_uuid") or "")
        now = _event_time(event)
        if kind == "playbook_on_task_start":
            if role:
                self._enter_role(role)
            if _short_action(data) not in QUIET_ACTIONS:
                self._progress.task_started(task_id, str(data.get("task", "")))
        elif kind in RESULT_EVENTS:
            self._progress.task_ran(task_id)
        elif kind in SKIPPED_EVENTS:
            self._progress.task_skipped(task_id)
        if kind == "runner_on_ok" and _short_action(data) == "set_stats":
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
            self.outcome_failures.setdefault(role, failure_message(data))
        if kind == "playbook_on_stats":
            self.stats_data.update(data.get("artifact_data") or {})
            self.finish_current_role()
        # ansible-runner only keeps (and writes to disk) events for which the handler returns True.
        return True
