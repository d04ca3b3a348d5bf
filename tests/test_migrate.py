"""Phase 3: Drizzle-compatible both ways, locked, verified before anything runs, all or nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from conftest import REPO, SandboxHandle, module_result, run_module, start_sandbox, stop_sandbox
from migrate_helpers import bookkeeping_rows, concurrent_runs, schema_dump
from wfops.drizzle import (
    ADVISORY_LOCK_KEY,
    MigrationError,
    Settings,
    migrate,
    migrations_from_files,
    read_migrations,
    write_migration_files,
)

MIGRATIONS = REPO / "sandbox-app" / "drizzle"
ADVISORY_KEY_SQL = "SELECT pg_advisory_lock(%s)"


@pytest.fixture
def box(tmp_path: Path) -> Iterator[SandboxHandle]:
    handle = start_sandbox(tmp_path / "box", guests=1000)
    yield handle
    stop_sandbox(handle)


def _database_fingerprint(url: str) -> dict[str, object]:
    """The schema as pg_dump prints it, and an md5 of every table's rows."""
    schema = schema_dump(url)
    connection = psycopg2.connect(url)
    tables = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
                " WHERE schemaname IN ('public', 'drizzle') ORDER BY 1"
            )
            for (table,) in cursor.fetchall():
                cursor.execute(f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t")
                tables[table] = cursor.fetchone()[0]
    finally:
        connection.close()
    return {"schema": schema, "tables": tables}


def _drizzle_kit_migrate(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["npx", "--no-install", "drizzle-kit", "migrate"],
        cwd=REPO / "sandbox-app",
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "DATABASE_URL": url},
    )


