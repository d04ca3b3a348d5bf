"""A real SFTP-only offsite target (a Hetzner Storage Box stand-in): sshd on a loopback port, a chrooted user
that can do nothing but internal-sftp, reached by rclone with a key and a pinned host key."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from wfops.pgcluster import free_port

SSHD = "/usr/sbin/sshd"
# One per process: pytest-xdist workers each start their own target (and remove their own user).
SFTP_USER = f"wfops-sftp-{os.getpid()}"
# A sentinel crypt password: the tests prove it never shows in output or process arguments.
CRYPT_PASSWORD = "sentinel-crypt-7f3a9c1e2b"


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
            # A refused connection is final here; rclone's default backoff would spend ~11 s per failing test.
            "OFFSITE_RETRIES": "1",
            "OFFSITE_LOW_LEVEL_RETRIES": "1",
            **extra,
        }

    def files(self, path: str) -> list[Path]:
        base = self.store / path
        return sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _wait_for_port(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"sshd did not listen on {port}: {log.read_text()}")


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
    host_key = root / "ssh_host_ed25519_key"
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key))
    key = root / "client" / "offsite_ed25519"
    key.parent.mkdir(mode=0o700)
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "wfops-offsite-test", "-f", str(key))
    authorized = root / "authorized_keys"
    authorized.mkdir()
    shutil.copy(key.with_suffix(".pub"), authorized / SFTP_USER)
    port = free_port()
    known_hosts = root / "client" / "known_hosts"
    key_type, key_data = host_key.with_suffix(".pub").read_text().split()[:2]
    known_hosts.write_text(f"[127.0.0.1]:{port} {key_type} {key_data}\n")
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {root / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}/%u",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin no",
                f"AllowUsers {SFTP_USER}",
                "UsePAM no",
                "StrictModes no",
                "LogLevel VERBOSE",
                "Subsystem sftp internal-sftp",
                f"Match User {SFTP_USER}",
                "  ForceCommand internal-sftp",
                f"  ChrootDirectory {chroot}",
                "  AllowTcpForwarding no",
                "  X11Forwarding no",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = root / "sshd.log"
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=log.open("wb"))
    try:
        _wait_for_port(process, port, log)
        yield SftpTarget(root, chroot, port, key, known_hosts, log)
    finally:
        process.terminate()
        process.wait(timeout=10)
        if created:
            subprocess.run(["userdel", SFTP_USER], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
