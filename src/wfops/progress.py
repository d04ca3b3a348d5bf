"""Progress of a run on the terminal (stderr, so stdout can carry JSON): the live view an SRE reads at 3 a.m.

It shows each phase and the tasks that ran in it, nothing else: a task appears once it returned a result that
was not "skipped", or once it has been running for a moment (a long migration shows while it runs). Skipped
tasks never appear; a task name's closing "(..., in check mode)" — what the task does in a dry run — is shown
only in a dry run.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from typing import TextIO

# A task still running after this long is shown before its result arrives.
SHOW_RUNNING_AFTER_S = 1.5
_CHECK_MODE_NOTE = re.compile(r"\s*\([^()]*\bcheck mode\)\s*$")


def shown_task_name(task: str, check_mode: bool) -> str:
    """The task's name as the live view prints it: the check-mode note only in a dry run."""
    return task if check_mode else _CHECK_MODE_NOTE.sub("", task)


class ProgressPrinter:
    """Prints phase starts, the tasks that ran and phase ends as the run's events arrive."""

    def __init__(self, stream: TextIO | None = None, show_tasks: bool = True, check_mode: bool = False) -> None:
        self._stream = stream or sys.stderr
        self._show_tasks = show_tasks
        self.check_mode = check_mode
        self._phase_started: dict[str, float] = {}
        self._lock = threading.Lock()
        # The task that started last and has not been shown yet: (its id, its name, the timer that shows it).
        self._pending: tuple[str, str, threading.Timer] | None = None
        self._shown: set[str] = set()

    def _write(self, line: str) -> None:
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def run_started(self, run_id: str, env: str, what: str) -> None:
        self._write(f"wfops {what} · run {run_id} · env {env}" + (" · check mode (dry run)" if self.check_mode else ""))

    def phase_started(self, phase: str, runbook_number: int) -> None:
        self._phase_started[phase] = time.monotonic()
        self._write(f"▶ {phase} (runbook phase {runbook_number}) started")

    def task_started(self, task_id: str, task: str) -> None:
        """A task began: shown when it returns a result, or after a moment if it is still running."""
        if not self._show_tasks:
            return
        self._drop_pending()
        timer = threading.Timer(SHOW_RUNNING_AFTER_S, self.task_ran, args=(task_id,))
        timer.daemon = True
        with self._lock:
            self._pending = (task_id, task, timer)
        timer.start()

    def task_ran(self, task_id: str) -> None:
        """The task returned a result (ok, changed, failed) or is still running: show it, once."""
        with self._lock:
            pending = self._pending
            if pending is None or pending[0] != task_id or task_id in self._shown:
                return
            self._shown.add(task_id)
            self._pending = None
        pending[2].cancel()
        # The live view: which phase, how long it has run, which task it is on.
        current = next(reversed(self._phase_started.items()), None)
        where = f"[{current[0]} {time.monotonic() - current[1]:.0f}s] " if current else ""
        self._write(f"    · {where}{shown_task_name(pending[1], self.check_mode)}")

    def task_skipped(self, task_id: str) -> None:
        with self._lock:
            if self._pending is not None and self._pending[0] == task_id:
                self._pending[2].cancel()
                self._pending = None

    def _drop_pending(self) -> None:
        with self._lock:
            if self._pending is not None:
                self._pending[2].cancel()
                self._pending = None

    def phase_finished(self, phase: str, status: str) -> None:
        self._drop_pending()
        started = self._phase_started.pop(phase, None)
        elapsed = f" in {time.monotonic() - started:.1f}s" if started is not None else ""
        mark = {"ok": "✓", "failed": "✗", "interrupted": "✗"}.get(status, "-")
        self._write(f"{mark} {phase} finished: {status}{elapsed}")

    def note(self, message: str) -> None:
        self._drop_pending()
        self._write(message)