def _empty_database(box: SandboxHandle, name: str) -> str:
    admin = psycopg2.connect(box.ops_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    admin.close()
    return box.ops_url.rsplit("/", 1)[0] + "/" + name


def _module(url: str, migrations_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The migrate module itself, ad hoc, as the role calls it; args are key=value."""
    return run_module(
        "wfops_drizzle_migrate",
        {"migrations_dir": str(migrations_dir), "database_url": url, **dict(a.split("=", 1) for a in args)},
    )


_module_result = module_result


def _releases(box: SandboxHandle) -> Path:
    return box.directory / "host" / "var" / "lib" / "weddingflo" / "releases"


def test_the_sandbox_release_applies_0023_to_0027_and_a_second_run_applies_nothing(box: SandboxHandle) -> None:
    first = box.wfops("run", "migrate", "--env", "local", "-e", "release_ref=r1", "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)["phases"][0]["result"]
    assert [m["tag"][:4] for m in report["applied"]] == ["0023", "0024", "0025", "0026", "0027"]
    assert report["head_before"]["tag"].startswith("0022_") and report["head_after"]["tag"].startswith("0027_")
    assert report["findings"] == []
    with box.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM guests")
        assert cursor.fetchone()[0] == 1000
        cursor.execute("SELECT count(*) FROM gifts WHERE company_id IS NULL")
        assert cursor.fetchone()[0] == 0  # 0027's backfill of the late tables
        cursor.execute("SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE relname = 'guests'")
        assert cursor.fetchone()[0] is True
        cursor.execute(
            "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'guests'"
            " AND column_name = 'company_id'"
        )
        assert cursor.fetchone()[0] == "YES"  # 0026 skipped NOT NULL: legacy NULLs remain for normalize
    second = box.wfops("run", "migrate", "--env", "local", "-e", "release_ref=r1", "--json")
    again = json.loads(second.stdout)["phases"][0]["result"]
    assert again["applied"] == [] and again["pending"] == []
    assert len(bookkeeping_rows(box.ops_url)) == 28
    # The record of the release, kept once it succeeded: the files byte for byte.
    record = _releases(box) / "r1" / "drizzle"
    assert report["record"] == str(record)
    assert (record / "0024_enable_rls.sql").read_bytes() == (MIGRATIONS / "0024_enable_rls.sql").read_bytes()


def test_check_mode_prints_the_plan_and_changes_nothing(box: SandboxHandle) -> None:
    before = bookkeeping_rows(box.ops_url)
    result = box.wfops("run", "migrate", "--env", "local", "--check", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)["phases"][0]["result"]["pending"]
    assert [p["tag"][:4] for p in plan] == ["0023", "0024", "0025", "0026", "0027"]
    assert plan[1]["statements"] == 24 and plan[1]["first_lines"][0].startswith("-- Custom SQL migration")
    assert bookkeeping_rows(box.ops_url) == before
    assert not (box.directory / "host" / "var" / "lib").exists()


def test_a_database_migrated_by_wfops_is_up_to_date_for_real_drizzle_kit(box: SandboxHandle) -> None:
    url = _empty_database(box, "by_wfops")
    connection = psycopg2.connect(url)
    try:
        outcome = migrate(connection, read_migrations(MIGRATIONS))
    finally:
        connection.close()
    assert len(outcome.applied) == 28
    before = bookkeeping_rows(url)
    kit = _drizzle_kit_migrate(url)
    assert kit.returncode == 0, kit.stdout + kit.stderr
    assert "migrations applied successfully" in kit.stdout + kit.stderr
    assert bookkeeping_rows(url) == before


def test_a_database_migrated_by_drizzle_kit_is_up_to_date_for_wfops(box: SandboxHandle) -> None:
    url = _empty_database(box, "by_drizzle_kit")
    kit = _drizzle_kit_migrate(url)
    assert kit.returncode == 0, kit.stdout + kit.stderr
    result = _module(url, MIGRATIONS)
    assert result.returncode == 0, result.stdout + result.stderr
    outcome = _module_result(result)
    assert outcome["changed"] is False
    assert outcome["pending"] == [] and outcome["applied"] == [] and outcome["findings"] == []
    assert outcome["head_after"]["tag"].startswith("0027_")
    password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert password not in result.stdout + result.stderr


def test_a_migration_failing_half_way_leaves_the_database_exactly_as_before(box: SandboxHandle, tmp_path: Path) -> None:
    broken = tmp_path / "drizzle"
    shutil.copytree(MIGRATIONS, broken)
    last = sorted(broken.glob("0027_*.sql"))[0]
    last.write_text(last.read_text() + "\n--> statement-breakpoint\nUPDATE no_such_table SET x = 1;\n")
    before = _database_fingerprint(box.ops_url)
    result = box.wfops(
        "release",
        "--env",
        "local",
        "--ref",
        "broken",
        "--from",
        "migrate",
        "-e",
        f"migrate_source_dir={broken}",
        "--json",
    )
    assert result.returncode == 1
    phases = {p["name"]: p for p in json.loads(result.stdout)["phases"]}
    error = phases["migrate"]["result"]["error"]
    assert "0027_company_id_backfill_late_tables failed at statement" in error and "no_such_table" in error
    assert "nothing was applied" in error
    assert (
        phases["normalize"]["status"] == "skipped"
        and phases["normalize"]["result"]["reason"] == "not run: migrate failed"
    )
    assert _database_fingerprint(box.ops_url) == before
    assert not (_releases(box) / "broken").exists(), "no record of a release whose migrations failed"


def test_an_edited_applied_migration_is_caught_before_anything_runs(box: SandboxHandle, tmp_path: Path) -> None:
    edited = tmp_path / "drizzle"
    shutil.copytree(MIGRATIONS, edited)
    target = sorted(edited.glob("0005_*.sql"))[0]
    target.write_text(target.read_text() + "\n-- tidied up later\n")
    result = _module(box.ops_url, edited)
    assert result.returncode != 0
    outcome = _module_result(result)
    assert "0005_clients was edited after it was applied" in outcome["msg"]
    assert outcome["findings"][0]["kind"] == "edited"
    assert outcome["findings"][0]["file_hash"] != outcome["findings"][0]["applied_hash"]
    assert len(bookkeeping_rows(box.ops_url)) == 23
    # Through the role too: refused before anything runs, and no record of the refused release on the host.
    source = f"migrate_source_dir={edited}"
    refused = box.wfops("run", "migrate", "--env", "local", "-e", "release_ref=r2", "-e", source)
    assert refused.returncode == 1
    assert not (_releases(box) / "r2").exists()


def test_an_old_migration_drizzle_would_skip_is_caught_and_can_be_allowed(box: SandboxHandle, tmp_path: Path) -> None:
    folder = tmp_path / "drizzle"
    shutil.copytree(MIGRATIONS, folder)
    journal_path = folder / "meta" / "_journal.json"
    journal = json.loads(journal_path.read_text())
    when_0019 = journal["entries"][19]["when"]
    journal["entries"].insert(
        20, {"idx": 99, "version": "7", "when": when_0019 + 1, "tag": "0019b_hotfix", "breakpoints": True}
    )
    journal_path.write_text(json.dumps(journal))
    (folder / "0019b_hotfix.sql").write_text("CREATE INDEX hotfix_idx ON guests (email);")
    refused = _module(box.ops_url, folder)
    assert refused.returncode != 0
    message = _module_result(refused)["msg"]
    assert "0019b_hotfix" in message and "Drizzle would skip it silently" in message
    assert len(bookkeeping_rows(box.ops_url)) == 23
    allowed = _module(box.ops_url, folder, "allow_drift=true")
    assert allowed.returncode == 0, allowed.stdout
    assert [m["tag"][:4] for m in _module_result(allowed)["applied"]] == ["0023", "0024", "0025", "0026", "0027"]


def test_two_concurrent_runs_never_both_apply(box: SandboxHandle) -> None:
    outcomes = concurrent_runs(box.ops_url, read_migrations(MIGRATIONS), Settings(lock_wait_s=60))
    applied = sorted(len(o.applied) for o in outcomes)  # type: ignore[attr-defined]
    assert applied == [0, 5]
    rows = bookkeeping_rows(box.ops_url)
    assert len(rows) == 28 and len({r[1] for r in rows}) == 28


def test_a_run_that_cannot_get_the_migration_lock_names_its_holder(box: SandboxHandle) -> None:
    holder = psycopg2.connect(box.ops_url, application_name="release-by-alice")
    holder.autocommit = True
    with holder.cursor() as cursor:
        cursor.execute(ADVISORY_KEY_SQL, (ADVISORY_LOCK_KEY,))
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        started = time.monotonic()
        result = _module(box.ops_url, MIGRATIONS, "lock_wait=1")
        assert time.monotonic() - started < 30
        assert result.returncode != 0
        message = _module_result(result)["msg"]
        assert f"release-by-alice (pid {pid}," in message and "waited 1s" in message
        assert len(bookkeeping_rows(box.ops_url)) == 23
    finally:
        holder.close()


def test_a_migration_blocked_by_a_lock_gives_up_retries_and_leaves_the_other_session_alone(box: SandboxHandle) -> None:
    migrations = read_migrations(MIGRATIONS)
    app = psycopg2.connect(box.ops_url)
    with app.cursor() as cursor:  # an app transaction reading clients: 0024's ALTER TABLE needs it gone
        cursor.execute("SELECT count(*) FROM clients")
    connection = psycopg2.connect(box.ops_url)
    started = time.monotonic()
    try:
        with pytest.raises(MigrationError, match=r"could not get a lock within 200ms in 3 attempts"):
            migrate(connection, migrations, settings=Settings(lock_timeout="200ms", retries=2, retry_delay_s=0.1))
    finally:
        connection.close()
    assert time.monotonic() - started < 10
    with app.cursor() as cursor:  # the app's transaction was never disturbed
        cursor.execute("UPDATE clients SET partner1_last_name = 'Kept' WHERE partner1_first_name = 'Alex0'")
        assert cursor.rowcount == 1
    app.commit()
    app.close()
    assert len(bookkeeping_rows(box.ops_url)) == 23

    # When the blocker goes away between attempts, a retry succeeds.
    blocker = psycopg2.connect(box.ops_url)
    with blocker.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM clients")
    threading.Timer(0.6, blocker.rollback).start()
    connection = psycopg2.connect(box.ops_url)
    try:
        outcome = migrate(connection, migrations, settings=Settings(lock_timeout="200ms", retries=5, retry_delay_s=0.2))
    finally:
        connection.close()
        blocker.close()
    assert outcome.attempts >= 2 and len(outcome.applied) == 5


def test_migrations_sent_from_the_controller_are_kept_byte_for_byte_and_hash_as_read_from_disk(tmp_path: Path) -> None:
    files = {"meta/_journal.json": (MIGRATIONS / "meta" / "_journal.json").read_text()}
    files |= {p.name: p.read_bytes().decode() for p in MIGRATIONS.glob("*.sql")}
    files["0001_users.sql"] = files["0001_users.sql"].replace("\n", "\r\n") + "\n\n"
    write_migration_files(tmp_path / "drizzle", files)
    kept = tmp_path / "drizzle" / "0001_users.sql"
    assert kept.read_bytes() == files["0001_users.sql"].encode()
    assert oct(kept.stat().st_mode & 0o777) == "0o644"
    from_disk, sent = read_migrations(tmp_path / "drizzle"), migrations_from_files(files, "sent")
    assert [(m.tag, m.hash) for m in from_disk] == [(m.tag, m.hash) for m in sent]
    assert len(sent) == 28 and "\r\n" in sent[1].sql_text and sent[1].sql_text.endswith("\n\n")
    with pytest.raises(MigrationError, match="not a file inside"):
        write_migration_files(tmp_path / "drizzle", {"../escaped.sql": "SELECT 1;"})
    assert not (tmp_path / "escaped.sql").exists()
    with pytest.raises(MigrationError, match=r"0002_sessions\.sql is in the journal but missing"):
        migrations_from_files({k: v for k, v in files.items() if k != "0002_sessions.sql"}, "sent")
