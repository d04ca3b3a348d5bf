"""The overhead-ssh scenario's host: the tests' loopback SSH host (tests/ssh_host_helpers.py: the `deploy` user with
passwordless sudo, a key, sshd on a loopback port) and a project copy (WFOPS_HOME) whose `local` inventory is that
host, so the same `wfops release --env local` as the local scenario runs over SSH with become.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.sandbox import REPO, Sandbox

# The SSH host setup is the test's own (one helper, not a copy); tests/ is not a package.
sys.path.insert(0, str(REPO / "tests"))
from ssh_host_helpers import BACKUP_USER, DEPLOY_USER, SshHost, deploy_host

# Not the test's rule file: a test run elsewhere on this machine must not remove the benchmark's rule, or vice versa.
SUDOERS_RULE = Path("/etc/sudoers.d/wfops-bench-deploy")


@dataclass
class SshRelease:
    home: Path
    host: SshHost

    @property
    def env(self) -> dict[str, str]:
        """What points `wfops` at the project copy (its inventory lives outside the checkout: so does the app)."""
        return {"WFOPS_HOME": str(self.home), "WFOPS_APP_DIR": str(REPO / "sandbox-app")}

    def evidence(self) -> dict[str, object]:
        """That the release just measured went over SSH with become: sshd's logins of the deploy user so far (one
        per ControlPersist session) and the owner of the backup it wrote (the backup user, through sudo)."""
        backups = sorted((self.host.host_dir / "var/backups/weddingflo").glob("backup-*.dump"))
        owner = pwd.getpwuid(backups[-1].stat().st_uid).pw_name if backups else None
        logins = self.host.sshd_log.read_text().count(f"Accepted publickey for {DEPLOY_USER} from 127.0.0.1")
        if owner != BACKUP_USER or not logins:
            raise RuntimeError(f"not the SSH host's release: {logins} deploy logins, backup owned by {owner}")
        return {"ssh_logins_so_far": logins, "backup_owner": owner}


def _project(home: Path, host: SshHost) -> Path:
    """The checkout's playbooks, roles and plugins, with inventory/local.yml = the SSH host."""
    home.mkdir()
    shutil.copy(REPO / "ansible.cfg", home / "ansible.cfg")
    for name in ("playbooks", "roles", "plugins", "files", "release.yml", "rollback.yml"):
        (home / name).symlink_to(REPO / name)
    host.write_inventory(home / "inventory" / "local.yml")
    return home


@contextlib.contextmanager
def ssh_release(small: Sandbox) -> Iterator[SshRelease]:
    """The SSH host for the small sandbox, for the whole benchmark; every piece undone on exit, even after a failure."""
    if os.geteuid() != 0:
        raise SystemExit("overhead-ssh creates the deploy user and a sudoers rule: run as root, or leave it out")
    with contextlib.ExitStack() as cleanup:
        # Outside any 0700 tree: the deploy user must reach the host paths and the app's log (as in the test).
        root = Path(tempfile.mkdtemp(prefix="wfops-bench-ssh-", dir="/tmp"))
        cleanup.callback(shutil.rmtree, root, ignore_errors=True)
        root.chmod(0o755)
        cleanup.callback(small.directory.chmod, stat.S_IMODE(small.directory.stat().st_mode))
        small.directory.chmod(0o755)
        host = cleanup.enter_context(deploy_host(root, SUDOERS_RULE))
        yield SshRelease(_project(root / "project", host), host)
