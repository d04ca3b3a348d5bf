"""Shared scenes: real PostgreSQL clusters and sandboxes started by the tests themselves."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from wfops.pgcluster import PostgresCluster, free_port
from wfops.sandbox import service as sandbox

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL 15 cluster for the whole session (fsync off: it is disposable)."""
    cluster = PostgresCluster(base_dir=tmp_path_factory.mktemp("pg"), port=free_port(), settings={"fsync": "off"})
    cluster.init()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def fresh_database(pg_cluster: PostgresCluster) -> Iterator[str]:
    """An empty database of its own for one test; yields its admin DSN."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(pg_cluster.admin_dsn())
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    yield pg_cluster.admin_dsn(name)
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


class SandboxHandle:
    """A sandbox in its own directory, as `wfops sandbox up` builds it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "WFOPS_SANDBOX_DIR": str(self.directory)}

    @property
    def ops_url(self) -> str:
        return (self.directory / "database_url").read_text().strip()

    def connect(self) -> psycopg2.extensions.connection:
        return psycopg2.connect(self.ops_url)

    def superuser(self) -> psycopg2.extensions.connection:
        """The cluster's superuser over its private socket (for what even the owner role may not do)."""
        import json

        port = json.loads((self.directory / "state.json").read_text())["port"]
        connection = psycopg2.connect(
            PostgresCluster(base_dir=self.directory / "pg", port=port).admin_dsn("weddingflo")
        )
        connection.autocommit = True
        return connection

    def wfops(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return run_wfops(*args, env=self.env, check=check)


def run_wfops(*args: str, env: dict[str, str] | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "wfops"), *args],
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        check=check,
        cwd=REPO,
    )


def run_module(module: str, args: dict[str, object]) -> subprocess.CompletedProcess[str]:
    """One of wfops's Ansible modules, ad hoc on localhost, as a role would call it."""
    import json

    return subprocess.run(
        [
            str(VENV_BIN / "ansible"),
            "localhost",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={VENV_BIN}/python",
            "-m",
            module,
            "-a",
            json.dumps(args),
            "-o",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        },
    )


def module_result(completed: subprocess.CompletedProcess[str]) -> dict:
    """The JSON result of an ad-hoc module run (`ansible -o` prints `host | STATUS => {...}`)."""
    import json

    return json.loads(completed.stdout.strip().splitlines()[-1].split("=>", 1)[1])


def start_sandbox(directory: Path, guests: int) -> SandboxHandle:
    previous = os.environ.get("WFOPS_SANDBOX_DIR")
    os.environ["WFOPS_SANDBOX_DIR"] = str(directory)
    try:
        sandbox.up(guests, log=lambda _message: None)
    finally:
        if previous is None:
            os.environ.pop("WFOPS_SANDBOX_DIR", None)
        else:
            os.environ["WFOPS_SANDBOX_DIR"] = previous
    return SandboxHandle(directory)


def stop_sandbox(handle: SandboxHandle) -> None:
    os.environ["WFOPS_SANDBOX_DIR"] = str(handle.directory)
    try:
        sandbox.down(log=lambda _message: None)
    finally:
        os.environ.pop("WFOPS_SANDBOX_DIR", None)
    shutil.rmtree(handle.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """One 3,000-guest sandbox at migration 0022 for tests that only read it."""
    handle = start_sandbox(tmp_path_factory.mktemp("sandbox"), guests=3000)
    yield handle
    stop_sandbox(handle)


def table_checksums(handle: SandboxHandle) -> dict[str, str]:
    """Row count and an md5 of every table's rows in the app's schemas: equal means nothing was lost or changed."""
    connection = handle.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
                " WHERE schemaname IN ('public', 'drizzle') ORDER BY 1"
            )
            sums = {}
            for (table,) in cursor.fetchall():
                cursor.execute(
                    f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
                )
                count, digest = cursor.fetchone()
                sums[table] = f"{count}:{digest}"
            return sums
    finally:
        connection.close()
