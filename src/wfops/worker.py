"""The execution node's side of a streamed run: `python -m wfops.worker start|follow|describe`, what the controller
calls over SSH (or locally) in the node's wfops checkout.

`start RUN_ID IDENT` reads ansible-runner's transmit stream on stdin, keeps it in the job's directory and starts
`ansible-runner`'s worker detached from the caller (its own session, its stream written to a file), so the run goes on
when the controller's connection drops. `follow RUN_ID [IDENT]` copies that stream to stdout from its first line, as it
grows, until its end: a second `follow` (wfops attach) replays every event and then follows the rest. `describe
RUN_ID` prints what the controller asked for (job.json), from which it rebuilds the run's summary.

A job's directory (WFOPS_WORKER_DIR, default ~/.local/state/wfops/workers, 0700) holds `RUN_ID/IDENT/`: job.json,
transmit and stream (0600), worker.log, pid, and private/ (the worker's private data dir).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from ansible_runner.streaming import Worker

from wfops.project import project_root
from wfops.runner import environment_without_secrets
from wfops.streaming import NODE_KWARG

_POLL_S = 0.2


class WorkerJobError(RuntimeError):
    """A job the node cannot start or does not have; the message says which and why."""


def jobs_dir() -> Path:
    override = os.environ.get("WFOPS_WORKER_DIR")
    base = Path(override) if override else Path.home() / ".local" / "state" / "wfops" / "workers"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    return base


def _job_dir(run_id: str, ident: str | None) -> Path:
    run = jobs_dir() / run_id
    if ident is None:
        started = sorted(run.glob("*/job.json"), key=lambda path: path.stat().st_mtime) if run.is_dir() else []
        if not started:
            raise WorkerJobError(f"no run {run_id!r} on this node (nothing under {run}); check the run id")
        return started[-1].parent
    return run / ident


class NodeWorker(Worker):
    """ansible-runner's worker, with the playbook, inventory and config of this node's checkout."""

    def __init__(self, job: Path, **kwargs: Any) -> None:
        (job / "private").mkdir(mode=0o700, exist_ok=True)
        super().__init__(private_data_dir=str(job / "private"), **kwargs)
        self._job = job

    def update_paths(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        node = kwargs.pop(NODE_KWARG)
        root = project_root()
        kwargs["project_dir"] = str(root)
        kwargs["playbook"] = str(root / node["playbook"])
        kwargs["inventory"] = str(root / node["inventory"])
        # The lock's holder is this process on this node: it stays alive when the controller goes away.
        kwargs["envvars"] = {
            **(kwargs.get("envvars") or {}),
            "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
            "WFOPS_CONTROLLER_PID": str(os.getpid()),
        }
        kwargs["extravars"] = {**(kwargs.get("extravars") or {}), "wfops_run_dir": str(self._job)}
        return kwargs


def start(run_id: str, ident: str, source: IO[bytes]) -> int:
    """Keep the transmit stream, start the worker in its own session; returns its pid."""
    job = jobs_dir() / run_id / ident
    try:
        job.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        raise WorkerJobError(f"run {run_id} already has a job {ident} on this node ({job})") from None
    first = source.readline()
    request = json.loads(first)["kwargs"][NODE_KWARG]
    _write_private(job / "job.json", json.dumps({"run_id": run_id, "ident": ident, **request}).encode())
    with _open_private(job / "transmit") as transmit:
        transmit.write(first)
        while chunk := source.read(1 << 16):
            transmit.write(chunk)
    bin_dir = str(Path(sys.executable).parent)
    with environment_without_secrets():
        # The worker's environment reaches the stream (the runner's "starting" status): no secrets in it.
        environment = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    with (
        (job / "transmit").open("rb") as stdin,
        _open_private(job / "stream") as stdout,
        _open_private(job / "worker.log") as stderr,
    ):
        process = subprocess.Popen(
            [sys.executable, "-m", "wfops.worker", "serve", str(job)],
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env=environment,
            cwd=project_root(),
            start_new_session=True,
        )
    (job / "pid").write_text(str(process.pid))
    return process.pid


def serve(job: Path) -> None:
    """The detached worker itself: transmit stream in (stdin), event stream out (stdout, the job's stream file)."""
    status, rc = NodeWorker(job, _input=sys.stdin.buffer, _output=sys.stdout.buffer).run()
    print(f"worker ended: {status} (rc {rc})", file=sys.stderr)


def process_alive(pid: int) -> bool:
    """Whether the process runs; an exited one that nobody reaped yet (a zombie: the detached worker's parent is gone,
    and a container's init may never reap it) has ended too."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


class _GrowingFile:
    """Reads a file another process is still writing: waits for more while the writer lives."""

    def __init__(self, handle: IO[bytes], writer_pid: int) -> None:
        self._handle = handle
        self._pid = writer_pid

    def _wait(self) -> bool:
        """False when the writer is gone (after one last look)."""
        if process_alive(self._pid):
            time.sleep(_POLL_S)
            return True
        return False

    def line(self) -> bytes | None:
        buffer = b""
        while True:
            buffer += self._handle.readline()
            if buffer.endswith(b"\n"):
                return buffer
            if not self._wait():
                buffer += self._handle.readline()
                return buffer if buffer.endswith(b"\n") else None

    def exactly(self, size: int) -> bytes | None:
        buffer = b""
        while len(buffer) < size:
            chunk = self._handle.read(size - len(buffer))
            buffer += chunk
            if not chunk and not self._wait():
                buffer += self._handle.read(size - len(buffer))
                return buffer if len(buffer) == size else None
        return buffer


def follow(job: Path, out: IO[bytes]) -> None:
    """Copy the job's stream to `out`, line by line and artifact by artifact, until its eof line. A worker that died
    before it (killed, the node rebooted) ends the copy with an error status, which the controller reports."""
    pid = int((job / "pid").read_text())
    with (job / "stream").open("rb") as handle:
        stream = _GrowingFile(handle, pid)
        while True:
            line = stream.line()
            if line is None:
                ended = {
                    "status": "error",
                    "job_explanation": f"the worker (pid {pid}) on this node ended before its run did; see {job}",
                }
                out.write(json.dumps(ended).encode() + b"\n" + json.dumps({"eof": True}).encode() + b"\n")
                out.flush()
                return
            out.write(line)
            data = json.loads(line)
            if "zipfile" in data:
                # The artifacts follow as base64 of a zip of that many bytes, without a line end.
                encoded = stream.exactly(4 * ((int(data["zipfile"]) + 2) // 3))
                if encoded is not None:
                    out.write(encoded)
            out.flush()
            if "eof" in data:
                return


def _open_private(path: Path) -> IO[bytes]:
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def _write_private(path: Path, content: bytes) -> None:
    with _open_private(path) as handle:
        handle.write(content)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wfops.worker", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    started = commands.add_parser("start", help="keep the transmit stream on stdin and start its worker, detached")
    started.add_argument("run_id")
    started.add_argument("ident")
    followed = commands.add_parser("follow", help="the job's stream on stdout, from its start to its end")
    followed.add_argument("run_id")
    followed.add_argument("ident", nargs="?")
    described = commands.add_parser("describe", help="the job's request (job.json) of a run's latest job")
    described.add_argument("run_id")
    served = commands.add_parser("serve", help="(internal) the detached worker of a job directory")
    served.add_argument("job", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            print(json.dumps({"pid": start(args.run_id, args.ident, sys.stdin.buffer)}))
        elif args.command == "follow":
            follow(_job_dir(args.run_id, args.ident), sys.stdout.buffer)
        elif args.command == "describe":
            sys.stdout.write((_job_dir(args.run_id, None) / "job.json").read_text() + "\n")
        else:
            serve(args.job)
    except WorkerJobError as exc:
        print(f"wfops worker: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
