"""Throwaway PostgreSQL clusters started with initdb/pg_ctl (the sandbox and the tests use them)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

# PostgreSQL refuses to run as root. As root we run its binaries in a user namespace where we are
# "nobody": files stay root's on disk (no chown of the checkout), the server just runs unprivileged.
_NAMESPACE_PREFIX = ("unshare", "--user", "--map-user=65534", "--map-group=65534")
_UNIX_SOCKET_MAX = 100


class PostgresUnavailableError(RuntimeError):
    """The PostgreSQL server binaries cannot be found or cannot run here."""


@cache
def server_bindir() -> Path:
    """The directory of initdb, pg_ctl, postgres, pg_dump and pg_restore (PostgreSQL 15)."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    candidates.append(Path("/usr/lib/postgresql/15/bin"))
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise PostgresUnavailableError(
        "PostgreSQL 15 server binaries (initdb, pg_ctl) were not found: run `make setup` as root, "
        "or install them with `sudo apt-get install postgresql-15`"
    )


@cache
def unprivileged_prefix() -> tuple[str, ...]:
    """The command prefix that runs PostgreSQL's server tools as a non-root user."""
    if os.geteuid() != 0:
        return ()
    probe = subprocess.run([*_NAMESPACE_PREFIX, "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        raise PostgresUnavailableError(
            "running as root, and user namespaces are not available to run PostgreSQL unprivileged "
            f"({probe.stderr.strip() or 'unshare failed'}): run wfops as a non-root user"
        )
    return _NAMESPACE_PREFIX


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresCluster:
    """One cluster: its data directory, port and unix socket directory."""

    base_dir: Path
    port: int
    superuser: str = "supabase_admin"
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "postgresql.log"

    @property
    def socket_dir(self) -> Path:
        preferred = self.base_dir / "run"
        if len(str(preferred)) + len(f"/.s.PGSQL.{self.port}") <= _UNIX_SOCKET_MAX:
            return preferred
        # A deep checkout path would overflow sun_path; fall back to a private dir in /tmp.
        return Path("/tmp") / f"wfops-pg-{os.getuid()}-{self.port}"  # noqa: S108

    def _tool(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [*unprivileged_prefix(), str(server_bindir() / name), *args]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def init(self) -> None:
        """initdb with local trust on the private socket and scram passwords on loopback TCP."""
        self.base_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        result = self._tool(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            self.superuser,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        if result.returncode != 0:
            raise PostgresUnavailableError(f"initdb failed: {result.stderr.strip()[-500:]}")
        conf = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "unix_socket_permissions": "0700",
            **self.settings,
        }
        with (self.data_dir / "postgresql.conf").open("a") as handle:
            handle.write("\n# wfops throwaway cluster\n")
            for key, value in conf.items():
                handle.write(f"{key} = {value}\n")

    def start(self) -> None:
        self.socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        result = self._tool("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60", "start")
        if result.returncode != 0:
            tail = self.log_file.read_text(errors="replace")[-800:] if self.log_file.exists() else ""
            raise PostgresUnavailableError(f"PostgreSQL did not start: {result.stderr.strip()} {tail}")

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            self._tool("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return self.initialized() and self._tool("pg_ctl", "-D", str(self.data_dir), "status").returncode == 0

    def admin_dsn(self, dbname: str = "postgres") -> str:
        """The superuser's connection over the private unix socket (no password)."""
        return f"host={self.socket_dir} port={self.port} user={self.superuser} dbname={dbname}"

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base_dir, ignore_errors=True)
        if self.socket_dir != self.base_dir / "run":
            shutil.rmtree(self.socket_dir, ignore_errors=True)
