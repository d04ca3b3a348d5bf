"""A real SFTP-only offsite target (a Hetzner Storage Box stand-in): sshd on a loopback port, a chrooted user
that can do nothing but internal-sftp, reached by rclone with a key and a pinned host key."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from loopback_sshd import run, start_sshd, user_exists
from wfops.pgcluster import free_port

# One per process: pytest-xdist workers each start their own target (and remove their own user).
SFTP_USER = f"wfops-sftp-{os.getpid()}"
# A sentinel crypt password and salt: the tests prove they never show in output or process arguments.
CRYPT_PASSWORD = "sentinel-crypt-7f3a9c1e2b"
CRYPT_SALT = "sentinel-salt-4d8e0b6a31"
# The key check's file on the target (its name is not encrypted; its content is).
KEY_CHECK_FILE = "weddingflo-keycheck.bin"


@dataclass
class SftpTarget:
    root: Path
    chroot: Path
    port: int
    key: Path
    known_hosts: Path
    log: Path

    @property
    def store(self) -> Path:
        """What the provider sees: the files under the chroot's writable directory."""
        return self.chroot / "store"

    def offsite_env(self, path: str, **extra: str) -> dict[str, str]:
        """The tool's OFFSITE_* settings for this target (a subdirectory per test keeps tests apart)."""
        return {
            "OFFSITE_REMOTE_TYPE": "sftp",
            "OFFSITE_REMOTE_HOST": "127.0.0.1",
            "OFFSITE_REMOTE_PORT": str(self.port),
            "OFFSITE_REMOTE_USER": SFTP_USER,
            "OFFSITE_REMOTE_KEY_FILE": str(self.key),
            "OFFSITE_REMOTE_KNOWN_HOSTS_FILE": str(self.known_hosts),
            # internal-sftp runs no shell commands (no remote md5sum): say so instead of letting rclone probe.
            "OFFSITE_REMOTE_SHELL_TYPE": "none",
            "OFFSITE_PATH": f"/store/{path}",
            "OFFSITE_CRYPT_PASSWORD": CRYPT_PASSWORD,
            "OFFSITE_CRYPT_SALT": CRYPT_SALT,
            # A refused connection is final here; rclone's default backoff would spend ~11 s per failing test.
            "OFFSITE_RETRIES": "1",
            "OFFSITE_LOW_LEVEL_RETRIES": "1",
            **extra,
        }

    def files(self, path: str) -> list[Path]:
        base = self.store / path
        return sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []

    def copies(self, path: str) -> list[Path]:
        """The encrypted archives and manifests (every file but the key check)."""
        return [p for p in self.files(path) if p.name != KEY_CHECK_FILE]

    def largest(self, path: str) -> Path:
        """The biggest encrypted file: an archive."""
        return max(self.copies(path), key=lambda p: p.stat().st_size)

    def snapshot(self, path: str) -> dict[str, bytes]:
        """Every file on the target by name, with its bytes: what "nothing was uploaded or deleted" compares."""
        return {str(p.relative_to(self.store)): p.read_bytes() for p in self.files(path)}


@contextmanager
def sftp_target() -> Iterator[SftpTarget]:
    assert os.geteuid() == 0, "the offsite tests start sshd and create an SFTP-only user: run them as root"
    # sshd insists that every component of a ChrootDirectory is root-owned and writable by root only: not /tmp.
    root = Path(tempfile.mkdtemp(prefix="wfops-sftp-", dir="/var/lib"))
    root.chmod(0o755)
    created = not user_exists(SFTP_USER)
    if created:
        run("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SFTP_USER)
    run("usermod", "-p", "*", SFTP_USER)  # no password, but not locked (sshd refuses locked accounts)
    chroot = root / "chroot"
    chroot.mkdir(mode=0o755)
    (chroot / "store").mkdir()
    shutil.chown(chroot / "store", SFTP_USER, SFTP_USER)
    key = root / "client" / "offsite_ed25519"
    key.parent.mkdir(mode=0o700)
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "wfops-offsite-test", "-f", str(key))
    authorized = root / "authorized_keys"
    authorized.mkdir()
    shutil.copy(key.with_suffix(".pub"), authorized / SFTP_USER)
    port = free_port()
    known_hosts = root / "client" / "known_hosts"
    process: subprocess.Popen[bytes] | None = None
    try:
        process, log = start_sshd(
            root,
            port,
            authorized,
            SFTP_USER,
            [
                "Subsystem sftp internal-sftp",
                f"Match User {SFTP_USER}",
                "  ForceCommand internal-sftp",
                f"  ChrootDirectory {chroot}",
                "  AllowTcpForwarding no",
                "  X11Forwarding no",
            ],
        )
        key_type, key_data = (root / "ssh_host_ed25519_key.pub").read_text().split()[:2]
        known_hosts.write_text(f"[127.0.0.1]:{port} {key_type} {key_data}\n")
        yield SftpTarget(root, chroot, port, key, known_hosts, log)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
        if created:
            subprocess.run(["userdel", SFTP_USER], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
