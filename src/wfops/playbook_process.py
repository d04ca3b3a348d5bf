"""ansible-playbook under its owner: `python -m wfops.playbook_process ARGS...` runs `ansible-playbook ARGS...`.

ansible-runner starts this process for the wrapper (its `binary`). It exists so that a run ends when its owner
ends, whatever way the owner ends:

- ansible-playbook runs in its own process group; SIGINT and SIGTERM sent here (the wrapper forwards an operator's
  Ctrl-C or a SIGTERM) go to ansible-playbook, which passes them to its workers and they to the modules, which
  cancel the statement they run;
- when the wrapper dies, even by SIGKILL, the kernel sends this process SIGTERM (PR_SET_PDEATHSIG) and it does the
  same;
- it is the subreaper of everything the run starts, so a worker or a module orphaned by a killed ansible-playbook
  is still found and ended here (SIGTERM, then SIGKILL after a grace period) instead of writing on alone;
- ansible-playbook killed by a signal is reported as such: this process exits 128 + the signal's number.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
# How long the run's processes get to stop after SIGTERM (cancel the statement, exit) before SIGKILL.
GRACE_S = 3.0
OWNER_ENV = "WFOPS_OWNER_PID"


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def descendants(root: int) -> list[int]:
    """Every live (non-zombie) process below `root`, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] == "Z":
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    pending = [root]
    while pending:
        children = parents.get(pending.pop(), [])
        found += children
        pending += children
    return found


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            continue


class PlaybookProcess:
    """ansible-playbook as a child in its own process group; everything it starts ends with it when told to."""

    def __init__(self, argv: list[str]) -> None:
        self.stop_signal: int | None = None
        self._stop_deadline: float | None = None
        self.child = subprocess.Popen(["ansible-playbook", *argv], stdin=subprocess.DEVNULL, process_group=0)

    def request_stop(self, signum: int, _frame: object = None) -> None:
        """Pass the signal on to ansible-playbook (it tells its workers); force the rest after the grace period."""
        if self.stop_signal is None:
            self.stop_signal = signum
            self._stop_deadline = time.monotonic() + GRACE_S
        # Never Popen.poll() here: reaping the child behind wait()'s back would leave wait() waiting forever.
        if self.child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.child.pid, signum)

    def wait(self) -> int:
        """ansible-playbook's exit status; reaps adopted orphans meanwhile."""
        while self.child.returncode is None:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                # No child left to wait for: ansible-playbook was reaped elsewhere, its status lost.
                self.child.returncode = self.child.returncode if self.child.returncode is not None else 1
                return self.child.returncode
            if pid == self.child.pid:
                self.child.returncode = os.waitstatus_to_exitcode(status)
                return self.child.returncode
            if pid == 0:
                if self._stop_deadline is not None and time.monotonic() > self._stop_deadline:
                    _signal_all([self.child.pid, *descendants(os.getpid())], signal.SIGKILL)
                time.sleep(0.05)
        return self.child.returncode

    def end_the_rest(self) -> None:
        """After ansible-playbook ended by a signal or was told to stop: no process of the run may go on alone."""
        deadline = time.monotonic() + GRACE_S
        _signal_all(descendants(os.getpid()), signal.SIGTERM)
        while descendants(os.getpid()):
            if time.monotonic() > deadline:
                _signal_all(descendants(os.getpid()), signal.SIGKILL)
            self._reap()
            time.sleep(0.05)
        self._reap()

    @staticmethod
    def _reap() -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return


def main(argv: list[str]) -> int:
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    owner = os.environ.get(OWNER_ENV, "")
    if owner.isdigit() and os.getppid() != int(owner):
        print("wfops: the wrapper that started this run is gone; not starting ansible-playbook", file=sys.stderr)
        return 128 + signal.SIGTERM
    play = PlaybookProcess(argv)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, play.request_stop)
    code = play.wait()
    if code < 0 or play.stop_signal is not None:
        play.end_the_rest()
    if code < 0:
        print(f"wfops: ansible-playbook was killed by {signal.Signals(-code).name}", file=sys.stderr)
        return 128 - code
    if play.stop_signal is not None:
        return 128 + play.stop_signal
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
