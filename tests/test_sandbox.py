"""The sandbox: the previous release's database, recorded exactly as Drizzle records it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import psycopg2
import pytest

from conftest import REPO, SandboxHandle, start_sandbox, stop_sandbox
from wfops.drizzle import read_migrations

MIGRATIONS = REPO / "sandbox-app" / "drizzle"

NODE_MIGRATE = """
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
await migrate(drizzle(pool), {
  migrationsFolder: process.env.MIGRATIONS_DIR,
  migrationsSchema: 'drizzle',
  migrationsTable: '__drizzle_migrations',
});
await pool.end();
"""


def _bookkeeping(connection: psycopg2.extensions.connection) -> list[tuple[int, str, int]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, hash, created_at FROM drizzle.__drizzle_migrations ORDER BY id")
        return [(int(i), str(h), int(c)) for i, h, c in cursor.fetchall()]


def _columns(connection: psycopg2.extensions.connection) -> list[tuple[str, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '')"
            " FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"
        )
        return [tuple(row) for row in cursor.fetchall()]


def _truncated_migrations_folder(target: Path, entries: int) -> Path:
    """A copy of the app's migrations folder whose journal stops after `entries` migrations."""
    shutil.copytree(MIGRATIONS, target)
    journal_path = target / "meta" / "_journal.json"
    journal = json.loads(journal_path.read_text())
    journal["entries"] = journal["entries"][:entries]
    journal_path.write_text(json.dumps(journal))
    return target


def test_sandbox_records_migrations_0000_to_0022_exactly_as_drizzles_own_migrator(
    shared_sandbox: SandboxHandle, tmp_path: Path
) -> None:
    ops_url = shared_sandbox.ops_url
    admin = psycopg2.connect(ops_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("DROP DATABASE IF EXISTS drizzle_reference")
        cursor.execute("CREATE DATABASE drizzle_reference")
    admin.close()
    reference_url = ops_url.rsplit("/", 1)[0] + "/drizzle_reference"
    folder = _truncated_migrations_folder(tmp_path / "drizzle", entries=23)
    node = subprocess.run(
        ["node", "--input-type=module", "-e", NODE_MIGRATE],
        cwd=REPO / "sandbox-app",
        capture_output=True,
        text=True,
        check=False,
        env={**shared_sandbox.env, "DATABASE_URL": reference_url, "MIGRATIONS_DIR": str(folder)},
    )
    assert node.returncode == 0, node.stderr

    expected = read_migrations(MIGRATIONS)[:23]
    with shared_sandbox.connect() as sandbox_db, psycopg2.connect(reference_url) as reference_db:
        ours, drizzles = _bookkeeping(sandbox_db), _bookkeeping(reference_db)
        assert ours == drizzles
        assert [(h, c) for _, h, c in ours] == [(m.hash, m.when) for m in expected]
        assert _columns(sandbox_db) == _columns(reference_db)
    assert expected[-1].tag.startswith("0022_")


def test_migration_hash_is_sha256_of_the_whole_file_and_created_at_the_journal_when() -> None:
    import hashlib

    journal = json.loads((MIGRATIONS / "meta" / "_journal.json").read_text())
    migrations = read_migrations(MIGRATIONS)
    assert len(migrations) == len(journal["entries"]) == 28
    for migration, entry in zip(migrations, journal["entries"], strict=True):
        raw = (MIGRATIONS / f"{entry['tag']}.sql").read_bytes()
        assert migration.hash == hashlib.sha256(raw).hexdigest()
        assert migration.when == entry["when"]


def _expected_legacy_counts(guests: int) -> dict[str, int]:
    """The seed's rules, counted independently of the database."""
    legacy_rsvp = sum(1 for i in range(guests) if i % 10 >= 7)
    legacy_side = sum(1 for i in range(guests) if (i // 3) % 10 >= 7)
    null_guests = sum(1 for i in range(guests) if i % 10 == 5)
    return {"legacy_rsvp": legacy_rsvp, "legacy_guest_side": legacy_side, "null_guests": null_guests}


def test_sandbox_status_shows_head_0022_and_counts_the_legacy_rows(shared_sandbox: SandboxHandle) -> None:
    result = shared_sandbox.wfops("sandbox", "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    expected = _expected_legacy_counts(3000)
    assert status["state"] == "up"
    assert status["migrations_applied"] == 23
    assert status["migration_head"].startswith("0022_")
    assert status["migrations_pending"] == 5
    assert status["legacy"]["legacy_rsvp"] == expected["legacy_rsvp"] == 900
    assert status["legacy"]["legacy_guest_side"] == expected["legacy_guest_side"]
    assert status["legacy"]["null_company_id"]["guests"] == expected["null_guests"]
    # 60 clients: those numbered 3 and 7 mod 10 drift (12), none of them soft-deleted.
    assert status["legacy"]["clients_with_stats_drift"] == 12
    assert ":***@" in status["database_url"]
    password = shared_sandbox.ops_url.split(":")[2].split("@")[0]
    assert password not in result.stdout + result.stderr

    human = shared_sandbox.wfops("sandbox", "status")
    assert "head 0022_" in human.stdout and "rsvp_status 900" in human.stdout


def test_sandbox_has_supabase_like_roles(shared_sandbox: SandboxHandle) -> None:
    with shared_sandbox.connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolname, rolcanlogin, rolbypassrls, rolsuper FROM pg_roles"
            " WHERE rolname IN ('anon', 'authenticated', 'service_role', 'postgres', 'weddingflo_app')"
        )
        roles = {name: (login, bypass, superuser) for name, login, bypass, superuser in cursor.fetchall()}
        cursor.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'guests'")
        owner = cursor.fetchone()[0]
    assert roles == {
        "anon": (False, False, False),
        "authenticated": (False, False, False),
        "service_role": (False, True, False),
        "postgres": (True, True, False),
        "weddingflo_app": (True, False, False),
    }
    assert owner == "postgres"


def test_sandbox_files_are_private(shared_sandbox: SandboxHandle) -> None:
    assert shared_sandbox.directory.stat().st_mode & 0o777 == 0o700
    for name in ("database_url", "app_database_url", "state.json"):
        assert (shared_sandbox.directory / name).stat().st_mode & 0o777 == 0o600


@pytest.mark.slow
def test_a_100000_guest_sandbox_comes_up(tmp_path: Path) -> None:
    handle = start_sandbox(tmp_path / "big", guests=100_000)
    try:
        with handle.connect() as connection, connection.cursor() as cursor:
            cursor.execute("SELECT count(*), count(*) FILTER (WHERE company_id IS NULL) FROM guests")
            guests, null_company = cursor.fetchone()
            cursor.execute("SELECT count(*) FROM clients")
            clients = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM budget")
            budget = cursor.fetchone()[0]
        assert (guests, null_company, clients, budget) == (100_000, 10_000, 2_000, 20_000)
    finally:
        stop_sandbox(handle)
    assert not (tmp_path / "big").exists()


def test_sandbox_down_then_status_says_down(tmp_path: Path) -> None:
    handle = start_sandbox(tmp_path / "box", guests=200)
    assert handle.wfops("sandbox", "status", "--json").returncode == 0
    down = handle.wfops("sandbox", "down")
    assert down.returncode == 0
    status = json.loads(handle.wfops("sandbox", "status", "--json").stdout)
    assert status["state"] == "down"
