"""The "Hetzner host" reached over real SSH, shared by tests/test_ssh_host.py and the benchmark's overhead-ssh
scenario: a non-root `deploy` user with passwordless sudo, a controller key, an sshd on a loopback port, and the
inventory host that reaches it with become. Needs root (it creates a system user and a sudoers rule); everything it
creates is undone on exit, however far the setup got.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from checkout import copy_checkout
from loopback_sshd import run, start_sshd, user_exists
from wfops.pgcluster import free_port

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
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


def staging_project(project: Path, host: SshHost, sandbox_dir: Path, vault_password: Path) -> Path:
    """A checkout whose `staging` environment is set up the production way and points at the SSH host: the secrets
    in an ansible-vault encrypted group_vars/staging/vault.yml, the host reached by its vault address, the
    committed vars.yml's placeholders replaced by the host's own settings (the sandbox's stand-ins)."""
    copy_checkout(project)
    services = json.loads((sandbox_dir / "services.json").read_text())
    secrets = {
        "vault_wfops_host_address": "127.0.0.1",
        "vault_wfops_ssh_user": DEPLOY_USER,
        "vault_wfops_database_url": (sandbox_dir / "database_url").read_text().strip(),
        "vault_wfops_dokploy_api_key": (sandbox_dir / "dokploy_api_key").read_text().strip(),
        "vault_wfops_smoke_email": "smoke@weddingflo.test",
        "vault_wfops_smoke_password": (sandbox_dir / "smoke_password").read_text().strip(),
    }
    vault = project / "group_vars" / "staging" / "vault.yml"
    vault.write_text(yaml.safe_dump(secrets))
    vault.chmod(0o600)
    subprocess.run(
        [str(VENV_BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(vault_password), str(vault)],
        check=True,
        capture_output=True,
    )
    host_vars = {key: value for key, value in host.host_vars().items() if key not in ("ansible_host", "ansible_user")}
    push = ["{{ ansible_playbook_python }}", "-m", "wfops.sandbox.push"]
    host_vars |= {
        "wfops_dokploy_url": services["dokploy_url"],
        "wfops_dokploy_service_id": services["application_id"],
        "wfops_app_url": services["app_url"],
        "deploy_push_argv": [*push, "{{ wfops_release_ref }}"],
        "rollback_push_argv": [*push, "{ref}"],
        "deploy_poll_interval": 0.3,
        "rollback_poll_interval": 0.3,
        "smoke_tenant_role": "weddingflo_app",
        "preflight_min_tests": 13,
        "monitor_log_command": ["cat", str(sandbox_dir / "app.log")],
        "backup_metrics_dir": str(host.host_dir / "var/lib/node_exporter/textfile_collector"),
    }
    inventory = {
        "staging": {
            "children": {
                "weddingflo": {
                    "hosts": {
                        "weddingflo-staging": {
                            "ansible_host": "{{ wfops_host_address }}",
                            "ansible_user": "{{ wfops_ssh_user }}",
                            **host_vars,
                        }
                    }
                }
            }
        }
    }
    (project / "inventory" / "staging.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    return project
