"""Progress of a run on the terminal (stderr, so stdout can carry JSON)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressPrinter:
    """Prints phase starts, task names and phase ends as the run's events arrive."""

    def __init__(self, stream: TextIO | None = None, show_tasks: bool = True) -> None:
        self._stream = stream or sys.stderr
        self._show_tasks = show_tasks
        self._phase_started: dict[str, float] = {}

    def _write(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()

    def run_started(self, run_id: str, env: str, what: str) -> None:
        self._write(f"wfops {what} · run {run_id} · env {env}")

    def phase_started(self, phase: str, runbook_number: int) -> None:
        self._phase_started[phase] = time.monotonic()
        self._write(f"▶ {phase} (runbook phase {runbook_number}) started")

    def task_started(self, task: str) -> None:
        if self._show_tasks:
            # The live view: which phase, how long it has run, which task it is on.
            current = next(reversed(self._phase_started.items()), None)
            where = f"[{current[0]} {time.monotonic() - current[1]:.0f}s] " if current else ""
            self._write(f"    · {where}{task}")

    def phase_finished(self, phase: str, status: str) -> None:
        started = self._phase_started.pop(phase, None)
        elapsed = f" in {time.monotonic() - started:.1f}s" if started is not None else ""
        mark = {"ok": "✓", "failed": "✗"}.get(status, "-")
        self._write(f"{mark} {phase} finished: {status}{elapsed}")

    def note(self, message: str) -> None:
        self._write(message)
