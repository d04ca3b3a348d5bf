"""Every fault injected for real (a stopped server, a killed process, a full filesystem, a flipped byte): each ends
with a clear message, a non-zero exit, and nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from conftest import REPO, VENV_BIN, SandboxHandle, start_sandbox, stop_sandbox, table_checksums
from faults.matrix import fault
from faults.processes import run_id_of, wait_until_ended
from wfops.pgcluster import PostgresCluster


@pytest.fixture
def box(tmp_path: Path) -> Iterator[SandboxHandle]:
    handle = start_sandbox(tmp_path / "box", guests=1000)
    yield handle
    stop_sandbox(handle)


# --------------------------------------------------------------------------- scene helpers


def _cluster(box: SandboxHandle) -> PostgresCluster:
    port = json.loads((box.directory / "state.json").read_text())["port"]
    return PostgresCluster(base_dir=box.directory / "pg", port=port)


class Background:
    """A wfops command running in its own process group, its stderr read line by line."""

    def __init__(self, box: SandboxHandle, *args: str) -> None:
        self.process = subprocess.Popen(
            [str(VENV_BIN / "wfops"), *args, "--json"],
            env=box.env,
            cwd=REPO,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"never saw {text!r}; stderr: {''.join(self.lines)[-2000:]}")

    def kill_group(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def result(self, timeout: float = 300) -> tuple[int, dict]:
        stdout, _ = self.process.communicate(timeout=timeout)
        self._reader.join(timeout=5)
        return self.process.returncode, json.loads(stdout)


def _wait_until_waiting(box: SandboxHandle, application: str, timeout: float = 120) -> None:
    """Until a session of `application` waits on a lock (the injected fault's moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        watcher = psycopg2.connect(box.ops_url)
        watcher.autocommit = True
        with watcher.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s AND wait_event_type = 'Lock'",
                (application,),
            )
            waiting = cursor.fetchone()[0]
        watcher.close()
        if waiting:
            return
        time.sleep(0.1)
    raise AssertionError(f"no {application} session ever waited on a lock")


def _holding(box: SandboxHandle, sql: str) -> psycopg2.extensions.connection:
    """A session that runs `sql` and keeps its transaction (and locks) open."""
    connection = psycopg2.connect(box.ops_url)
    with connection.cursor() as cursor:
        cursor.execute(sql)
    return connection


def _restart(box: SandboxHandle) -> None:
    cluster = _cluster(box)
    if not cluster.running():
        cluster.start()


def _phase(summary: dict, name: str) -> dict:
    return next(p for p in summary["phases"] if p["name"] == name)


def _matches(case: str, text: str) -> bool:
    return fault(case).message in text


def _final_backups(box: SandboxHandle) -> list[str]:
    directory = box.directory / "host" / "var" / "backups" / "weddingflo"
    return sorted(p.name for p in directory.glob("backup-*")) if directory.exists() else []


def _bookkeeping_rows(box: SandboxHandle) -> int:
    connection = box.connect()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM drizzle.__drizzle_migrations")
        count = cursor.fetchone()[0]
    connection.close()
    return count


def _commit(box: SandboxHandle) -> str:
    url = json.loads((box.directory / "services.json").read_text())["app_url"] + "/api/health"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())["commit"]


# --------------------------------------------------------------------------- the database stops


def _stop_the_database_while(box: SandboxHandle, holding: str, waiter: str, *wfops: str) -> tuple[int, dict]:
    """Start `wfops ...`, wait until its session `waiter` waits behind a lock held by `holding`, stop PostgreSQL
    (immediate), let the command end, start PostgreSQL again; the command's exit code and summary."""
    blocker = _holding(box, holding)
    run = Background(box, *wfops)
    _wait_until_waiting(box, waiter)
    _cluster(box).stop("immediate")
    code, summary = run.result()
    blocker.close()
    _restart(box)
    return code, summary


def test_the_database_stopping_during_the_backup(box: SandboxHandle) -> None:
    before = table_checksums(box)
    code, summary = _stop_the_database_while(
        box, "LOCK TABLE hotels IN ACCESS EXCLUSIVE MODE", "weddingflo-backup", "run", "backup", "--env", "local"
    )
    assert code == 1
    assert _matches("db-stops-during-backup", _phase(summary, "backup")["result"]["error"])
    assert _final_backups(box) == []
    assert table_checksums(box) == before


