"""A module that ends when the run that started it ends, wherever it runs.

Ansible connects a module's stdout to the run: a pipe to the ansible-playbook worker (local connection) or to
sshd's session channel (SSH, with or without sudo). When the run is gone — wfops killed, the worker killed, the
SSH connection dropped — the reading end of that pipe closes and poll() reports POLLERR on the module's stdout;
a watch thread sees it within half a second. SIGTERM, SIGINT and SIGHUP (what an interrupted run's processes get
on the controller) end it the same way: `on_stop` runs first (cancel the running statement, stop a child), then
the module stops, by KeyboardInterrupt in its main thread and, if that does not end it in time, by exit.
Pure Python, no Ansible import.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
POLL_INTERVAL_S = 0.5
# After the owner is gone: how long the module gets to stop by itself before it is ended.
EXIT_AFTER_S = 3.0


def owner_gone(fd: int = 1) -> bool:
    """Whether the reader of `fd` (the run that started this process) has gone away."""
    poller = select.poll()
    poller.register(fd, 0)  # POLLERR and POLLHUP are always reported
    return any(events & (select.POLLERR | select.POLLHUP | select.POLLNVAL) for _, events in poller.poll(0))


class OwnerWatch:
    """Stops this process when its run's owner is gone or it is told to stop (see the module docstring)."""

    def __init__(self, on_stop: Callable[[str], None]) -> None:
        self.stopped_because: str | None = None
        self._on_stop = on_stop
        self._fd_watched = not owner_gone()  # a stdout already without a reader (a test) is not watched

    def start(self) -> OwnerWatch:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._signalled)
        threading.Thread(target=self._watch, name="wfops-owner-watch", daemon=True).start()
        return self

    def _signalled(self, signum: int, _frame: object) -> None:
        self._stop(signal.Signals(signum).name)
        raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")

    def _stop(self, why: str) -> None:
        if self.stopped_because is not None:
            return
        self.stopped_because = why
        try:
            self._on_stop(why)
        finally:
            threading.Thread(target=self._exit_later, name="wfops-owner-exit", daemon=True).start()

    def _watch(self) -> None:
        while self._fd_watched and self.stopped_because is None:
            if owner_gone():
                self._stop("its run is gone (the reader of its output closed)")
                # Interrupt the main thread where it waits (a statement, a child, a sleep).
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(POLL_INTERVAL_S)

    @staticmethod
    def _exit_later() -> None:
        time.sleep(EXIT_AFTER_S)
        os._exit(1)
