"""Phase 3's way out of drift, decided once and recorded in the database: a migration Drizzle skipped applied with
`migrate_apply_skipped` (then real drizzle-kit finds nothing to do), or a finding acknowledged with who, when and why
(later runs are clean, every other check stays on)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import psycopg2.extensions
import pytest

from conftest import REPO, SandboxHandle, module_result, run_module, start_sandbox, stop_sandbox
from drizzle_kit import drizzle_kit_migrate
from migrate_helpers import bookkeeping_rows, schema_dump

MIGRATIONS = REPO / "sandbox-app" / "drizzle"


@pytest.fixture
def box(tmp_path: Path) -> Iterator[SandboxHandle]:
    handle = start_sandbox(tmp_path / "box", guests=500)
    yield handle
    stop_sandbox(handle)


def _pg_env(url: str) -> dict[str, str]:
    """libpq's environment for node (drizzle-kit), from the sandbox's URL as libpq parses it."""
    params = psycopg2.extensions.parse_dsn(url)
    names = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD", "dbname": "PGDATABASE"}
    return {names[key]: value for key, value in params.items() if key in names}


def _migrate_phase(box: SandboxHandle, *extra: str) -> tuple[int, dict]:
    result = box.wfops("run", "migrate", "--env", "local", *(x for e in extra for x in ("-e", e)), "--json")
    return result.returncode, json.loads(result.stdout)["phases"][0]["result"]


def _with_hotfix(tmp_path: Path) -> Path:
    """The app's folder with a hotfix merged late: its `when` is older than the applied head (0022)."""
    folder = shutil.copytree(MIGRATIONS, tmp_path / "drizzle")
    journal = json.loads((folder / "meta" / "_journal.json").read_text())
    when_0019 = journal["entries"][19]["when"]
    journal["entries"].insert(
        20, {"idx": 99, "version": "7", "when": when_0019 + 1, "tag": "0019b_hotfix", "breakpoints": True}
    )
    (folder / "meta" / "_journal.json").write_text(json.dumps(journal, indent=2))
    (folder / "0019b_hotfix.sql").write_text('CREATE INDEX "guests_email_hotfix_idx" ON "guests" ("email");')
    return folder


def test_a_skipped_migration_applied_with_migrate_apply_skipped_is_then_accepted_by_drizzle_kit(
    box: SandboxHandle, tmp_path: Path
) -> None:
    folder = _with_hotfix(tmp_path)
    source = f"migrate_source_dir={folder}"

    code, refused = _migrate_phase(box, source)
    assert code == 1
    assert "0019b_hotfix (when" in refused["error"] and "Drizzle would skip it silently" in refused["error"]
    assert "-e migrate_apply_skipped=0019b_hotfix" in refused["error"]
    assert "-e migrate_acknowledge=0019b_hotfix" in refused["error"]
    assert len(bookkeeping_rows(box.ops_url)) == 23

    code, applied = _migrate_phase(box, source, "migrate_apply_skipped=0019b_hotfix")
    assert code == 0, applied
    assert [m["tag"][:5] for m in applied["applied"]] == ["0019b", "0023_", "0024_", "0025_", "0026_", "0027_"]
    assert applied["pending"][0]["skipped"] is True and "skipped" not in applied["pending"][1]
    rows = bookkeeping_rows(box.ops_url)
    assert (
        len(rows) == 29
        and rows[23][2] == json.loads((folder / "meta" / "_journal.json").read_text())["entries"][20]["when"]
    ), "the hotfix is recorded with its own `when`, as Drizzle would have"
    with box.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('guests_email_hotfix_idx') IS NOT NULL")
        assert cursor.fetchone()[0] is True

    # Real drizzle-kit on the same folder: nothing pending, nothing changed.
    schema = schema_dump(box.ops_url)
    kit = drizzle_kit_migrate(folder, _pg_env(box.ops_url))
    assert kit.returncode == 0, kit.stdout + kit.stderr
    assert "migrations applied successfully" in kit.stdout + kit.stderr
    assert bookkeeping_rows(box.ops_url) == rows and schema_dump(box.ops_url) == schema

    # And wfops again, with no override: clean.
    code, again = _migrate_phase(box, source)
    assert code == 0, again
    assert (again["applied"], again["pending"], again["findings"]) == ([], [], [])


