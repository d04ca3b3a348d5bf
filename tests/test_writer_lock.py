"""One writer at a time: migrate, normalize, stats-repair and the rollback's restore each hold wfops's writer lock
(a PostgreSQL advisory lock) for their whole run, so two of them never write the same database at once, whatever
the host's release lock says. Each one that finds the lock held waits, then names the holder."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import psycopg2
import pytest

from backup_helpers import load_tool_module, run_tool
from conftest import REPO, VENV_BIN, SandboxHandle, module_result
from wfops.plugin_code import load

WRITER_LOCK_KEY = load("wfops_pg").WRITER_LOCK_KEY


def test_the_backup_tool_and_the_modules_hold_the_same_lock() -> None:
    assert load_tool_module().WRITER_LOCK_KEY == WRITER_LOCK_KEY


@pytest.fixture
def held(shared_sandbox: SandboxHandle) -> Iterator[str]:
    """The sandbox database's writer lock held by a session that says it is a restore; yields its URL."""
    holder = psycopg2.connect(shared_sandbox.ops_url, application_name="wfops-writer restore")
    holder.autocommit = True
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", (WRITER_LOCK_KEY,))
    yield shared_sandbox.ops_url
    holder.close()


def _module(name: str, args: dict[str, object], *flags: str) -> subprocess.CompletedProcess[str]:
    """A wfops module ad hoc on localhost (`ansible -m`), as a role calls it; `--check` for a dry run."""
    return subprocess.run(
        [
            *(str(VENV_BIN / "ansible"), "localhost", "-c", "local", *flags),
            *("-e", f"ansible_python_interpreter={VENV_BIN}/python", "-m", name, "-a", json.dumps(args), "-o"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_LOCALHOST_WARNING": "0"},
    )


def test_normalize_and_stats_repair_wait_for_another_writer_then_name_it(held: str) -> None:
    completed = _module("wfops_normalize", {"database_url": held, "section": "client_stats", "writer_lock_wait": 1})
    assert "FAILED!" in completed.stdout
    message = module_result(completed)["msg"]
    assert "another phase is writing this database: wfops-writer restore" in message
    assert "normalize runs once it has finished" in message


def test_migrate_waits_for_another_writer_then_names_it(held: str) -> None:
    migrations = str(REPO / "sandbox-app" / "drizzle")
    completed = _module("wfops_drizzle_migrate", {"database_url": held, "migrations_dir": migrations, "lock_wait": 1})
    assert "FAILED!" in completed.stdout
    assert "another phase is writing this database: wfops-writer restore" in module_result(completed)["msg"]


def test_a_dry_run_takes_no_writer_lock(held: str) -> None:
    """Check mode writes nothing, so it does not queue behind a writer."""
    args = {"database_url": held, "section": "client_stats", "writer_lock_wait": 1}
    dry = _module("wfops_normalize", args, "--check")
    assert "FAILED!" not in dry.stdout and module_result(dry)["check_mode"] is True, dry.stdout


def test_a_restore_waits_for_another_writer_and_changes_nothing(shared_sandbox: SandboxHandle) -> None:
    backup = shared_sandbox.wfops("run", "backup", "--env", "local", "--json")
    assert backup.returncode == 0, backup.stdout + backup.stderr
    backup_id = json.loads(backup.stdout)["phases"][0]["result"]["id"]
    env_file = shared_sandbox.directory / "host" / "etc" / "weddingflo-backup" / "backup.env"
    holder = psycopg2.connect(shared_sandbox.ops_url, application_name="wfops-writer normalize")
    holder.autocommit = True
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", (WRITER_LOCK_KEY,))
            cursor.execute("SELECT count(*) FROM guests")
            guests = cursor.fetchone()[0]
        refused = run_tool(
            {}, "--env-file", str(env_file), "restore", backup_id, "--dbname", "weddingflo", "--writer-lock-wait", "1"
        )
    finally:
        holder.close()
    assert refused.returncode != 0
    assert "another phase is writing weddingflo: wfops-writer normalize" in refused.stderr
    connection = shared_sandbox.connect()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM guests")
        assert cursor.fetchone()[0] == guests
    connection.close()
