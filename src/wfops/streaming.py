"""The controller's side of a streamed run, the path AWX's receptor takes: ansible-runner `transmit` here, `worker` on
an execution node (`python -m wfops.worker` in the node's checkout, reached over SSH or run locally), `process`
here into the run's private data dir, so summary.json, artifacts and exit status come out as from a direct run."""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ansible_runner

from wfops.project import project_root

# The key of the transmitted kwargs that carries what wfops adds: paths in the node's checkout and the request.
NODE_KWARG = "wfops_node"
# Settings of the local sandbox that the node needs to find it (paths, never secrets).
_FORWARDED_ENV = ("WFOPS_SANDBOX_DIR", "WFOPS_APP_DIR")


class WorkerUnreachableError(RuntimeError):
    """The node did not take or does not have the job; the message says what the node answered."""


@dataclass(frozen=True)
class WorkerTarget:
    """Where `ansible-runner worker` runs: `local`, or `ssh://user@host[:port][/path/to/checkout]`."""

    url: str
    host: str | None = None
    user: str | None = None
    port: int | None = None
    # The node's wfops checkout (its .venv runs the worker); default: the same path as this checkout.
    home: str | None = None

    @classmethod
    def parse(cls, text: str) -> WorkerTarget:
        if text == "local":
            return cls(url=text)
        parts = urlsplit(text)
        if parts.scheme != "ssh" or not parts.hostname:
            raise ValueError(f"--worker {text!r}: expected local or ssh://user@host[:port][/path/to/wfops]")
        return cls(text, parts.hostname, parts.username, parts.port, parts.path or None)

    def command(self, *args: str) -> list[str]:
        """argv that runs `python -m wfops.worker ARGS` on the node."""
        if self.host is None:
            return [sys.executable, "-m", "wfops.worker", *args]
        home = self.home or str(project_root())
        remote = f"cd {shlex.quote(home)} && exec .venv/bin/python -m wfops.worker {shlex.join(args)}"
        destination = f"{self.user}@{self.host}" if self.user else self.host
        port = ["-p", str(self.port)] if self.port else []
        # WFOPS_WORKER_SSH_ARGS: a key, known-hosts options (`-i ~/.ssh/wfops -o ...`), never a secret itself.
        extra = shlex.split(os.environ.get("WFOPS_WORKER_SSH_ARGS", ""))
        return ["ssh", "-o", "BatchMode=yes", *port, *extra, destination, remote]


@dataclass
class StreamedRun:
    """What the processed stream left: the runner's last status and the rc the worker recorded in the artifacts."""

    status: str
    rc: int


def transmit(
    *,
    playbook: str,
    inventory: str,
    request: dict[str, Any],
    extravars: dict[str, Any],
    envvars: dict[str, str],
    cmdline: str | None,
    ident: str,
) -> bytes:
    """ansible-runner's transmit stream of one playbook; paths are relative to the node's checkout."""
    forwarded = {name: os.environ[name] for name in _FORWARDED_ENV if os.environ.get(name)}
    output = io.BytesIO()
    output.name = "transmit"  # ansible-runner asks its output's name (to tell stdout from a file)
    with tempfile.TemporaryDirectory(prefix="wfops-transmit-") as staging:
        ansible_runner.run(
            streamer="transmit",
            _output=output,
            private_data_dir=staging,
            extravars=extravars,
            envvars={**envvars, **forwarded},
            cmdline=cmdline,
            ident=ident,
            quiet=True,
            suppress_env_files=True,
            **{NODE_KWARG: {"playbook": playbook, "inventory": inventory, "request": request}},
        )
    return output.getvalue()


def start(target: WorkerTarget, run_id: str, ident: str, stream: bytes) -> None:
    """Hand the transmit stream to the node, which starts its worker detached."""
    completed = subprocess.run(
        target.command("start", run_id, ident), input=stream, capture_output=True, timeout=120, check=False
    )
    if completed.returncode != 0:
        raise WorkerUnreachableError(_node_said(target, completed.stderr))


def describe(target: WorkerTarget, run_id: str) -> dict[str, Any]:
    """The request of the run's latest job on the node (what `wfops attach` rebuilds the summary from)."""
    completed = subprocess.run(target.command("describe", run_id), capture_output=True, timeout=120, check=False)
    if completed.returncode != 0:
        raise WorkerUnreachableError(_node_said(target, completed.stderr))
    return dict(json.loads(completed.stdout))


def follow_and_process(
    target: WorkerTarget, run_id: str, ident: str, private_data_dir: Path, event_handler: Any
) -> StreamedRun:
    """Follow the job's stream from its start and process it into private_data_dir/artifacts/<ident>."""
    private_data_dir.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(
        target.command("follow", run_id, ident), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as follower:
        assert follower.stdout is not None
        processor = ansible_runner.run(
            streamer="process",
            _input=follower.stdout,
            private_data_dir=str(private_data_dir),
            ident=ident,
            event_handler=event_handler,
            quiet=True,
        )
        stderr = follower.stderr.read() if follower.stderr else b""
    if follower.returncode not in (0, None) and processor.status == "unstarted":
        raise WorkerUnreachableError(_node_said(target, stderr))
    rc_file = private_data_dir / "artifacts" / ident / "rc"
    rc = int(rc_file.read_text().strip()) if rc_file.is_file() else 1
    return StreamedRun(str(processor.status), rc)


def _node_said(target: WorkerTarget, stderr: bytes) -> str:
    said = stderr.decode(errors="replace").strip().splitlines()
    reason = said[-1] if said else "no answer"
    return f"the worker {target.url} did not run it: {reason}; check that the node has the wfops checkout and its .venv"
