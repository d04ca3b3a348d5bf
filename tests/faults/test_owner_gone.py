"""A run ends when its owner ends: `kill -9` of wfops during migrate, normalize and a restore. Within 5 s no process
of the run is left (nothing carries its WFOPS_RUN_ID, no wfops session is left on the server), the database holds
nothing half-applied, and the next run proceeds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from conftest import REPO, VENV_BIN, SandboxHandle, start_sandbox, stop_sandbox, table_checksums
from faults.matrix import fault
from faults.processes import processes_of, run_id_of
from faults.test_fault_matrix import Background, _bookkeeping_rows, _holding, _matches, _phase, _wait_until_waiting

WITHIN_S = 5.0


@pytest.fixture
def box(tmp_path: Path) -> Iterator[SandboxHandle]:
    handle = start_sandbox(tmp_path / "box", guests=1000)
    yield handle
    stop_sandbox(handle)


def wfops_sessions(box: SandboxHandle) -> list[str]:
    """The server's sessions of wfops's modules and the backup tool (the test's own are not among them)."""
    watcher = psycopg2.connect(box.ops_url, application_name="test-watcher")
    with watcher.cursor() as cursor:
        cursor.execute(
            "SELECT application_name || ' ' || state FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
            " AND (application_name LIKE 'wfops%%' OR application_name LIKE 'weddingflo-backup%%'"
            " OR application_name IN ('psql', 'pg_restore'))"
        )
        found = [row[0] for row in cursor.fetchall()]
    watcher.close()
    return found


def kill_the_wrapper(run: Background, box: SandboxHandle) -> tuple[str, float]:
    """SIGKILL wfops alone (not its process group); how long until nothing of its run was left."""
    run_id = run_id_of(run.lines)
    assert processes_of(run_id), "the run's processes were there before the kill"
    os.kill(run.process.pid, signal.SIGKILL)
    killed = time.monotonic()
    run.process.wait()
    while processes_of(run_id) or wfops_sessions(box):
        assert time.monotonic() - killed < 30, (processes_of(run_id), wfops_sessions(box))
        time.sleep(0.1)
    return run_id, time.monotonic() - killed


def test_wfops_killed_during_a_migration_leaves_nothing_running_and_nothing_applied(box: SandboxHandle) -> None:
    before = table_checksums(box)
    blocker = _holding(box, "SELECT count(*) FROM clients")  # 0024's ALTER TABLE clients waits on it
    run = Background(box, "run", "migrate", "--env", "local", "-e", "migrate_lock_timeout=60s")
    _wait_until_waiting(box, "wfops-migrate")
    _, gone_after = kill_the_wrapper(run, box)
    blocker.close()
    assert gone_after < WITHIN_S
    # One transaction, rolled back when its statement was cancelled: no migration half-applied.
    assert _bookkeeping_rows(box) == 23 and table_checksums(box) == before
    code, again = Background(box, "run", "migrate", "--env", "local").result()
    assert code == fault("wrapper-killed-in-migrate").exit_code, again
    assert _matches("wrapper-killed-in-migrate", _phase(again, "migrate")["result"]["summary"])
    assert _bookkeeping_rows(box) == 28


def test_wfops_killed_during_normalisation_leaves_nothing_running_and_the_next_run_finishes(box: SandboxHandle) -> None:
    from wfops.drizzle import migrate, read_migrations

    connection = box.connect()
    migrate(connection, read_migrations(REPO / "sandbox-app" / "drizzle"))
    connection.close()
    counts = {table: value.split(":")[0] for table, value in table_checksums(box).items()}
    blocker = _holding(box, "SELECT id FROM guests WHERE rsvp_status = 'yes' ORDER BY id DESC LIMIT 1 FOR UPDATE")
    args = ("-e", "normalize_lock_timeout=60s", "-e", "normalize_batch_size=200")
    run = Background(box, "run", "normalize", "--env", "local", *args)
    _wait_until_waiting(box, "wfops-normalize-%")
    _, gone_after = kill_the_wrapper(run, box)
    blocker.close()
    assert gone_after < WITHIN_S
    assert {table: value.split(":")[0] for table, value in table_checksums(box).items()} == counts
    code, again = Background(box, "run", "normalize", "--env", "local").result()
    assert code == fault("wrapper-killed-in-normalize").exit_code, again
    assert _matches("wrapper-killed-in-normalize", _phase(again, "normalize")["result"]["summary"])
    assert _phase(again, "normalize")["result"]["verification"]["passed"] is True


def _wfops(box: SandboxHandle, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "wfops"), *args], env=box.env, cwd=REPO, capture_output=True, text=True, check=False
    )


