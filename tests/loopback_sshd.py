"""A real sshd on a loopback port for the tests (the SSH host scenario, the SFTP offsite target), and the
commands both use to set up the system users it serves."""

from __future__ import annotations

import pwd
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def start_sshd(
    root: Path, port: int, authorized: Path, user: str, extra: Sequence[str] = (), permit_root_login: str = "no"
) -> tuple[subprocess.Popen[bytes], Path]:
    """sshd -D on 127.0.0.1:port for `user` only, key auth from authorized/<user>, a fresh host key in root;
    `extra` lines are appended to its config (sshd takes a keyword's first value: they cannot override the ones
    here, hence `permit_root_login`). Returns the process once it listens, and its log."""
    host_key = root / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    config = root / "sshd_config"
    lines = [
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {host_key}",
        f"PidFile {root / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized}/%u",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        f"PermitRootLogin {permit_root_login}",
        f"AllowUsers {user}",
        "UsePAM no",
        "StrictModes no",
        "LogLevel VERBOSE",
        *extra,
        "",
    ]
    config.write_text("\n".join(lines))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    log = root / "sshd.log"
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=log.open("wb"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, log
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise AssertionError(f"sshd did not listen on {port}: {log.read_text()}")