def test_the_database_stopping_during_a_migration(box: SandboxHandle) -> None:
    before = table_checksums(box)
    code, summary = _stop_the_database_while(
        box,
        "SELECT count(*) FROM clients",  # 0024's ALTER TABLE clients waits on it
        "wfops-migrate",
        *("run", "migrate", "--env", "local", "-e", "migrate_lock_timeout=60s"),
    )
    assert code == 1
    error = _phase(summary, "migrate")["result"]["error"]
    assert _matches("db-stops-during-migrate", error), error
    assert _bookkeeping_rows(box) == 23
    assert table_checksums(box) == before


def test_the_database_stopping_during_normalisation(box: SandboxHandle) -> None:
    connection = box.connect()
    from wfops.drizzle import migrate, read_migrations

    migrate(connection, read_migrations(REPO / "sandbox-app" / "drizzle"))
    connection.close()
    counts = {table: value.split(":")[0] for table, value in table_checksums(box).items()}
    code, summary = _stop_the_database_while(
        box,
        "SELECT id FROM guests WHERE rsvp_status = 'yes' ORDER BY id DESC LIMIT 1 FOR UPDATE",
        "wfops-normalize-%",
        *("run", "normalize", "--env", "local", "-e", "normalize_lock_timeout=60s", "-e", "normalize_batch_size=200"),
    )
    assert code == 1
    error = _phase(summary, "normalize")["result"]["error"]
    assert _matches("db-stops-during-normalize", error), error
    assert {table: value.split(":")[0] for table, value in table_checksums(box).items()} == counts
    code, again = Background(box, "run", "normalize", "--env", "local").result()
    assert code == 0, again
    assert _phase(again, "normalize")["result"]["verification"]["passed"] is True


def test_the_database_stopping_during_a_restore(box: SandboxHandle) -> None:
    code, release = Background(box, "release", "--env", "local", "--ref", "r1", "--from", "backup").result()
    assert code == 0, release
    backup_id = _phase(release, "backup")["result"]["id"]
    before = table_checksums(box)
    code, summary = _stop_the_database_while(
        box,
        "SELECT count(*) FROM guests",  # the restore's DROP TABLE waits on it
        "weddingflo-backup",
        *("rollback", "--env", "local", "--database", "--confirm", backup_id),
        *("-e", "rollback_restore_lock_timeout=60s"),
    )
    assert code == 1
    error = _phase(summary, "rollback")["result"]["error"]
    assert _matches("db-stops-during-restore", error), error
    assert table_checksums(box) == before


# --------------------------------------------------------------------------- the backups' disk and files


def test_a_full_backup_disk(box: SandboxHandle) -> None:
    before = table_checksums(box)
    backups = box.directory / "host" / "var" / "backups" / "weddingflo"
    backups.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "wfops-full-disk", str(backups)], check=True)
    try:
        code, summary = Background(box, "run", "backup", "--env", "local").result()
        listed = sorted(p.name for p in backups.iterdir())
    finally:
        subprocess.run(["umount", str(backups)], check=True)
    assert code == 1
    assert _matches("backup-disk-full", _phase(summary, "backup")["result"]["error"])
    assert [name for name in listed if name.startswith("backup-")] == []
    assert table_checksums(box) == before