def test_wfops_killed_during_a_restore_leaves_nothing_running_and_the_database_as_it_was(box: SandboxHandle) -> None:
    code, backup = Background(box, "run", "backup", "--env", "local").result()
    assert code == 0, backup
    backup_id = _phase(backup, "backup")["result"]["id"]
    connection = box.connect()
    with connection, connection.cursor() as cursor:  # written after the backup: the restore would drop it
        cursor.execute(
            "UPDATE clients SET guest_count = guest_count + 1000 WHERE id IN (SELECT id FROM clients LIMIT 3)"
        )
    connection.close()
    before = table_checksums(box)
    blocker = _holding(box, "SELECT count(*) FROM guests")  # the restore's DROP TABLE guests waits on it
    restore = ("--database", "--backup", backup_id, "--confirm", backup_id)
    options = ("-e", "rollback_code=false", "-e", "rollback_restore_lock_timeout=60s")
    run = Background(box, "rollback", "--env", "local", *restore, *options)
    _wait_until_waiting(box, "weddingflo-backup")

    # While its run works, the lock is reported running and is not released, even by force.
    status = _wfops(box, "lock", "status", "--env", "local")
    assert "(running: its run is still working" in status.stdout, status.stdout
    forced = _wfops(box, "lock", "release", "--env", "local", "--force")
    assert forced.returncode == 1 and "not releasing the lock" in forced.stderr, forced.stderr

    _, gone_after = kill_the_wrapper(run, box)
    blocker.close()
    assert gone_after < WITHIN_S
    assert table_checksums(box) == before, "the restore's one transaction was rolled back"

    # Its lock is stale now (no process of the run is alive): said so, not taken over, released by hand.
    status = _wfops(box, "lock", "status", "--env", "local")
    assert "(stale: no process of its run is alive" in status.stdout, status.stdout
    code, refused = Background(box, "rollback", "--env", "local", *restore, "-e", "rollback_code=false").result()
    assert code == fault("wrapper-killed-in-restore").exit_code
    assert _matches("wrapper-killed-in-restore", refused["error"]) and "not taken over silently" in refused["error"]
    assert _wfops(box, "lock", "release", "--env", "local", "--force").returncode == 0
    code, rolled_back = Background(box, "rollback", "--env", "local", *restore, "-e", "rollback_code=false").result()
    assert code == 0, json.dumps(rolled_back)[-2000:]
    assert table_checksums(box) != before


# One real check (vitest) keeps preflight short: the resumed release needs a preflight on record.
QUICK_PREFLIGHT = ("-e", 'preflight_commands=[{"name": "tests", "argv": ["npx", "--no-install", "vitest", "run"]}]')


def _ledger(box: SandboxHandle) -> list[dict]:
    path = box.directory / "host" / "var" / "lib" / "weddingflo" / "ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_release_killed_in_migrate_is_recorded_by_the_force_release_and_resumes_from_migrate(
    box: SandboxHandle,
) -> None:
    blocker = _holding(box, "SELECT count(*) FROM clients")  # 0024's ALTER TABLE clients waits on it
    killed = Background(
        box, "release", "--env", "local", "--ref", "killed-r", *QUICK_PREFLIGHT, "-e", "migrate_lock_timeout=60s"
    )
    _wait_until_waiting(box, "wfops-migrate")
    run_id, gone_after = kill_the_wrapper(killed, box)
    blocker.close()
    assert gone_after < WITHIN_S
    assert _bookkeeping_rows(box) == 23, "nothing half-applied"
    assert not any(entry["run_id"] == run_id for entry in _ledger(box)), "a SIGKILLed run writes no line itself"
    backups = sorted((box.directory / "host" / "var" / "backups" / "weddingflo").glob("backup-*.dump"))
    assert len(backups) == 1, "the killed release took its backup"

    # Released by force (no process of the run is alive): the run goes into the ledger from what its lock noted.
    forced = _wfops(box, "lock", "release", "--env", "local", "--force")
    assert forced.returncode == fault("wrapper-killed-in-release").exit_code, forced.stderr
    assert _matches("wrapper-killed-in-release", forced.stdout)
    assert (
        f"recorded run {run_id} (release of killed-r) in the ledger as interrupted: phases ok preflight, backup, "
        "stopped in migrate" in forced.stdout
    ), forced.stdout
    entry = _ledger(box)[-1]
    assert (entry["kind"], entry["run_id"], entry["ref"]) == ("release", run_id, "killed-r")
    assert entry["status"] == "interrupted"
    assert entry["phases"] == {"preflight": "ok", "backup": "ok"} and entry["failed_phase"] == "migrate"
    assert entry["backup_id"] == backups[0].stem
    assert "released by force" in entry["interrupted_by"]
    history = _wfops(box, "history", "--env", "local").stdout
    assert "interrupted in migrate" in history, history

    # The production rule (a resumed release carries on a recorded one) accepts it: migrate on, with its backup.
    code, resumed = Background(
        box, "release", "--env", "local", "--ref", "killed-r", "--from", "migrate", "-e", "release_check_resume=true"
    ).result()
    assert code == 0, json.dumps(resumed)[-3000:]
    assert _phase(resumed, "backup")["result"]["reason"] == "not re-run: the release resumed after it"
    assert _phase(resumed, "migrate")["status"] == "ok" and _bookkeeping_rows(box) == 28
    last = _ledger(box)[-1]
    assert (last["status"], last["resumed_from"], last["backup_id"]) == ("successful", run_id, backups[0].stem)
    assert len(list(backups[0].parent.glob("backup-*.dump"))) == 1, "no second backup"
