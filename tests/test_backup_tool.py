"""weddingflo-backup against a real sandbox: backups that restore, and failures that leave nothing behind."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from backup_helpers import final_files, load_tool_module, row_checksums, run_tool, tool_env
from conftest import SandboxHandle, start_sandbox, stop_sandbox
from wfops.pgcluster import PostgresCluster, free_port, server_bindir

tool = load_tool_module()


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    handle = start_sandbox(tmp_path_factory.mktemp("backup-box"), guests=3000)
    yield handle
    stop_sandbox(handle)


@pytest.fixture
def backup_dir(tmp_path: Path) -> Path:
    return tmp_path / "backups"


def _password(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


def _counts(connection: psycopg2.extensions.connection, tables: list[str]) -> dict[str, int]:
    counts = {}
    with connection.cursor() as cursor:
        for table in tables:
            schema, name = table.split(".")
            cursor.execute(f'SELECT count(*) FROM "{schema}"."{name}"')
            counts[table] = cursor.fetchone()[0]
    return counts


def _other_database_url(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


def _admin(box: SandboxHandle) -> psycopg2.extensions.connection:
    connection = psycopg2.connect(box.ops_url)
    connection.autocommit = True
    return connection


def test_a_backup_restores_with_every_table_count_equal_to_its_manifest(box: SandboxHandle, backup_dir: Path) -> None:
    env = tool_env(box.ops_url, backup_dir, PG_BINDIR=str(server_bindir()))
    created = run_tool(env, "create", "--reason", "manual", "--release-ref", "abc123")
    assert created.returncode == 0, created.stderr
    result = json.loads(created.stdout)
    archive, manifest_path = Path(result["path"]), Path(result["manifest"])
    assert archive.name == f"{result['id']}.dump" and archive.name.startswith("backup-")
    assert backup_dir.stat().st_mode & 0o777 == 0o700
    assert archive.stat().st_mode & 0o777 == 0o600 and manifest_path.stat().st_mode & 0o777 == 0o600
    manifest = json.loads(manifest_path.read_text())
    assert manifest["release_ref"] == "abc123" and manifest["reason"] == "manual"
    assert manifest["size_bytes"] == archive.stat().st_size
    assert manifest["migration_head"]["applied"] == 23
    assert manifest["row_counts"]["public.guests"] == 3000
    assert manifest["database"] == {
        "host": "127.0.0.1",
        "port": manifest["database"]["port"],
        "name": "weddingflo",
        "user": "postgres",
    }

    admin = _admin(box)
    with admin.cursor() as cursor:
        cursor.execute("DROP DATABASE IF EXISTS restored_check")
        cursor.execute("CREATE DATABASE restored_check")
    restore_env = {**os.environ, "PGPASSWORD": _password(box.ops_url)}
    port = manifest["database"]["port"]
    restored = subprocess.run(
        [
            str(server_bindir() / "pg_restore"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-d",
            "restored_check",
            "--clean",
            "--if-exists",
            "--exit-on-error",
            str(archive),
        ],
        env=restore_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert restored.returncode == 0, restored.stderr
    with psycopg2.connect(_other_database_url(box.ops_url, "restored_check")) as connection:
        assert _counts(connection, list(manifest["row_counts"])) == manifest["row_counts"]
    # Every table's checksum, computed here from the restored rows, is the manifest's.
    assert manifest["checksum_kind"] == tool.CHECKSUM_KIND
    restored_sums = row_checksums(_other_database_url(box.ops_url, "restored_check"), tool._CHECKSUM_SESSION)
    assert restored_sums == manifest["table_checksums"] and set(restored_sums) == set(manifest["row_counts"])
    with admin.cursor() as cursor:
        cursor.execute("DROP DATABASE restored_check WITH (FORCE)")

    drill = run_tool(env, "verify", result["id"], "--restore-drill")
    assert drill.returncode == 0, drill.stderr
    report = json.loads(drill.stdout)
    assert report["result"] == "ok" and report["findings"] == []
    assert report["drill"]["tables_compared"] == len(manifest["row_counts"])
    assert report["drill"]["checksums_compared"] == len(manifest["row_counts"])
    assert report["drill"]["rows_restored"] == sum(manifest["row_counts"].values())
    with admin.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'wf_drill_%'")
        assert cursor.fetchone()[0] == 0
    admin.close()
    listed = json.loads(run_tool(env, "list", "--json").stdout)
    assert [(b["id"], b["verification"]) for b in listed] == [(result["id"], "ok")]


def test_an_empty_database_is_backed_up_as_a_rollbacks_safety_dump_on_a_new_host_takes_it(
    box: SandboxHandle, backup_dir: Path
) -> None:
    """A recovered host's database is new and empty (no tables, no Drizzle bookkeeping): the rollback's safety dump
    of it, its verification and its count of what a restore would lose must all work."""
    with contextlib.closing(_admin(box)) as admin, admin.cursor() as cursor:
        cursor.execute("DROP DATABASE IF EXISTS wf_empty WITH (FORCE)")
        cursor.execute("CREATE DATABASE wf_empty")
    env = tool_env(_other_database_url(box.ops_url, "wf_empty"), backup_dir)
    created = run_tool(env, "create", "--reason", "pre-rollback", "--release-ref", "before restoring X", "--verify")
    assert created.returncode == 0, created.stderr
    manifest = json.loads((backup_dir / f"{json.loads(created.stdout)['id']}.json").read_text())
    assert (manifest["migration_head"], manifest["row_counts"], manifest["table_checksums"]) == (None, {}, {})
    assert manifest["verification"]["result"] == "ok"
    lost = run_tool(env, "changes-since", manifest["id"])
    assert lost.returncode == 0 and json.loads(lost.stdout)["rows"] == 0, lost.stderr


def test_a_corrupted_archive_fails_verification(box: SandboxHandle, backup_dir: Path) -> None:
    env = tool_env(box.ops_url, backup_dir)
    result = json.loads(run_tool(env, "create").stdout)
    archive = Path(result["path"])
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    verified = run_tool(env, "verify", result["id"])
    assert verified.returncode == 1
    assert "sha256 is" in json.loads(verified.stdout)["findings"][0]
    listed = json.loads(run_tool(env, "list", "--json").stdout)
    assert listed[0]["verification"] == "failed"


def _retention_of_one(box: SandboxHandle, backup_dir: Path, **extra: str) -> dict[str, str]:
    """Settings under which a new backup makes every older one past retention."""
    return tool_env(box.ops_url, backup_dir, BACKUP_RETENTION_DAYS="0", BACKUP_RETENTION_MIN_COUNT="1", **extra)


def _older_backup(env: dict[str, str]) -> str:
    created = run_tool(env, "create", "--reason", "scheduled")
    assert created.returncode == 0, created.stderr
    return json.loads(created.stdout)["id"]


def test_create_verify_prune_takes_checks_and_prunes_in_one_call(box: SandboxHandle, backup_dir: Path) -> None:
    env = _retention_of_one(box, backup_dir)
    older = _older_backup(env)
    created = run_tool(env, "create", "--reason", "release", "--release-ref", "r1", "--verify", "--prune")
    assert created.returncode == 0, created.stderr
    result = json.loads(created.stdout)
    archive = Path(result["path"])
    # Hashed while pg_dump streamed it: the digest is the stored file's.
    assert result["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert result["verification"]["result"] == "ok" and result["verification"]["kind"] == "sha256+toc"
    assert result["pruned"] == [older]
    assert final_files(backup_dir) == [archive.name, f"{result['id']}.json"]
    manifest = json.loads(Path(result["manifest"]).read_text())
    assert manifest["verification"]["kind"] == "sha256+toc" and manifest["size_bytes"] == archive.stat().st_size
    assert archive.stat().st_mode & 0o777 == 0o600


def test_a_failed_verification_in_create_keeps_the_backup_prunes_nothing_and_says_why(
    box: SandboxHandle, backup_dir: Path, tmp_path: Path
) -> None:
    # pg_restore that lists one entry too many once the archive has its final name: the re-read disagrees.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("pg_dump", "psql"):
        (bindir / name).symlink_to(server_bindir() / name)
    (bindir / "pg_restore").write_text(
        f'#!/bin/sh\n"{server_bindir() / "pg_restore"}" "$@" || exit $?\n'
        'case "$*" in *--list*backup-*.dump) echo "9999; 0 0 COMMENT - extra" ;; esac\n'
    )
    (bindir / "pg_restore").chmod(0o755)
    env = _retention_of_one(box, backup_dir, PG_BINDIR=str(bindir), BACKUP_METRICS_DIR=str(tmp_path / "textfile"))
    older = _older_backup(env)
    before = _prom(tmp_path / "textfile")
    created = run_tool(env, "create", "--verify", "--prune")
    assert created.returncode == 1
    result = json.loads(created.stdout)
    assert f"{result['id']} failed verification: " in created.stderr
    # The metrics do not call it a success: its run failed, and the last success stays the older backup's.
    metrics = _prom(tmp_path / "textfile")
    assert metrics["weddingflo_backup_last_run_success"] == "0"
    assert metrics["weddingflo_backup_last_size_bytes"] == before["weddingflo_backup_last_size_bytes"]
    assert (
        metrics["weddingflo_backup_last_success_timestamp_seconds"]
        == before["weddingflo_backup_last_success_timestamp_seconds"]
    )
    assert "TOC entries, the manifest says" in created.stderr
    assert result["verification"]["result"] == "failed" and "pruned" not in result
    assert final_files(backup_dir) == sorted(f"{i}.{ext}" for i in (older, result["id"]) for ext in ("dump", "json"))


def test_a_failing_prune_in_create_keeps_the_new_backup_and_names_it(box: SandboxHandle, backup_dir: Path) -> None:
    env = _retention_of_one(box, backup_dir)
    older = _older_backup(env)
    # An archive that cannot be unlinked, even by root.
    (backup_dir / f"{older}.dump").unlink()
    (backup_dir / f"{older}.dump").mkdir()
    created = run_tool(env, "create", "--verify", "--prune")
    assert created.returncode == 1
    result = json.loads(created.stdout)
    assert f"{result['id']} was written and verified (kept), but retention failed: Is a directory" in created.stderr
    assert result["verification"]["result"] == "ok"
    assert f"{result['id']}.dump" in final_files(backup_dir)
    listed = json.loads(run_tool(env, "list", "--json").stdout)
    assert listed[0]["id"] == result["id"] and listed[0]["verification"] == "ok"


class _BlockedDump:
    """Holds an ACCESS EXCLUSIVE lock on `hotels`, so pg_dump (and the row counts) wait on it, until released."""

    def __init__(self, box: SandboxHandle) -> None:
        self.connection = psycopg2.connect(box.ops_url)
        with self.connection.cursor() as cursor:
            cursor.execute("LOCK TABLE hotels IN ACCESS EXCLUSIVE MODE")
        self.box = box

    def wait_until_pg_dump_waits(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        watcher = psycopg2.connect(self.box.ops_url)
        watcher.autocommit = True  # pg_stat_activity is a per-transaction snapshot
        try:
            with watcher.cursor() as cursor:
                while time.monotonic() < deadline:
                    cursor.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'weddingflo-backup'"
                        " AND wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE%%'"
                    )
                    if cursor.fetchone()[0] >= 1:
                        return
                    time.sleep(0.05)
        finally:
            watcher.close()
        raise AssertionError("pg_dump never started waiting on the lock")

    def release(self) -> None:
        self.connection.rollback()
        self.connection.close()


def _children_named(parent: int, name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if comm == name and ppid == parent:
            found.append(int(entry.name))
    return found


def _all_command_lines() -> str:
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return "\n".join(lines)


@contextlib.contextmanager
def _create_waiting_on_a_lock(box: SandboxHandle, env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[str]]:
    """`create` started while `hotels` is locked: its snapshot is exported and pg_dump waits, until the block ends."""
    from backup_helpers import TOOL

    blocker = _BlockedDump(box)
    process = subprocess.Popen(
        ["/usr/bin/python3", str(TOOL), "create", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        blocker.wait_until_pg_dump_waits()
        yield process
    finally:
        blocker.release()


def test_row_counts_come_from_the_dumps_own_snapshot_and_no_password_is_in_any_process(
    box: SandboxHandle, backup_dir: Path
) -> None:
    env = tool_env(box.ops_url, backup_dir)
    password = _password(box.ops_url)
    with _create_waiting_on_a_lock(box, env, "--reason", "scheduled") as process:
        # pg_dump, psql and the tool are all running now: none may carry the password in its arguments.
        command_lines = _all_command_lines()
        assert "pg_dump" in command_lines and "weddingflo_backup.py" in command_lines
        assert password not in command_lines
        # Rows committed after the snapshot was exported must be in neither the dump nor its counts.
        with psycopg2.connect(box.ops_url) as writer, writer.cursor() as cursor:
            cursor.execute("INSERT INTO guests (client_id, first_name) SELECT client_id, 'late' FROM guests LIMIT 5")
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    manifest = json.loads(Path(json.loads(stdout)["manifest"]).read_text())
    assert manifest["row_counts"]["public.guests"] == 3000
    with box.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM guests")
        assert cursor.fetchone()[0] == 3005
        cursor.execute("DELETE FROM guests WHERE first_name = 'late'")
    # The checksums too are the snapshot's: the live database, back to what it held then, has the same ones.
    assert row_checksums(box.ops_url, tool._CHECKSUM_SESSION) == manifest["table_checksums"]
    drill = run_tool(env, "verify", manifest["id"], "--restore-drill")
    assert json.loads(drill.stdout)["result"] == "ok", drill.stdout
    everything = stdout + stderr + drill.stdout + drill.stderr + run_tool(env, "list").stdout
    everything += "".join(p.read_text() for p in backup_dir.glob("*.json"))
    assert password not in everything


def test_pg_dump_killed_mid_way_leaves_no_backup(box: SandboxHandle, backup_dir: Path) -> None:
    env = tool_env(box.ops_url, backup_dir)
    with _create_waiting_on_a_lock(box, env) as process:
        dumps = _children_named(process.pid, "pg_dump")
        assert len(dumps) == 1
        os.kill(dumps[0], signal.SIGKILL)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "pg_dump failed: killed by SIGKILL" in stderr
    assert final_files(backup_dir) == []
    assert list(backup_dir.glob("*.partial")) == []


def test_the_tool_killed_mid_way_leaves_no_backup_and_stops_pg_dump(box: SandboxHandle, backup_dir: Path) -> None:
    env = tool_env(box.ops_url, backup_dir)
    with _create_waiting_on_a_lock(box, env) as process:
        dumps = _children_named(process.pid, "pg_dump")
        assert len(dumps) == 1
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "interrupted by SIGTERM; no backup was written" in stderr
    assert final_files(backup_dir) == [] and list(backup_dir.glob("*.partial")) == []
    assert all(not Path(f"/proc/{pid}").exists() for pid in dumps)


def test_a_partial_left_by_a_sigkilled_run_is_cleaned_by_the_next_one(box: SandboxHandle, backup_dir: Path) -> None:
    env = tool_env(box.ops_url, backup_dir)
    with _create_waiting_on_a_lock(box, env) as process:
        dumps = _children_named(process.pid, "pg_dump")
        assert len(dumps) == 1
        process.kill()  # SIGKILL: no chance to clean up
        process.wait()
        for pid in dumps:
            os.kill(pid, signal.SIGKILL)
    assert final_files(backup_dir) == []
    assert len(list(backup_dir.glob("*.partial"))) == 1
    follow_up = run_tool(env, "create")
    assert follow_up.returncode == 0, follow_up.stderr
    assert "left by an interrupted run" in follow_up.stderr
    assert list(backup_dir.glob("*.partial")) == []
    assert len(final_files(backup_dir)) == 2


def test_a_transaction_pooler_url_is_refused_before_anything_is_written(backup_dir: Path) -> None:
    for url in (
        "postgresql://postgres.abc:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres",
        "postgresql://postgres:pw@db.example.supabase.co:5432/postgres?pgbouncer=true",
    ):
        result = run_tool(tool_env(url, backup_dir), "create")
        assert result.returncode == 1
        assert "transaction pooler" in result.stderr and "port 5432" in result.stderr
        assert "pw" not in result.stderr.replace("pwd", "")
    assert not backup_dir.exists()


def test_a_malformed_url_and_a_missing_url_say_what_to_fix(backup_dir: Path) -> None:
    bad = run_tool(tool_env("mysql://root:mysql-pw@localhost/db", backup_dir), "create")
    assert bad.returncode == 1 and "is not a connection string the host's libpq" in bad.stderr
    assert "use postgresql://user:password@host:5432/dbname" in bad.stderr and "mysql-pw" not in bad.stderr
    env = tool_env("x", backup_dir)
    del env["DATABASE_URL"]
    missing = run_tool(env, "create")
    assert missing.returncode == 1 and "DATABASE_URL is not set" in missing.stderr


def test_a_stopped_server_is_reported_clearly(tmp_path: Path, backup_dir: Path) -> None:
    cluster = PostgresCluster(base_dir=tmp_path / "pg", port=free_port(), settings={"fsync": "off"})
    cluster.init()
    cluster.start()
    with psycopg2.connect(cluster.admin_dsn()) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE ROLE ops LOGIN PASSWORD 'stopped-server-pw'")
    cluster.stop()
    url = f"postgresql://ops:stopped-server-pw@127.0.0.1:{cluster.port}/postgres"
    result = run_tool(tool_env(url, backup_dir), "create")
    cluster.destroy()
    assert result.returncode == 1
    assert f"cannot reach the database postgres at 127.0.0.1:{cluster.port} as ops" in result.stderr
    assert "stopped-server-pw" not in result.stderr
    assert final_files(backup_dir) == []


def test_too_little_free_disk_is_refused_before_writing(box: SandboxHandle, tmp_path: Path) -> None:
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    backup_dir = mount_point / "backups"
    # A real 64 KiB filesystem, mounted in a private namespace for this one command.
    script = f'mount -t tmpfs -o size=64k none "{mount_point}" && exec "$@"'
    result = run_tool(
        tool_env(box.ops_url, backup_dir),
        "create",
        prefix=("unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh"),
    )
    assert result.returncode == 1, result.stderr
    assert "not enough free disk" in result.stderr and "free space or move BACKUP_DIR" in result.stderr
    assert final_files(backup_dir) == []


def test_hitting_a_write_limit_mid_dump_leaves_no_backup(box: SandboxHandle, backup_dir: Path) -> None:
    result = run_tool(tool_env(box.ops_url, backup_dir), "create", prefix=("prlimit", "--fsize=60000"))
    assert result.returncode == 1
    assert "file size limit" in result.stderr
    assert final_files(backup_dir) == [] and list(backup_dir.glob("*.partial")) == []


def test_an_env_file_readable_by_others_is_refused(box: SandboxHandle, tmp_path: Path) -> None:
    env_file = tmp_path / "backup.env"
    env_file.write_text(f"DATABASE_URL={box.ops_url}\nBACKUP_DIR={tmp_path / 'b'}\n")
    env_file.chmod(0o644)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BACKUP_", "DATABASE_URL"))}
    result = run_tool(base, "--env-file", str(env_file), "list")
    assert result.returncode == 1 and f"chmod 600 {env_file}" in result.stderr
    env_file.chmod(0o600)
    assert run_tool(base, "--env-file", str(env_file), "list").returncode == 0


def test_metrics_record_success_and_keep_it_through_a_failure(box: SandboxHandle, tmp_path: Path) -> None:
    metrics = tmp_path / "textfile"
    env = tool_env(box.ops_url, tmp_path / "b", BACKUP_METRICS_DIR=str(metrics))
    assert run_tool(env, "create", "--reason", "scheduled").returncode == 0
    first = _prom(metrics)
    assert first["weddingflo_backup_last_run_success"] == "1"
    assert int(first["weddingflo_backup_last_size_bytes"]) > 0
    failing = {**env, "DATABASE_URL": box.ops_url.replace("127.0.0.1", "127.0.0.1:1").rsplit(":", 1)[0] + ":1/x"}
    time.sleep(1.1)
    assert run_tool(failing, "create").returncode == 1
    second = _prom(metrics)
    assert second["weddingflo_backup_last_run_success"] == "0"
    assert (
        second["weddingflo_backup_last_success_timestamp_seconds"]
        == first["weddingflo_backup_last_success_timestamp_seconds"]
    )
    assert (
        second["weddingflo_backup_last_run_timestamp_seconds"] > first["weddingflo_backup_last_run_timestamp_seconds"]
    )


def _prom(directory: Path) -> dict[str, str]:
    lines = (directory / "weddingflo_backup.prom").read_text().splitlines()
    return dict(line.split(" ", 1) for line in lines if line and not line.startswith("#"))


def test_two_creates_in_the_same_second_get_distinct_ids(box: SandboxHandle, backup_dir: Path) -> None:
    env = tool_env(box.ops_url, backup_dir)
    results: list[subprocess.CompletedProcess[str]] = []
    threads = [threading.Thread(target=lambda: results.append(run_tool(env, "create"))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    ids = {json.loads(r.stdout)["id"] for r in results}
    assert len(ids) == 2 and len(final_files(backup_dir)) == 4


def test_restore_brings_back_the_backed_up_rows_in_one_transaction(tmp_path: Path) -> None:
    handle = start_sandbox(tmp_path / "restore-box", guests=500)
    try:
        env = tool_env(handle.ops_url, tmp_path / "b")
        backup = json.loads(run_tool(env, "create").stdout)
        with handle.connect() as connection, connection.cursor() as cursor:
            cursor.execute("DELETE FROM guests WHERE rsvp_status = 'pending'")
            cursor.execute("UPDATE clients SET guest_count = -1")
        restored = run_tool(env, "restore", backup["id"], "--dbname", "weddingflo")
        assert restored.returncode == 0, restored.stderr
        in_restore = json.loads(restored.stdout)["compare"]
        assert in_restore["when"] == "inside the restore's transaction" and in_restore["result"] == "ok", in_restore
        assert in_restore["checksums_compared"] == in_restore["tables_compared"] > 5
        assert in_restore["migration_head"]["applied"] == 23
        with handle.connect() as connection, connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM guests")
            assert cursor.fetchone()[0] == 500
            cursor.execute("SELECT count(*) FROM clients WHERE guest_count = -1")
            assert cursor.fetchone()[0] == 0
        compared = json.loads(run_tool(env, "compare", backup["id"]).stdout)
        assert compared["result"] == "ok" and compared["checksums_compared"] == compared["tables_compared"] > 5
        # Same row counts, one value changed: only the checksum sees it.
        with handle.connect() as connection, connection.cursor() as cursor:
            cursor.execute(
                "UPDATE clients SET guest_count = guest_count + 1 WHERE id IN (SELECT id FROM clients LIMIT 1)"
            )
        changed = run_tool(env, "compare", backup["id"])
        mismatches = json.loads(changed.stdout)["mismatches"]
        assert changed.returncode == 1 and len(mismatches) == 1, changed.stdout
        assert (
            mismatches[0].startswith("public.clients: ")
            and "rows as the manifest says, but other contents" in (mismatches[0])
        )
        unknown = run_tool(env, "restore", "backup-19990101-000000", "--dbname", "weddingflo")
        assert unknown.returncode == 1 and "no backup 'backup-19990101-000000'" in unknown.stderr
    finally:
        stop_sandbox(handle)


def test_a_restore_compares_inside_its_own_transaction_so_the_apps_next_writes_do_not_fail_it(tmp_path: Path) -> None:
    handle = start_sandbox(tmp_path / "live-box", guests=300)
    stop = threading.Event()
    writes: list[int] = []

    def app() -> None:
        """The app keeps writing, as in a rollback without maintenance (blocked while the restore holds its locks)."""
        connection = psycopg2.connect(handle.ops_url)
        connection.autocommit = True
        with connection.cursor() as cursor:
            while not stop.is_set():
                cursor.execute(
                    "UPDATE guests SET first_name = first_name || '.' WHERE id IN (SELECT id FROM guests LIMIT 1)"
                )
                writes.append(cursor.rowcount)
                time.sleep(0.02)
        connection.close()

    try:
        env = tool_env(handle.ops_url, tmp_path / "b")
        backup = json.loads(run_tool(env, "create").stdout)
        writer = threading.Thread(target=app, daemon=True)
        writer.start()
        try:
            restored = run_tool(env, "restore", backup["id"], "--dbname", "weddingflo")
            time.sleep(0.5)
            afterwards = run_tool(env, "compare", backup["id"])
        finally:
            stop.set()
            writer.join(timeout=30)
        assert restored.returncode == 0, restored.stderr
        assert json.loads(restored.stdout)["compare"]["result"] == "ok", restored.stdout
        # The same comparison a moment later sees the app's writes: why the restore compares in its transaction.
        assert afterwards.returncode == 1 and len(writes) > 10, afterwards.stdout
        assert json.loads(afterwards.stdout)["mismatches"][0].startswith("public.guests: 300 rows as the manifest says")
    finally:
        stop_sandbox(handle)
