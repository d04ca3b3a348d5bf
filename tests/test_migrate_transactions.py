"""Phase 3 on the folders real projects write: comment-only chunks, a migration's own COMMIT; and CONCURRENTLY, the
session's timeouts, per-migration transactions, any libpq connection string, and the role pointed at nothing but a
folder and a database."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import psycopg2
import pytest

from conftest import REPO, VENV_BIN, module_result, run_module
from drizzle_kit import FOLDERS
from migrate_helpers import bookkeeping_rows, concurrent_runs, failing, tags_of
from wfops.drizzle import MigrationError, Settings, migrate, read_migrations
from wfops.pgcluster import PostgresCluster

KIT = FOLDERS / "kit" / "drizzle"
CUSTOM = FOLDERS / "custom" / "drizzle"


def _folder(root: Path, migrations: dict[str, str], start: int = 1_700_000_000_000) -> Path:
    """A migrations folder of hand-written files, in the given order."""
    (root / "meta").mkdir(parents=True)
    entries = []
    for idx, (tag, sql) in enumerate(migrations.items()):
        (root / f"{tag}.sql").write_text(sql)
        entries.append({"idx": idx, "version": "7", "when": start + idx, "tag": tag, "breakpoints": True})
    (root / "meta" / "_journal.json").write_text(
        json.dumps({"version": "7", "dialect": "postgresql", "entries": entries})
    )
    return root


def _socket_url(cluster: PostgresCluster, dsn: str) -> str:
    dbname = dsn.rsplit("dbname=", 1)[1]
    return f"postgresql:///{dbname}?host={cluster.socket_dir}&port={cluster.port}&user={cluster.superuser}"


def test_the_issue_reproduction_a_comment_only_chunk_applies_through_a_unix_socket_url(
    pg_cluster: PostgresCluster, fresh_database: str, tmp_path: Path
) -> None:
    # Issue 18's reproduction, byte for byte: the first chunk holds only comments, as drizzle-kit writes them.
    folder = tmp_path / "d"
    (folder / "meta").mkdir(parents=True)
    (folder / "0000_c.sql").write_text(
        '/* note */\n-- ALTER TABLE "t" DROP CONSTRAINT "x";--> statement-breakpoint\nCREATE TABLE "t" ("id" integer);'
    )
    (folder / "meta" / "_journal.json").write_text(
        '{"version":"7","dialect":"postgresql","entries":[{"idx":0,"version":"7","when":1700000000000,'
        '"tag":"0000_c","breakpoints":true}]}\n'
    )
    url = _socket_url(pg_cluster, fresh_database)
    result = run_module("wfops_drizzle_migrate", {"migrations_dir": str(folder), "database_url": url})
    assert result.returncode == 0, result.stdout + result.stderr
    outcome = module_result(result)
    assert [m["tag"] for m in outcome["applied"]] == ["0000_c"] and outcome["pending"][0]["statements"] == 2
    assert [r[2] for r in bookkeeping_rows(fresh_database)] == [1700000000000]
    connection = psycopg2.connect(fresh_database)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('t') IS NOT NULL")
        assert cursor.fetchone()[0] is True
    connection.close()

    # The same socket as a percent-encoded host, and as key=value pairs: nothing pending either way.
    dbname = fresh_database.rsplit("dbname=", 1)[1]
    encoded = str(pg_cluster.socket_dir).replace("/", "%2F")
    for other in (f"postgresql://{pg_cluster.superuser}@{encoded}:{pg_cluster.port}/{dbname}", fresh_database):
        again = run_module("wfops_drizzle_migrate", {"migrations_dir": str(folder), "database_url": other})
        assert again.returncode == 0, again.stdout
        assert module_result(again)["changed"] is False and module_result(again)["pending"] == []


def test_the_plan_flags_migrations_that_are_not_atomic_and_statements_that_will_fail(
    fresh_database: str, tmp_path: Path
) -> None:
    folder = shutil.copytree(CUSTOM, tmp_path / "custom")
    # A CONCURRENTLY without a COMMIT before it: it fails inside the migration transaction, under Drizzle too.
    (folder / "0006_unguarded_index.sql").write_text('CREATE INDEX CONCURRENTLY "notes_body_idx" ON "notes" ("body");')
    journal = json.loads((folder / "meta" / "_journal.json").read_text())
    journal["entries"].append({"idx": 6, "version": "7", "when": 1_900_000_000_000, "tag": "0006_unguarded_index"})
    (folder / "meta" / "_journal.json").write_text(json.dumps(journal))

    result = subprocess.run(
        [str(VENV_BIN / "ansible"), "localhost", "-c", "local", "--check", "-o", "-m", "wfops_drizzle_migrate",
         "-e", f"ansible_python_interpreter={VENV_BIN}/python",
         "-a", json.dumps({"migrations_dir": str(folder), "database_url": fresh_database})],
        capture_output=True, text=True, check=False, cwd=REPO,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_LOCALHOST_WARNING": "0"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    plan = {p["tag"]: p for p in module_result(result)["pending"]}
    assert [tag for tag, p in plan.items() if not p["atomic"]] == ["0003_concurrent_index", "0006_unguarded_index"]
    commit = plan["0003_concurrent_index"]
    assert commit["transaction_control"] == [
        {"statement": 1, "command": "COMMIT"},
        {"statement": 3, "command": "BEGIN"},
    ]
    assert commit["outside_transaction"] == [{"statement": 2, "command": "CREATE INDEX CONCURRENTLY"}]
    assert commit["notes"] == [
        "not atomic: statement 1 (COMMIT) commits everything this run sent before it (earlier migrations included);"
        " a later failure does not undo it"
    ]
    assert "it fails (as under drizzle-kit migrate)" in plan["0006_unguarded_index"]["notes"][0]
    assert all(p["atomic"] and p["notes"] == [] for tag, p in plan.items() if tag[:4] in ("0000", "0001", "0002"))
    connection = psycopg2.connect(fresh_database)
    with connection.cursor() as cursor:  # check mode created nothing, not even Drizzle's bookkeeping table
        cursor.execute("SELECT to_regclass('drizzle.__drizzle_migrations') IS NULL")
        assert cursor.fetchone()[0] is True
    connection.close()


def test_the_timeouts_are_the_sessions_and_survive_a_migrations_own_commit(fresh_database: str, tmp_path: Path) -> None:
    folder = _folder(
        tmp_path / "d",
        {
            "0000_after_commit": "COMMIT;--> statement-breakpoint\n"
            "CREATE TABLE seen AS SELECT current_setting('lock_timeout') AS lock_timeout,"
            " current_setting('statement_timeout') AS statement_timeout;",
        },
    )
    connection = psycopg2.connect(fresh_database)
    try:
        migrate(connection, read_migrations(folder), settings=Settings(lock_timeout="1234ms", statement_timeout="7min"))
        with connection.cursor() as cursor:
            cursor.execute("SELECT lock_timeout, statement_timeout FROM seen")
            assert cursor.fetchone() == ("1234ms", "7min")
            cursor.execute("SHOW lock_timeout")  # reset once the run is over
            assert cursor.fetchone()[0] == "0"
    finally:
        connection.close()


def test_per_migration_transactions_keep_the_first_two_when_the_third_fails_and_the_next_run_continues(
    fresh_database: str, tmp_path: Path
) -> None:
    tags = tags_of(KIT)
    broken = failing(KIT, tags[2], 1, tmp_path / "broken")
    args = {"database_url": fresh_database, "transaction": "per-migration"}
    result = run_module("wfops_drizzle_migrate", {**args, "migrations_dir": str(broken)})
    assert result.returncode != 0
    failure = module_result(result)
    assert f"{tags[2]} failed at statement 2" in failure["msg"]
    assert f"applied and recorded before the failure: {tags[0]}, {tags[1]}" in failure["msg"]
    assert f"next: fix statement 2 of {tags[2]} and run migrate again: it continues with {tags[2]}" in failure["msg"]
    assert failure["persisted"]["recorded"] == tags[:2] and failure["persisted"]["statements"] == {}
    by_hash = {m.hash: m.tag for m in read_migrations(KIT)}
    assert [by_hash[h] for _, h, _ in bookkeeping_rows(fresh_database)] == tags[:2]

    fixed = run_module("wfops_drizzle_migrate", {**args, "migrations_dir": str(KIT)})
    assert fixed.returncode == 0, fixed.stdout
    outcome = module_result(fixed)
    assert outcome["transaction"] == "per-migration"
    assert "the next run continues from the failed one" in outcome["transaction_note"]
    assert [m["tag"] for m in outcome["applied"]] == tags[2:]
    assert [by_hash[h] for _, h, _ in bookkeeping_rows(fresh_database)] == tags


def test_the_default_single_transaction_applies_nothing_when_the_third_fails(
    fresh_database: str, tmp_path: Path
) -> None:
    tags = tags_of(KIT)
    broken = failing(KIT, tags[2], 1, tmp_path / "broken")
    result = run_module("wfops_drizzle_migrate", {"database_url": fresh_database, "migrations_dir": str(broken)})
    assert result.returncode != 0
    assert "the transaction was rolled back and nothing was applied" in module_result(result)["msg"]
    assert bookkeeping_rows(fresh_database) == []


def test_a_lock_timeout_after_a_migrations_commit_is_not_retried_and_names_what_persisted(
    fresh_database: str, tmp_path: Path
) -> None:
    folder = _folder(
        tmp_path / "d",
        {
            "0000_table": "CREATE TABLE busy (id integer);",
            "0001_commit_then_alter": "CREATE TABLE early (id integer);--> statement-breakpoint\nCOMMIT;"
            "--> statement-breakpoint\nALTER TABLE busy ADD COLUMN note text;",
        },
    )
    connection = psycopg2.connect(fresh_database)
    migrate(connection, read_migrations(folder)[:1])
    app = psycopg2.connect(fresh_database)
    with app.cursor() as cursor:  # an open transaction holding busy: the ALTER cannot get its lock
        cursor.execute("SELECT count(*) FROM busy")
    try:
        with pytest.raises(MigrationError) as caught:
            migrate(connection, read_migrations(folder), settings=Settings(lock_timeout="200ms", retries=3))
    finally:
        app.rollback()
        app.close()
    message = str(caught.value)
    assert "0001_commit_then_alter could not get a lock within 200ms in 1 attempts" in message
    assert "committed but not recorded: statement(s) 1-2 of 0001_commit_then_alter" in message
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('early') IS NOT NULL, count(*) FROM drizzle.__drizzle_migrations")
        assert cursor.fetchone() == (True, 1)
    connection.close()


def test_a_run_waits_for_a_migration_holding_its_own_transaction_and_both_never_apply_twice(
    fresh_database: str, tmp_path: Path
) -> None:
    folder = _folder(tmp_path / "d", {"0000_slow": "COMMIT;--> statement-breakpoint\nSELECT pg_sleep(1);"})
    # The advisory lock is the session's: the migration's own COMMIT does not release it to the second run.
    outcomes = concurrent_runs(fresh_database, read_migrations(folder), Settings(lock_wait_s=30))
    assert sorted(len(o.applied) for o in outcomes) == [0, 1]  # type: ignore[attr-defined]
    assert len(bookkeeping_rows(fresh_database)) == 1


def _role_only(tmp_path: Path, variables: dict[str, object], *extra: str) -> subprocess.CompletedProcess[str]:
    """A play holding nothing but the migrate role, on localhost; the variables (the URL too) from a file, as a vault
    would hold them, not on the command line."""
    playbook, values = tmp_path / "migrate-only.yml", tmp_path / "vars.json"
    playbook.write_text("- name: Migrate\n  hosts: localhost\n  gather_facts: false\n  roles:\n    - role: migrate\n")
    values.write_text(json.dumps(variables))
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook), "-e", f"@{values}",
         "-e", f"ansible_python_interpreter={VENV_BIN}/python", *extra],
        capture_output=True, text=True, check=False, cwd=REPO,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
    )  # fmt: skip


def test_the_role_needs_neither_apt_nor_root_when_only_a_folder_and_a_database_are_given(
    fresh_database: str, tmp_path: Path
) -> None:
    variables = {"migrate_database_url": fresh_database, "migrate_source_dir": str(KIT)}
    # Any become (or apt, which needs it) would fail: it would run /bin/false to become nobody.
    no_become = ("-e", "ansible_become_exe=/bin/false", "-e", "ansible_become_user=nobody")

    # The plan of a dry run states the trade-off of the transaction mode asked for.
    dry = _role_only(tmp_path, variables, *no_become, "--check", "-e", "migrate_transaction=per-migration")
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-2000:]
    shown = " ".join(dry.stdout.split())  # the callback wraps long messages
    assert f"would apply {len(tags_of(KIT))}: {tags_of(KIT)[0]}" in shown
    assert "one transaction per migration: each migration commits with its bookkeeping row" in shown
    assert bookkeeping_rows(fresh_database) == []

    result = _role_only(tmp_path, variables, *no_become)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "changed=1" in result.stdout and "failed=0" in result.stdout
    assert "Install psycopg2" not in result.stdout
    assert len(bookkeeping_rows(fresh_database)) == len(tags_of(KIT))


def test_without_psycopg2_on_the_host_the_role_names_the_package_and_installs_nothing_unless_allowed(
    fresh_database: str, tmp_path: Path
) -> None:
    bare = tmp_path / "bare-python"  # a host Python without psycopg2
    subprocess.run([str(VENV_BIN / "python"), "-m", "venv", "--without-pip", str(bare)], check=True)
    variables = {
        "migrate_database_url": fresh_database,
        "migrate_source_dir": str(KIT),
        "migrate_install_dependencies": False,
    }
    result = _role_only(tmp_path, variables, "-e", f"ansible_python_interpreter={bare}/bin/python")
    assert result.returncode == 2, result.stdout[-3000:]
    shown = " ".join(result.stdout.split())
    assert "Failed to import the required Python library (psycopg2 (Debian: python3-psycopg2))" in shown
    assert "Install psycopg2 for the host's Python" not in result.stdout
    assert bookkeeping_rows(fresh_database) == []


def test_sql_that_looks_like_jinja_reaches_the_database_through_the_role_untouched(
    fresh_database: str, tmp_path: Path
) -> None:
    body = "Hello {{ guest.name }} {% if plus_one %}and guest{% endif %} {# note #}"
    folder = _folder(
        tmp_path / "d",
        {"0000_templates": f"CREATE TABLE tpl (body text);--> statement-breakpoint\nINSERT INTO tpl VALUES ('{body}')"},
    )
    result = _role_only(tmp_path, {"migrate_database_url": fresh_database, "migrate_source_dir": str(folder)})
    assert result.returncode == 0, result.stdout[-3000:]
    connection = psycopg2.connect(fresh_database)
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM tpl")
        assert cursor.fetchone()[0] == body
    connection.close()
    assert [row[1] for row in bookkeeping_rows(fresh_database)] == [read_migrations(folder)[0].hash]
