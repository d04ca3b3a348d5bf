"""The "Hetzner host" reached over real SSH, shared by tests/test_ssh_host.py and the benchmark's overhead-ssh
scenario: a non-root `deploy` user with passwordless sudo, a controller key, an sshd on a loopback port, and the
inventory host that reaches it with become. Needs root (it creates a system user and a sudoers rule); everything it
creates is undone on exit, however far the setup got.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loopback_sshd import run, start_sshd, user_exists
from wfops.pgcluster import free_port

REPO = Path(__file__).resolve().parents[1]
DEPLOY_USER = "deploy"
BACKUP_USER = "weddingflo-backup"
SUDOERS_RULE = Path("/etc/sudoers.d/wfops-test-deploy")
# The test and the benchmark create and remove the same users: one of them at a time on this machine.
LOCK = Path("/run/lock/wfops-ssh-host.lock")


@dataclass
class SshHost:
    root: Path
    port: int
    key: Path
    sshd_log: Path
    host_dir: Path

    def host_vars(self) -> dict[str, Any]:
        """The connection (deploy, key, become through sudo) and the host's own paths and users."""
        return {
            "ansible_connection": "ssh",
            "ansible_host": "127.0.0.1",
            "ansible_port": self.port,
            "ansible_user": DEPLOY_USER,
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_become_method": "ansible.builtin.sudo",
            "wfops_host_root": str(self.host_dir),
            "wfops_host_backup_user": BACKUP_USER,
            "backup_group": BACKUP_USER,
            "backup_manage_user": True,
            "backup_become": True,
            "backup_schedule_enabled": True,
            "backup_pg_bindir": run("pg_config", "--bindir").strip(),
            "migrate_install_dependencies": True,
            "migrate_become": True,
            "release_become": True,
            "rollback_become": True,
            "deploy_become": True,
        }

    def write_inventory(self, path: Path, host_name: str = "hetzner") -> Path:
        """groups local + weddingflo (the sandbox's settings, group_vars beside the file) holding this one host."""
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "group_vars").symlink_to(REPO / "group_vars")
        document = {"local": {"children": {"weddingflo": {"hosts": {host_name: self.host_vars()}}}}}
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path


@contextlib.contextmanager
def deploy_host(root: Path, sudoers_rule: Path = SUDOERS_RULE) -> Iterator[SshHost]:
    """The deploy user, its sudoers rule, a key and an sshd, all under `root` (which the deploy user must be able
    to traverse); undone in reverse order on exit. A `deploy` or `weddingflo-backup` user that existed before is
    left alone; one created here (the backup role creates the backup user) is removed."""
    with contextlib.ExitStack() as cleanup:
        cleanup.enter_context(_exclusive(LOCK))
        cleanup.callback(_remove_user_unless, BACKUP_USER, user_exists(BACKUP_USER))
        cleanup.callback(_remove_user_unless, DEPLOY_USER, user_exists(DEPLOY_USER))
        if not user_exists(DEPLOY_USER):
            run("useradd", "--create-home", "--shell", "/bin/bash", DEPLOY_USER)
        run("usermod", "-p", "*", DEPLOY_USER)  # no password, but not a locked account (sshd refuses those)
        cleanup.callback(sudoers_rule.unlink, missing_ok=True)
        sudoers_rule.write_text(f"{DEPLOY_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n")
        sudoers_rule.chmod(0o440)
        run("visudo", "-cf", str(sudoers_rule))
        key = root / "controller_key"
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "wfops-ssh-host", "-f", str(key))
        authorized = root / "authorized_keys"
        authorized.mkdir()
        shutil.copy(key.with_suffix(".pub"), authorized / DEPLOY_USER)
        port = free_port()
        sshd, log = start_sshd(root, port, authorized, DEPLOY_USER)
        cleanup.callback(_stop, sshd)
        yield SshHost(root, port, key, log, root / "host")


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=10)


def _remove_user_unless(name: str, existed_before: bool) -> None:
    if not existed_before and user_exists(name):
        # Ansible's ControlPersist keeps an SSH session (an sshd child running as the user) alive after the run.
        subprocess.run(["pkill", "-KILL", "-u", name], check=False, capture_output=True)
        subprocess.run(["userdel", "--force", "--remove", name], check=True, capture_output=True)