def test_a_corrupted_backup_is_refused_before_a_restore(box: SandboxHandle) -> None:
    code, release = Background(box, "release", "--env", "local", "--ref", "r1", "--from", "backup").result()
    assert code == 0, release
    backup = _phase(release, "backup")["result"]
    archive = Path(backup["path"])
    data = bytearray(archive.read_bytes())
    data[len(data) // 3] ^= 0x01
    archive.write_bytes(bytes(data))
    before, commit = table_checksums(box), _commit(box)
    code, summary = Background(box, "rollback", "--env", "local", "--database", "--confirm", backup["id"]).result()
    assert code == 1
    error = _phase(summary, "rollback")["result"]["error"]
    assert _matches("backup-corrupted", error) and "sha256 is" in error, error
    assert table_checksums(box) == before and _commit(box) == commit


# --------------------------------------------------------------------------- a killed release


@pytest.mark.parametrize("phase", ["backup", "migrate", "normalize", "deploy", "smoke"])
def test_a_release_killed_mid_phase_resumes(box: SandboxHandle, phase: str) -> None:
    run = Background(box, "release", "--env", "local", "--ref", "killed", "--from", "backup")
    run.wait_for(f"▶ {phase} (runbook phase")
    time.sleep(0.3)
    run.kill_group()
    # The play ends with its owner: nothing of the run goes on (within seconds), but its lock stays behind.
    assert wait_until_ended(run_id_of(run.lines)) < 5
    lock = box.directory / "host" / "var" / "lib" / "weddingflo" / "release.lock"
    assert lock.is_dir(), "the killed release left its lock"
    code, refused = Background(box, "release", "--env", "local", "--ref", "killed", "--from", phase).result()
    assert code == 1
    assert _matches(f"killed-in-{phase}", refused["error"]), refused["error"]
    assert "not taken over silently" in refused["error"]
    status = subprocess.run(
        [str(VENV_BIN / "wfops"), "lock", "status", "--env", "local"],
        env=box.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "(stale: no process of its run is alive; its process" in status.stdout
    forced = subprocess.run(
        [str(VENV_BIN / "wfops"), "lock", "release", "--env", "local", "--force"],
        env=box.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert forced.returncode == 0, forced.stderr
    code, resumed = Background(box, "release", "--env", "local", "--ref", "killed", "--from", phase).result()
    assert code == 0, resumed
    assert _commit(box) == "killed"
    code, verified = Background(box, "run", "verify", "--env", "local").result()
    assert code == 0, verified


def test_a_rollback_during_a_release_is_refused(box: SandboxHandle) -> None:
    blocker = _holding(box, "SELECT count(*) FROM clients")  # keeps the release in migrate
    release = Background(
        box, "release", "--env", "local", "--ref", "r2", "--from", "backup", "-e", "migrate_lock_timeout=60s"
    )
    _wait_until_waiting(box, "wfops-migrate")
    before = table_checksums(box)
    code, rollback = Background(box, "rollback", "--env", "local").result()
    assert code == 1
    assert _matches("rollback-during-release", rollback["error"]), rollback["error"]
    assert "release of r2" in rollback["error"]
    blocker.close()
    code, finished = release.result()
    assert code == 0, finished
    assert before != table_checksums(box)  # the release went on to migrate and normalize


# --------------------------------------------------------------------------- Dokploy and bad input


def test_a_rejected_dokploy_key_loses_nothing(box: SandboxHandle) -> None:
    services = json.loads((box.directory / "services.json").read_text())
    request = urllib.request.Request(
        services["dokploy_url"] + "/__standin/mode",
        method="POST",
        data=json.dumps({"auth": "unauthorized"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=5).close()
    before, commit = table_checksums(box), _commit(box)
    code, summary = Background(box, "run", "deploy", "--env", "local", "-e", "release_ref=r3").result()
    assert code == 1
    assert _matches("dokploy-401", _phase(summary, "deploy")["result"]["error"])
    assert table_checksums(box) == before and _commit(box) == commit


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("malformed", "mysql://root@127.0.0.1/weddingflo"),
        ("pooler", "postgresql://postgres.abc:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres"),
    ],
)
def test_bad_database_urls_are_refused_before_anything_runs(box: SandboxHandle, kind: str, url: str) -> None:
    url_file = box.directory / "database_url"
    right = url_file.read_text()
    url_file.write_text(url)
    try:
        code, summary = Background(box, "run", "backup", "--env", "local").result()
    finally:
        url_file.write_text(right)
    assert code == 1
    case = "malformed-database-url" if kind == "malformed" else "pooler-url"
    assert _matches(case, _phase(summary, "backup")["result"]["error"])
    assert _final_backups(box) == []


def test_an_unknown_backup_id_changes_nothing(box: SandboxHandle) -> None:
    code, summary = Background(
        box, "rollback", "--env", "local", "--database", "--backup", "latest", "--confirm", "backup-19990101-000000"
    ).result()
    assert code == 1
    assert "the backup tool" in _phase(summary, "rollback")["result"]["error"], "no backup tool yet: said so"
    assert Background(box, "run", "backup", "--env", "local").result()[0] == 0
    before, commit = table_checksums(box), _commit(box)
    # A backup the host does not have is bad input, found before any run starts: nothing ran, exit 2.
    refused = subprocess.run(
        [
            *(str(VENV_BIN / "wfops"), "rollback", "--env", "local", "--database"),
            *("--backup", "backup-19990101-000000", "--confirm", "backup-19990101-000000"),
        ],
        env=box.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == fault("unknown-backup-id").exit_code
    assert _matches("unknown-backup-id", refused.stderr)
    assert table_checksums(box) == before and _commit(box) == commit
