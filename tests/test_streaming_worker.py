"""The remote-execution path AWX uses: a run goes through ansible-runner's streaming interface (transmit here, worker on
an execution node, process here) and ends with the summary, artifacts and exit status of a direct run. Over SSH the
node's worker runs detached: the controller can be killed mid-release and `wfops attach` follows the release to its end.

The node is this machine reached over a real sshd on a loopback port, as root with a key (the worker runs in this
checkout's .venv, the node's copy of wfops); its jobs live in the directory sshd's SetEnv gives it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import REPO, VENV_BIN, SandboxHandle, run_wfops, start_sandbox, stop_sandbox
from loopback_sshd import run, start_sshd
from wfops.pgcluster import free_port
from wfops.worker import process_alive


@dataclass
class Node:
    url: str
    jobs: Path
    ssh_args: str


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    assert os.geteuid() == 0, "the node is reached over SSH as root (the sandbox's owner): run the tests as root"
    with contextlib.ExitStack() as cleanup:
        root = Path(tempfile.mkdtemp(prefix="wfops-node-", dir="/tmp"))
        cleanup.callback(shutil.rmtree, root, ignore_errors=True)
        key = root / "controller_key"
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "wfops-worker", "-f", str(key))
        authorized = root / "authorized_keys"
        authorized.mkdir()
        shutil.copy(key.with_suffix(".pub"), authorized / "root")
        jobs = root / "jobs"
        port = free_port()
        sshd, _log = start_sshd(
            root, port, authorized, "root", [f"SetEnv WFOPS_WORKER_DIR={jobs}"], permit_root_login="prohibit-password"
        )
        cleanup.callback(lambda: (sshd.terminate(), sshd.wait(timeout=10)))
        ssh_args = f"-i {key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
        yield Node(f"ssh://root@127.0.0.1:{port}{REPO}", jobs, ssh_args)


@pytest.fixture
def two_sandboxes(tmp_path: Path) -> Iterator[tuple[SandboxHandle, SandboxHandle]]:
    streamed = start_sandbox(tmp_path / "streamed", guests=500)
    try:
        direct = start_sandbox(tmp_path / "direct", guests=500)
        try:
            yield streamed, direct
        finally:
            stop_sandbox(direct)
    finally:
        stop_sandbox(streamed)


def _secrets(box: SandboxHandle) -> list[str]:
    values = [(box.directory / name).read_text().strip() for name in ("database_url", "dokploy_api_key")]
    values.append((box.directory / "smoke_password").read_text().strip())
    password = urlsplit(values[0]).password
    assert password, "the sandbox's database URL carries a password"
    return [*values, password]


def _shape(summary: dict) -> tuple[str, list[tuple[str, str, list[str]]]]:
    """What must be equal between a direct and a streamed run: status, and per phase its status and report keys."""
    return summary["status"], [(p["name"], p["status"], sorted(p["result"])) for p in summary["phases"]]


def _wait_for(condition: Callable[[], object], what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _command_lines() -> list[str]:
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            lines.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
    return lines


def test_a_phase_through_the_local_worker_ends_as_a_direct_run(shared_sandbox: SandboxHandle, tmp_path: Path) -> None:
    # verify is read-only and fails on the sandbox's legacy data: the failure must come back the same way too.
    env = {**shared_sandbox.env, "WFOPS_WORKER_DIR": str(tmp_path / "jobs")}
    direct = run_wfops("run", "verify", "--env", "local", "--json", env=env)
    streamed = run_wfops("run", "verify", "--env", "local", "--json", "--worker", "local", env=env)
    assert direct.returncode == streamed.returncode == 1, direct.stderr[-2000:] + streamed.stderr[-2000:]
    direct_summary, streamed_summary = json.loads(direct.stdout), json.loads(streamed.stdout)
    assert _shape(streamed_summary) == _shape(direct_summary)
    assert streamed_summary["phases"][0]["result"] == direct_summary["phases"][0]["result"]
    artifacts = [REPO / "runs" / s["run_id"] / "artifacts" / "01-verify" for s in (direct_summary, streamed_summary)]
    assert {p.name for p in artifacts[0].iterdir()} == {p.name for p in artifacts[1].iterdir()}
    assert (artifacts[1] / "rc").read_text() == (artifacts[0] / "rc").read_text() != "0"
    assert len(list((artifacts[1] / "job_events").glob("*.json"))) == len(list((artifacts[0] / "job_events").iterdir()))
    # The job stayed on the node: its stream, private and complete.
    (job,) = (tmp_path / "jobs" / streamed_summary["run_id"]).iterdir()
    assert oct((job / "stream").stat().st_mode & 0o777) == "0o600"
    assert (job / "stream").read_bytes().rstrip().endswith(b'{"eof": true}')


def test_a_release_on_an_ssh_worker_survives_the_controller_and_attach_ends_it(
    node: Node, two_sandboxes: tuple[SandboxHandle, SandboxHandle], tmp_path: Path
) -> None:
    box, direct_box = two_sandboxes
    wfops = str(VENV_BIN / "wfops")
    release = ["release", "--env", "local", "--ref", "streamed", "--from", "backup", "--json"]
    # The same release, run directly on a twin sandbox meanwhile: what the streamed one must end like.
    direct = subprocess.Popen([wfops, *release], cwd=REPO, env=direct_box.env, stdout=subprocess.PIPE, text=True)

    env = {**box.env, "WFOPS_WORKER_SSH_ARGS": node.ssh_args}
    progress = tmp_path / "controller.log"
    with progress.open("w") as log:
        controller = subprocess.Popen(
            [wfops, *release, "--worker", node.url],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    _wait_for(lambda: re.search(r"run (\S+) · env", progress.read_text()), "the controller to start the run", 60)
    run_id = re.search(r"run (\S+) · env", progress.read_text()).group(1)  # type: ignore[union-attr]
    job = node.jobs / run_id / "release"
    # Mid-release: the backup is done, the migration has started on the node.
    _wait_for(lambda: (job / "stream").is_file() and b'"role": "migrate"' in (job / "stream").read_bytes(), "migrate")
    secrets = _secrets(box)
    running = [line for line in _command_lines() if "wfops" in line or "ansible" in line]
    assert any("wfops.worker serve" in line for line in running), running
    assert not [line for line in running if any(secret in line for secret in secrets)]

    # The laptop goes away: the controller, its ssh and everything it started, at once.
    os.killpg(controller.pid, signal.SIGKILL)
    controller.wait(timeout=30)
    worker_pid = int((job / "pid").read_text())
    assert process_alive(worker_pid), "the node's worker went on without the controller"
    summary_file = REPO / "runs" / run_id / "summary.json"
    assert not summary_file.exists()

    attached = run_wfops("attach", run_id, "--worker", node.url, "--json", env=env)
    assert attached.returncode == 0, attached.stderr[-3000:]
    summary = json.loads(attached.stdout)
    assert summary["status"] == "successful", attached.stdout
    assert "attached on ssh://" in attached.stderr and "▶ migrate" in attached.stderr
    direct_out, _ = direct.communicate(timeout=900)
    assert direct.returncode == 0, direct_out
    direct_summary = json.loads(direct_out)
    assert _shape(summary) == _shape(direct_summary)
    assert summary["status"] == "successful" and summary["run_id"] == run_id and summary["release_ref"] == "streamed"
    assert json.loads(summary_file.read_text()) == summary

    # The world: the release's ledger entry on the host, the app serving the ref, the artifacts as a direct run's.
    ledger = (box.directory / "host/var/lib/weddingflo/ledger.jsonl").read_text().splitlines()
    assert json.loads(ledger[-1])["run_id"] == run_id and json.loads(ledger[-1])["status"] == "successful"
    artifacts = REPO / "runs" / run_id / "artifacts" / "release"
    direct_artifacts = REPO / "runs" / direct_summary["run_id"] / "artifacts" / "release"
    assert {p.name for p in artifacts.iterdir()} == {p.name for p in direct_artifacts.iterdir()}
    assert (artifacts / "rc").read_text().strip() == "0"
    assert not process_alive(worker_pid)

    # No secret in what the node kept, what came back, or what was on the wire.
    kept = [path for path in job.rglob("*") if path.is_file()]
    came_back = [path for path in (REPO / "runs" / run_id).rglob("*") if path.is_file()]
    assert len(kept) > 3 and len(came_back) > 10
    for path in kept + came_back:
        content = path.read_bytes()
        leaked = [secret for secret in secrets if secret.encode() in content]
        assert not leaked, f"{path} holds a secret"
