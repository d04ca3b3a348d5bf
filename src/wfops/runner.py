"""The ansible-runner driver: one playbook in, its events and set_stats results out.

ansible-playbook runs under `wfops.playbook_process` (ansible-runner's `binary`), in its own process group and
ended with its owner. An operator's Ctrl-C or a SIGTERM sent to wfops is passed on to it (the running statement
is cancelled, the play stops); wfops itself keeps running to record the run as interrupted.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

from wfops import streaming
from wfops.events import EventCollector, RoleTiming
from wfops.progress import ProgressPrinter
from wfops.secrets import is_secret
from wfops.vault import Vault

# The signals an operator (or a supervisor) ends a run with; wfops passes them on instead of dying.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# ansible-playbook's launcher exits 128 + N when it, or ansible-playbook, ended by signal N.
SIGNAL_EXIT_BASE = 128


@contextmanager
def environment_without_secrets() -> Iterator[list[str]]:
    """Temporarily remove secret variables (wfops.secrets) from os.environ; yields their names.

    ansible-runner records the whole environment in the run's `command` artifact, so these never reach it;
    secrets come from the vault or the sandbox's files.
    """
    removed = {key: os.environ.pop(key) for key in list(os.environ) if is_secret(key)}
    try:
        yield sorted(removed)
    finally:
        os.environ.update(removed)


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
    # Why the play stopped before its end: "SIGINT" (wfops was told to stop), "ansible-playbook was killed by
    # SIGKILL", ...; None when it ran to its end (successful or failed).
    stopped_by: str | None = None

    @property
    def successful(self) -> bool:
        return self.runner_status == "successful" and self.rc == 0 and self.stopped_by is None


class _StopForwarder:
    """While a play runs: SIGINT/SIGTERM/SIGHUP to wfops are passed to the play's launcher, not obeyed."""

    def __init__(self) -> None:
        self.received: int | None = None

    def __call__(self, signum: int, _frame: object) -> None:
        self.received = self.received or signum
        for child in _children(os.getpid()):
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                continue


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


@contextmanager
def forwarded_stop_signals() -> Iterator[_StopForwarder]:
    forwarder = _StopForwarder()
    previous = {signum: signal.signal(signum, forwarder) for signum in STOP_SIGNALS}
    try:
        yield forwarder
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stopped_by(rc: int, received: int | None) -> str | None:
    if received is not None:
        return signal.Signals(received).name
    if SIGNAL_EXIT_BASE < rc < SIGNAL_EXIT_BASE + 64:
        return f"ansible-playbook was killed by {signal.Signals(rc - SIGNAL_EXIT_BASE).name}"
    return None


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
    run_id: str,
    vault: Vault,
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
        # The same test as playbook_arguments' (a source given as an option), without asking or opening a pipe.
        if any(not source.from_environment for source in vault.sources):
            raise streaming.WorkerUnreachableError(
                "a vault password cannot travel to a worker: give the node its own vault_password_file in its "
                "checkout's ansible.cfg (docs/awx.md) and run without --vault-* options"
            )
        stream = streaming.transmit(
            playbook=str(playbook.relative_to(project_dir)),
            inventory=str(inventory.relative_to(project_dir)),
            request=request or {},
            extravars=extravars,
            envvars={**_envvars(project_dir), "WFOPS_RUN_ID": run_id},
            cmdline="--check --diff" if check_mode else None,
            ident=ident,
        )
        streaming.start(worker, run_id, ident, stream)
        return follow_playbook(worker, run_id, ident, private_data_dir, collector)
    with (
        vault.playbook_arguments() as vault_arguments,
        environment_without_secrets(),
        forwarded_stop_signals() as forwarder,
    ):
        # With a `binary`, ansible-runner adds only -i and -e after these: the playbook is named here.
        arguments = [
            *("-m", "wfops.playbook_process"),
            *vault_arguments,
            *(["--check", "--diff"] if check_mode else []),
            str(playbook),
        ]
        runner = ansible_runner.run(
            private_data_dir=str(private_data_dir),
            project_dir=str(project_dir),
            binary=sys.executable,
            cmdline=shlex.join(arguments),
            playbook=str(playbook),
            inventory=str(inventory),
            extravars=extravars,
            # Every process of the run carries its id (the release lock asks whether any is alive); the launcher
            # stops the play when this wrapper is gone.
            envvars={**_envvars(project_dir), "WFOPS_RUN_ID": run_id, "WFOPS_OWNER_PID": str(os.getpid())},
            ident=ident,
            event_handler=collector,
            # Stopping is ours (signals are forwarded, never SIGKILL): ansible-runner must not install its own.
            cancel_callback=lambda: False,
            quiet=True,
            # Keep the process environment (which may hold DATABASE_URL) out of env/ and the command artifact.
            suppress_env_files=True,
        )
    rc = int(runner.rc if runner.rc is not None else 1)
    stopped_by = _stopped_by(rc, forwarder.received)
    collector.finish_current_role(stopped=stopped_by is not None)
    return PlaybookOutcome(
        runner_status=str(runner.status),
        rc=rc,
        stats_data=collector.stats_data,
        failures=collector.outcome_failures,
        role_timings=collector.role_timings,
        artifact_dir=private_data_dir / "artifacts" / ident,
        stopped_by=stopped_by,
    )


def follow_playbook(
    worker: streaming.WorkerTarget, run_id: str, ident: str, private_data_dir: Path, collector: EventCollector
) -> PlaybookOutcome:
    """Follow a streamed playbook on its node from its first event (a first run, or wfops attach) to its end."""
    streamed = streaming.follow_and_process(worker, run_id, ident, private_data_dir, collector)
    collector.finish_current_role()
    return PlaybookOutcome(
        runner_status=streamed.status,
        rc=int(streamed.rc if streamed.rc is not None else 1),
        stats_data=collector.stats_data,
        failures=collector.outcome_failures,
        role_timings=collector.role_timings,
        artifact_dir=private_data_dir / "artifacts" / ident,
    )


def _envvars(project_dir: Path) -> dict[str, str]:
    # WFOPS_CONTROLLER_PID lets a later run tell a lock left by a killed wfops from one still in use.
    return {
        "ANSIBLE_CONFIG": str(project_dir / "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
        "WFOPS_CONTROLLER_PID": str(os.getpid()),
    }
