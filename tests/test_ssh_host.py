"""The "Hetzner host" reached over real SSH: an sshd on a loopback high port, a non-root `deploy` user with sudo,
become for the backup user and the systemd units, pipelining on (ansible.cfg). A full release and a database
rollback run through `ansible-playbook` over that connection.

This scenario creates a system user and a sudoers rule, so it needs root (as `make test` has on CI); it fails, it
does not skip, without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, VENV_BIN, SandboxHandle, start_sandbox, stop_sandbox, table_checksums
from ssh_host_helpers import BACKUP_USER, DEPLOY_USER, SshHost, deploy_host


@dataclass
class SshScene:
    host: SshHost
    inventory: Path
    box: SandboxHandle

    def playbook(self, playbook: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VENV_BIN / "ansible-playbook"), "-i", str(self.inventory), f"playbooks/{playbook}", *extra],
            cwd=REPO,
            env={
                **self.box.env,
                "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                "ANSIBLE_NOCOLOR": "1",
                # The inventory lives outside the checkout: say where the app is (the default derives it).
                "WFOPS_APP_DIR": str(REPO / "sandbox-app"),
            },
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )


@pytest.fixture(scope="module")
def ssh_host() -> Iterator[SshScene]:
    assert os.geteuid() == 0, "the SSH scenario creates the deploy user and a sudoers rule: run it as root"
    # Outside pytest's 0700 temporary tree: the deploy user must reach the host paths and the app's log.
    # Every piece is undone in reverse order however far the setup got (a user or a sudoers rule never leaks).
    with contextlib.ExitStack() as cleanup:
        root = Path(tempfile.mkdtemp(prefix="wfops-ssh-", dir="/tmp"))
        cleanup.callback(shutil.rmtree, root, ignore_errors=True)
        root.chmod(0o755)
        host = cleanup.enter_context(deploy_host(root))
        box = start_sandbox(root / "sandbox", guests=2000)
        cleanup.callback(stop_sandbox, box)
        (root / "sandbox").chmod(0o755)
        yield SshScene(host, host.write_inventory(root / "inventory" / "hosts.yml"), box)


def _owner_and_mode(path: Path) -> tuple[str, str]:
    info = path.stat()
    return pwd.getpwuid(info.st_uid).pw_name, oct(stat.S_IMODE(info.st_mode))


def _commit(box: SandboxHandle) -> str:
    url = json.loads((box.directory / "services.json").read_text())["app_url"] + "/api/health"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())["commit"]


def _failures(completed: subprocess.CompletedProcess[str]) -> str:
    """The play's failed tasks (with the lines around them) and its recap: enough to see what went wrong."""
    lines = completed.stdout.splitlines()
    failed = [i for i, line in enumerate(lines) if "FAILED!" in line or line.startswith("failed:")]
    shown = [" | ".join(lines[max(i - 3, 0) : i + 6]) for i in failed]
    return "\n".join([*shown, completed.stdout[-600:], completed.stderr[-1000:]])


def _recap_ok(output: str) -> bool:
    recap = output[output.rindex("PLAY RECAP") :]
    return "hetzner" in recap and "failed=0" in recap and "unreachable=0" in recap


def test_a_release_and_a_rollback_over_ssh_with_become(ssh_host: SshScene) -> None:
    scene, host, box = ssh_host, ssh_host.host, ssh_host.box

    before = table_checksums(box)
    # A dry run first: its backup plan looks at the backup user's directory, so it needs become too.
    dry = scene.playbook("release.yml", "--check", "-e", "wfops_release_ref=over-ssh")
    assert dry.returncode == 0, _failures(dry)
    assert _recap_ok(dry.stdout), dry.stdout[-2000:]
    assert {t for t, v in table_checksums(box).items() if v != before[t]} <= {"public.sessions"}
    assert _commit(box) != "over-ssh"

    release = scene.playbook("release.yml", "-e", "wfops_release_ref=over-ssh")
    assert release.returncode == 0, _failures(release)
    assert _recap_ok(release.stdout), release.stdout[-2000:]
    assert _commit(box) == "over-ssh"
    assert table_checksums(box) != before, "the release migrated and normalised the database"

    # It came over SSH as deploy, key-authenticated.
    log = host.sshd_log.read_text()
    assert f"Accepted publickey for {DEPLOY_USER} from 127.0.0.1" in log

    # become: the backup user owns the backups and the settings; root owns the tool and the units.
    backups = sorted((host.host_dir / "var/backups/weddingflo").glob("backup-*.dump"))
    assert len(backups) == 1
    assert _owner_and_mode(backups[0]) == (BACKUP_USER, "0o600")
    assert _owner_and_mode(backups[0].with_suffix(".json")) == (BACKUP_USER, "0o600")
    assert _owner_and_mode(host.host_dir / "etc/weddingflo-backup/backup.env") == (BACKUP_USER, "0o600")
    assert _owner_and_mode(host.host_dir / "etc/weddingflo-backup") == (BACKUP_USER, "0o700")
    assert _owner_and_mode(host.host_dir / "usr/local/bin/weddingflo-backup") == ("root", "0o755")
    for unit in ("weddingflo-backup.service", "weddingflo-backup.timer"):
        assert _owner_and_mode(host.host_dir / "etc/systemd/system" / unit) == ("root", "0o644")
    assert f"User={BACKUP_USER}" in (host.host_dir / "etc/systemd/system/weddingflo-backup.service").read_text()
    ledger = [json.loads(line) for line in (host.host_dir / "var/lib/weddingflo/ledger.jsonl").read_text().splitlines()]
    assert [entry["kind"] for entry in ledger] == ["release"]
    assert ledger[0]["ref"] == "over-ssh" and ledger[0]["status"] == "successful"

    # A database rollback to the release's backup, over the same connection.
    backup_id = backups[0].stem
    rollback = scene.playbook("rollback.yml", "-e", "rollback_database=true", "-e", f"rollback_confirm={backup_id}")
    assert rollback.returncode == 0, _failures(rollback)
    assert _recap_ok(rollback.stdout), rollback.stdout[-2000:]
    after = table_checksums(box)
    # Two sessions: the dry run's smoke login (taken into the release's backup) and the rollback's closing smoke
    # check (the only row newer than the backup).
    assert after.pop("public.sessions").startswith("2:")
    assert after == {k: v for k, v in before.items() if k != "public.sessions"}, "the pre-release database is back"
    assert _commit(box) != "over-ssh", "the code went back to the previous deployment"
    safety = sorted((host.host_dir / "var/backups/weddingflo").glob("backup-*.dump"))
    assert len(safety) == 2 and all(_owner_and_mode(path)[0] == BACKUP_USER for path in safety)
    kinds = [json.loads(line)["kind"] for line in (host.host_dir / "var/lib/weddingflo/ledger.jsonl").open()]
    assert kinds == ["release", "rollback"]
