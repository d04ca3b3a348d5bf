"""An interrupted run is reported as interrupted, never ok or "not run", and a release or rollback that was
interrupted is in the ledger and leaves no lock behind when wfops itself lives on. No database is needed: the
copy's phase roles are stand-ins (one of them a long command), the lock and ledger live under the copy."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, VENV_BIN
from faults.processes import processes_of, run_id_of
from unit_project import copy_project, ok_role, replace_role, start_wfops, unit_env

LONG_ROLE = """---
- name: Apply the pending migrations (a long statement)
  ansible.builtin.command: sleep 293
  changed_when: true
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = copy_project(tmp_path / "project")
    for role in ("preflight", "backup", "normalize", "deploy", "smoke"):
        replace_role(root, role, ok_role(f"wfops_{role}", id=f"{role}-1"))
    replace_role(root, "migrate", LONG_ROLE)
    return root


class Release:
    """`wfops release --env unit` in the background, its progress read as it comes."""

    def __init__(self, project: Path) -> None:
        self.process = start_wfops(project, "release", "--env", "unit", "--ref", "r1", "--json")
        assert self.process.stderr is not None
        self.lines = [self.process.stderr.readline()]

    def wait_for_migrate(self) -> None:
        deadline = time.monotonic() + 120
        while not any("sleep" in process for process in processes_of(run_id_of(self.lines))):
            assert time.monotonic() < deadline and self.process.poll() is None, "migrate never started"
            time.sleep(0.1)

    def playbook_pid(self) -> int:
        """ansible-playbook's main process (the workers are its children, in sessions of their own)."""
        pids = {int(p.split()[0]): p.split()[1] for p in processes_of(run_id_of(self.lines))}
        return min(pid for pid, command in pids.items() if command.startswith("ansible-playboo"))

    def result(self) -> tuple[int, dict, str]:
        out, err = self.process.communicate(timeout=120)
        return self.process.returncode, json.loads(out), "".join(self.lines) + err


def _ledger(project: Path) -> list[dict]:
    path = project / "host" / "var" / "lib" / "weddingflo" / "ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _lock(project: Path) -> Path:
    return project / "host" / "var" / "lib" / "weddingflo" / "release.lock"


def test_a_killed_ansible_playbook_is_reported_with_its_signal_and_releases_its_lock(project: Path) -> None:
    release = Release(project)
    release.wait_for_migrate()
    assert _lock(project).is_dir()
    subprocess.run(["kill", "-KILL", str(release.playbook_pid())], check=True)
    code, summary, err = release.result()
    assert code == 130, err
    assert "ansible-playbook was killed by SIGKILL" in summary["error"]  # fault matrix: ansible-playbook-killed
    assert summary["status"] == "interrupted"
    statuses = {phase["name"]: phase["status"] for phase in summary["phases"]}
    assert statuses == {
        "preflight": "ok",
        "backup": "ok",
        "migrate": "interrupted",
        "normalize": "skipped",
        "deploy": "skipped",
        "smoke": "skipped",
    }
    assert "✓ migrate" not in err and "✗ migrate finished: interrupted" in err
    # The orphaned worker and its command were ended too; the lock is gone, the ledger says what happened.
    assert processes_of(run_id_of(release.lines)) == []
    assert not _lock(project).exists()
    entry = _ledger(project)[-1]
    assert (entry["status"], entry["failed_phase"], entry["backup_id"]) == ("interrupted", "migrate", "backup-1")
    assert entry["interrupted_by"] == "ansible-playbook was killed by SIGKILL"


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_the_release_records_it_and_releases_the_lock(project: Path, stop: int) -> None:
    release = Release(project)
    release.wait_for_migrate()
    release.process.send_signal(stop)
    code, summary, err = release.result()
    assert code == 130, err
    assert summary["error"] == f"interrupted ({signal.Signals(stop).name})"
    assert "recording the run as interrupted and releasing its lock" in err  # fault matrix: interrupted-release
    assert [p["status"] for p in summary["phases"]][:3] == ["ok", "ok", "interrupted"]
    assert processes_of(run_id_of(release.lines)) == []
    assert not _lock(project).exists()
    assert _ledger(project)[-1]["status"] == "interrupted"
    # The next release proceeds.
    replace_role(project, "migrate", ok_role("wfops_migrate"))
    again = subprocess.run(
        [str(VENV_BIN / "wfops"), "release", "--env", "unit", "--ref", "r2"],
        env=unit_env(project),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 0, again.stdout + again.stderr