def test_an_acknowledged_finding_is_recorded_with_who_when_and_why_and_every_other_check_stays_on(
    box: SandboxHandle, tmp_path: Path
) -> None:
    edited = shutil.copytree(MIGRATIONS, tmp_path / "drizzle")
    clients = sorted(edited.glob("0005_*.sql"))[0]
    clients.write_text(clients.read_text() + "\n-- tidied up later\n")
    source = f"migrate_source_dir={edited}"

    code, refused = _migrate_phase(box, source)
    assert code == 1
    assert "0005_clients was edited after it was applied" in refused["error"]
    assert "accept the edit with -e migrate_acknowledge=0005_clients -e migrate_acknowledge_reason=" in refused["error"]
    code, no_reason = _migrate_phase(box, source, "migrate_acknowledge=0005_clients")
    assert code == 1 and "recorded with who and why" in no_reason["error"]
    code, typo = _migrate_phase(box, source, "migrate_acknowledge=0005_client", "migrate_acknowledge_reason=x")
    assert code == 1 and "0005_client, which is not a finding here (findings: 0005_clients)" in typo["error"]
    assert len(bookkeeping_rows(box.ops_url)) == 23

    reason = "comment-only edit, reviewed"
    code, accepted = _migrate_phase(
        box, source, "migrate_acknowledge=0005_clients", f"migrate_acknowledge_reason={reason}",
        "migrate_acknowledged_by=alice",
    )  # fmt: skip
    assert code == 0, accepted
    assert [m["tag"][:4] for m in accepted["applied"]] == ["0023", "0024", "0025", "0026", "0027"]
    assert accepted["acknowledged"][0]["tag"] == "0005_clients"
    with box.connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT bookkeeping, kind, tag, acknowledged_by, reason, acknowledged_at > now() - interval '5 minutes',"
            " applied_hash <> file_hash FROM wfops.drizzle_acknowledged_drift"
        )
        assert cursor.fetchall() == [
            ('"drizzle"."__drizzle_migrations"', "edited", "0005_clients", "alice", reason, True, True)
        ]

    # Later runs: clean without any override, the acknowledgement shown.
    code, later = _migrate_phase(box, source)
    assert code == 0, later
    assert later["findings"][0]["acknowledged"]["by"] == "alice" and later["applied"] == []

    # Every other check is still on: another edit is caught, and so is a second edit of the acknowledged file.
    other = sorted(edited.glob("0006_*.sql"))[0]
    other.write_text(other.read_text() + "\n-- also tidied\n")
    result = run_module("wfops_drizzle_migrate", {"migrations_dir": str(edited), "database_url": box.ops_url})
    message = module_result(result)["msg"]
    assert result.returncode != 0 and "0006_guests was edited" in message and "0005_clients" not in message
    shutil.copy(MIGRATIONS / other.name, other)
    clients.write_text(clients.read_text() + "\n-- and again\n")
    result = run_module("wfops_drizzle_migrate", {"migrations_dir": str(edited), "database_url": box.ops_url})
    assert result.returncode != 0 and "0005_clients was edited" in module_result(result)["msg"]


def test_an_applied_row_the_release_does_not_know_can_be_acknowledged_by_its_created_at(
    box: SandboxHandle, tmp_path: Path
) -> None:
    behind = shutil.copytree(MIGRATIONS, tmp_path / "drizzle")
    journal = json.loads((behind / "meta" / "_journal.json").read_text())
    newest = journal["entries"][22]
    journal["entries"] = journal["entries"][:22]  # this release was cut before 0022
    (behind / "meta" / "_journal.json").write_text(json.dumps(journal))
    args = {"migrations_dir": str(behind), "database_url": box.ops_url}

    refused = run_module("wfops_drizzle_migrate", args)
    message = module_result(refused)["msg"]
    assert refused.returncode != 0 and f"created_at {newest['when']}" in message
    assert f"-e migrate_acknowledge={newest['when']}" in message

    accepted = run_module(
        "wfops_drizzle_migrate",
        {**args, "acknowledge": [str(newest["when"])], "acknowledge_reason": "hotfix ahead of this branch"},
    )
    assert accepted.returncode == 0, accepted.stdout
    assert module_result(accepted)["acknowledged"][0]["kind"] == "unknown"
    again = run_module("wfops_drizzle_migrate", args)
    assert again.returncode == 0 and module_result(again)["changed"] is False
