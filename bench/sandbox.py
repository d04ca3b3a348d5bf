"""The benchmark's sandbox: bring it up at N guests, keep template copies, reset the database and host tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg2

from wfops.pgcluster import PostgresCluster

REPO = Path(__file__).resolve().parents[1]
DATABASE = "weddingflo"
PRISTINE = "weddingflo_bench_pristine"
MIGRATED = "weddingflo_bench_migrated"


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclass
class Sandbox:
    """One sandbox directory built by `wfops sandbox up`."""

    directory: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "WFOPS_SANDBOX_DIR": str(self.directory),
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        }

    @property
    def state(self) -> dict[str, object]:
        return json.loads((self.directory / "state.json").read_text())

    @property
    def ops_url(self) -> str:
        return (self.directory / "database_url").read_text().strip()

    def cluster(self) -> PostgresCluster:
        return PostgresCluster(base_dir=self.directory / "pg", port=int(str(self.state["port"])))

    def superuser(self, dbname: str = "postgres") -> psycopg2.extensions.connection:
        connection = psycopg2.connect(self.cluster().admin_dsn(dbname))
        connection.autocommit = True
        return connection

    def libpq_env(self, dbname: str = DATABASE) -> dict[str, str]:
        """The ops role's URL as libpq variables: the password never reaches a command line."""
        parts = urlsplit(self.ops_url)
        return {
            **os.environ,
            "PGHOST": parts.hostname or "127.0.0.1",
            "PGPORT": str(parts.port or 5432),
            "PGUSER": unquote(parts.username or ""),
            "PGPASSWORD": unquote(parts.password or ""),
            "PGDATABASE": dbname,
        }

    def wfops(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(REPO / ".venv" / "bin" / "wfops"), *args],
            capture_output=True,
            text=True,
            env={**self.env, **(extra_env or {})},
            cwd=REPO,
            check=False,
        )

    def up(self, guests: int) -> None:
        """`wfops sandbox up --guests N`; an existing sandbox of another size is rebuilt."""
        if (self.directory / "state.json").is_file():
            if int(str(self.state["guests"])) == guests:
                log(f"sandbox {self.directory} already holds {guests} guests; reusing it")
                self.wfops("sandbox", "up", "--guests", str(guests))  # restarts a stopped server or stand-ins
                return
            log(f"sandbox {self.directory} holds {self.state['guests']} guests; rebuilding at {guests}")
            self.wfops("sandbox", "down")
        log(f"sandbox up --guests {guests} in {self.directory} (seeding takes a while at 1M)")
        done = self.wfops("sandbox", "up", "--guests", str(guests))
        if done.returncode != 0:
            raise RuntimeError(f"wfops sandbox up failed: {done.stderr[-2000:]}{done.stdout[-2000:]}")

    def owner(self) -> str:
        with self.superuser() as connection, connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (DATABASE,))
            return str(cursor.fetchone()[0])

    def has_database(self, name: str) -> bool:
        connection = self.superuser()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                return cursor.fetchone() is not None
        finally:
            connection.close()

    def _terminate(self, cursor: psycopg2.extensions.cursor, name: str) -> None:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )

    def snapshot(self, template: str) -> None:
        """CREATE DATABASE <template> TEMPLATE weddingflo (replacing an older copy)."""
        connection = self.superuser()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{template}"')
                self._terminate(cursor, DATABASE)
                cursor.execute(f'CREATE DATABASE "{template}" TEMPLATE "{DATABASE}" STRATEGY = FILE_COPY')
        finally:
            connection.close()

    def restore(self, template: str = PRISTINE, owner: str | None = None) -> None:
        """weddingflo := a fresh copy of the template (owner, grants and extensions come along)."""
        owner = owner or self.owner()
        connection = self.superuser()
        try:
            with connection.cursor() as cursor:
                self._terminate(cursor, DATABASE)
                cursor.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
                cursor.execute(
                    f'CREATE DATABASE "{DATABASE}" TEMPLATE "{template}" OWNER "{owner}" STRATEGY = FILE_COPY'
                )
                # The copy's dirty pages written now, not during the measured command.
                cursor.execute("CHECKPOINT")
        finally:
            connection.close()

    def reset_host(self, host_dir: Path | None = None) -> None:
        """The host tree's release lock, ledger and backups emptied, so every run starts alike (the sandbox's own
        tree, or another host's such as the SSH scenario's)."""
        for sub in ("var/lib/weddingflo", "var/backups/weddingflo"):
            path = (host_dir or self.directory / "host") / sub
            if path.is_dir():
                for child in path.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()

    def server_version(self) -> str:
        connection = self.superuser()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SHOW server_version")
                return str(cursor.fetchone()[0])
        finally:
            connection.close()

    def size(self, name: str = DATABASE) -> int:
        connection = self.superuser()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_database_size(%s)", (name,))
                return int(cursor.fetchone()[0])
        finally:
            connection.close()

    def guest_ids(self, count: int) -> list[str]:
        """`count` random guest ids, picked once for the concurrent writer."""
        connection = psycopg2.connect(self.ops_url)
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT id::text FROM guests TABLESAMPLE BERNOULLI (5) ORDER BY random() LIMIT %s", (count,)
                )
                ids = [row[0] for row in cursor.fetchall()]
                if len(ids) < count:
                    cursor.execute("SELECT id::text FROM guests ORDER BY random() LIMIT %s", (count,))
                    ids = [row[0] for row in cursor.fetchall()]
            return ids
        finally:
            connection.close()


def applied_migrations(dsn: str) -> int:
    """How many migrations drizzle's bookkeeping table records in the database at `dsn`."""
    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM drizzle.__drizzle_migrations")
            return int(cursor.fetchone()[0])
    finally:
        connection.close()
