"""Backups beyond the host: encrypted offsite copies on a real SFTP-only target, restores and drills from them.

The target is a real sshd on loopback with a chrooted, SFTP-only user; rclone, pg_dump and pg_restore are the
real binaries; PostgreSQL is the sandbox's. These tests create a system user and start sshd: they need root
and fail (they do not skip) without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import yaml

from backup_helpers import final_files, load_tool_module, row_checksums, run_tool, tool_env
from conftest import REPO, VENV_BIN, SandboxHandle, start_sandbox, stop_sandbox
from loopback_sshd import user_exists
from offsite_helpers import CRYPT_PASSWORD, CRYPT_SALT, KEY_CHECK_FILE, SFTP_USER, SftpTarget, sftp_target
from webhook_receiver import start_webhook
from wfops.pgcluster import server_bindir

tool = load_tool_module()


@pytest.fixture(scope="module")
def sftp() -> Iterator[SftpTarget]:
    with sftp_target() as target:
        yield target


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    handle = start_sandbox(tmp_path_factory.mktemp("offsite-box"), guests=500)
    yield handle
    stop_sandbox(handle)


@pytest.fixture
def host(tmp_path: Path, sftp: SftpTarget, box: SandboxHandle, request: pytest.FixtureRequest) -> Host:
    # A directory of its own on the target per test (and per parameter).
    name = request.node.name.removeprefix("test_")
    return Host(tmp_path, sftp, box, f"{name[:32]}-{hashlib.sha256(name.encode()).hexdigest()[:7]}")


class Host:
    """One test's "host": its own backup directory, metrics file and offsite directory on the shared target."""

    def __init__(self, tmp_path: Path, sftp: SftpTarget, box: SandboxHandle, name: str) -> None:
        self.backup_dir = tmp_path / "backups"
        self.metrics_dir = tmp_path / "metrics"
        self.sftp = sftp
        self.box = box
        self.offsite_path = name
        self.env = tool_env(
            box.ops_url,
            self.backup_dir,
            PG_BINDIR=str(server_bindir()),
            BACKUP_METRICS_DIR=str(self.metrics_dir),
            **sftp.offsite_env(name),
        )

    def tool(self, *args: str, **overrides: str) -> tuple[int, str, str]:
        result = run_tool({**self.env, **overrides}, *args)
        return result.returncode, result.stdout, result.stderr

    def ok(self, *args: str, **overrides: str) -> str:
        code, out, err = self.tool(*args, **overrides)
        assert code == 0, err
        return out

    def backup(self, *args: str, **overrides: str) -> str:
        return json.loads(self.ok("create", *args, **overrides))["id"]

    def listing(self) -> dict[str, dict]:
        return {row["id"]: row for row in json.loads(self.ok("list", "--json"))}

    def metrics(self) -> dict[str, str]:
        lines = (self.metrics_dir / "weddingflo_backup.prom").read_text().splitlines()
        return dict(line.split(" ", 1) for line in lines if line and not line.startswith("#"))

    def offsite(self) -> object:
        """The tool's own rclone remotes, for what an attacker or bit rot does to the target."""
        values = {k: v for k, v in self.env.items() if k.startswith("OFFSITE_")}
        return tool.Offsite(tool._offsite_settings(values, 7, 3))


def _database(box: SandboxHandle, name: str) -> str:
    admin = psycopg2.connect(box.ops_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return box.ops_url.rsplit("/", 1)[0] + "/" + name


def _databases(box: SandboxHandle) -> set[str]:
    with box.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database")
        return {row[0] for row in cursor.fetchall()}


def _known_row_text(box: SandboxHandle) -> bytes:
    with box.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT email FROM users ORDER BY email LIMIT 1")
        return cursor.fetchone()[0].encode()


def _flip_a_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_copies_arrive_encrypted_and_list_shows_where_each_backup_is(host: Host) -> None:
    backup_id = host.backup("--reason", "scheduled", BACKUP_COMPRESSION="0")
    archive = host.backup_dir / f"{backup_id}.dump"
    known = _known_row_text(host.box)
    # The control: unencrypted and uncompressed, the archive is a pg_dump archive holding the row's text.
    assert archive.read_bytes().startswith(b"PGDMP") and known in archive.read_bytes()

    copied = json.loads(host.ok("offsite", "copy", backup_id))

    assert copied["id"] == backup_id and copied["sha256_ok"] is True
    stored = host.sftp.files(host.offsite_path)
    # The archive, its manifest and the key check the first copy wrote (its name is plain, its content is not).
    assert len(stored) == 3 and [p.name for p in stored].count(KEY_CHECK_FILE) == 1, stored
    for path in stored:
        data = path.read_bytes()
        assert not data.startswith(b"PGDMP"), path
        assert known not in data and b"row_counts" not in data and b"sha256" not in data, path
        assert b"purpose" not in data and b"key check" not in data, path
        assert "backup-" not in str(path.relative_to(host.sftp.store)), "file names are encrypted too"
    assert sum(p.stat().st_size for p in host.sftp.copies(host.offsite_path)) > archive.stat().st_size
    assert copied["key_check"] == "created"
    row = host.listing()[backup_id]
    assert row["locations"] == ["local", "offsite"]
    assert row["offsite"]["sha256_ok"] is True and row["offsite"]["verification"] == "verified"
    text = host.ok("list")
    assert "local+offsite" in text and "verified" in text
    manifest = json.loads((host.backup_dir / f"{backup_id}.json").read_text())
    assert manifest["offsite"]["sha256_ok"] is True and manifest["offsite"]["copied_at"]
    metrics = host.metrics()
    assert metrics["weddingflo_backup_offsite_last_result"] == "1"
    assert metrics["weddingflo_backup_offsite_last_size_bytes"] == str(archive.stat().st_size)


def test_a_restore_from_the_offsite_copy_after_the_backups_are_gone_matches_the_manifest(host: Host) -> None:
    backup_id = host.backup("--reason", "release", "--release-ref", "r-offsite")
    host.ok("offsite", "copy", backup_id)
    shutil.rmtree(host.backup_dir)

    row = host.listing()[backup_id]
    assert row["locations"] == ["offsite"] and row["present"] is False and row["release_ref"] == "r-offsite"
    restored_url = _database(host.box, "offsite_restored")
    restored = json.loads(host.ok("restore", backup_id, "--dbname", "offsite_restored"))
    compare = json.loads(host.ok("compare", backup_id, DATABASE_URL=restored_url))

    assert restored["id"] == backup_id
    assert compare["result"] == "ok" and compare["tables_compared"] > 5, compare
    assert host.listing()[backup_id]["locations"] == ["local", "offsite"]


def test_a_tampered_offsite_copy_is_refused(host: Host, tmp_path: Path) -> None:
    good = host.backup()
    host.ok("offsite", "copy", good)
    # Bit rot (or an edit) on the provider's side: crypt's authentication refuses the block.
    encrypted = host.sftp.largest(host.offsite_path)
    _flip_a_byte(encrypted, encrypted.stat().st_size // 2)
    shutil.rmtree(host.backup_dir)

    code, _, err = host.tool("fetch", good)
    assert code == 1 and f"the offsite copy of {good} is corrupt (MISMATCH)" in err, err
    assert "refusing to use it" in err and "bad password" not in err, err
    assert final_files(host.backup_dir) == []
    assert host.listing()[good]["offsite"]["verification"] == "MISMATCH"

    # Someone with the key swaps in another (valid, decryptable) archive: the manifest's sha256 refuses it.
    other = host.backup(BACKUP_DIR=str(tmp_path / "other"))
    host.offsite().upload(tmp_path / "other" / f"{other}.dump", f"{good}.dump")
    code, _, err = host.tool("restore", good, "--dbname", "never_restored")
    assert code == 1 and f"the offsite copy of {good} is corrupt (MISMATCH): it has sha256" in err, err
    assert "refusing to use it" in err, err
    assert f"{good}.dump" not in final_files(host.backup_dir)
    assert "never_restored" not in _databases(host.box)
    assert host.listing()[good]["offsite"]["verification"] == "MISMATCH"


def _catalogue(host: Host) -> dict[str, bytes]:
    directory = host.backup_dir / "offsite"
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.json"))} if directory.exists() else {}


WRONG_KEYS = {"password": {"OFFSITE_CRYPT_PASSWORD": "not-the-vault-password"}, "salt": {"OFFSITE_CRYPT_SALT": "typo"}}


@pytest.mark.parametrize("wrong", sorted(WRONG_KEYS))
def test_a_wrong_key_or_salt_is_refused_by_every_offsite_command_and_changes_nothing(host: Host, wrong: str) -> None:
    copied = host.backup("--reason", "release", "--release-ref", "r-key")
    host.ok("offsite", "copy", copied)
    local_only = host.backup()
    drill_url = host.box.ops_url.rsplit("/", 1)[0] + "/wf_drill_wrong_key"
    before = (_catalogue(host), host.sftp.snapshot(host.offsite_path), final_files(host.backup_dir))
    assert copied + ".json" in before[0] and len(before[1]) == 3

    bad = {**WRONG_KEYS[wrong], "BACKUP_DRILL_DATABASE_URL": drill_url}
    for args in (
        ("offsite", "pull"),
        ("list",),
        ("list", "--json"),
        ("drill",),
        ("create", "--verify", "--offsite-copy", "--prune"),
        ("offsite", "copy", local_only),
        ("offsite", "prune"),
        ("offsite", "verify"),
        ("verify", copied, "--offsite"),
        ("offsite", "key-check"),
        ("resolve", "backup-20000101-000000"),  # an id the catalogue does not know: it asks the target
    ):
        code, out, err = host.tool(*args, **bad)
        assert code == 1, (args, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "the offsite key does not fit sftp://127.0.0.1/" in lines[0], (args, err)
        assert "its key check does not decrypt" in err and "nothing was read, written or forgotten" in err, err
        assert "Traceback" not in err and out == "", (args, out)
        after = (_catalogue(host), host.sftp.snapshot(host.offsite_path), final_files(host.backup_dir))
        assert after == before, f"{args} changed the catalogue, the target or the backups"
    assert "wf_drill_wrong_key" not in _databases(host.box)
    assert host.metrics()["weddingflo_backup_offsite_last_result"] == "0"

    # The cached list still works (it touches nothing offsite), and the right key sees everything as before.
    assert copied in host.ok("list", "--cached", **bad)
    assert host.listing()[copied]["offsite"]["verification"] == "verified"


def test_a_target_without_a_key_check_is_adopted_only_when_the_key_reads_it(host: Host) -> None:
    fresh = json.loads(host.ok("offsite", "key-check", OFFSITE_PATH=f"/store/{host.offsite_path}-empty"))
    assert fresh["key_check"] == "created", "an empty target gets its key check at first setup"
    again = json.loads(host.ok("offsite", "key-check", OFFSITE_PATH=f"/store/{host.offsite_path}-empty"))
    assert again["key_check"] == "ok"

    backup_id = host.backup()
    host.ok("offsite", "copy", backup_id)
    # A target written before key checks existed: its copies, and no key check.
    (host.sftp.store / host.offsite_path / KEY_CHECK_FILE).unlink()
    before = (_catalogue(host), host.sftp.snapshot(host.offsite_path))

    code, _, err = host.tool("offsite", "copy", backup_id, OFFSITE_CRYPT_SALT="typo")
    assert code == 1 and "holds 2 file(s) without a key check and this key decrypts none of them" in err, err
    assert (_catalogue(host), host.sftp.snapshot(host.offsite_path)) == before, "nothing adopted with a wrong key"

    assert host.listing()[backup_id]["locations"] == ["local", "offsite"]
    assert host.sftp.snapshot(host.offsite_path) == before[1], "reading commands never write the key check"
    adopted = json.loads(host.ok("offsite", "copy", backup_id))
    assert adopted["key_check"] == "adopted"
    assert KEY_CHECK_FILE in [p.name for p in host.sftp.files(host.offsite_path)]
    code, _, err = host.tool("list", OFFSITE_CRYPT_SALT="typo")
    assert code == 1 and "its key check does not decrypt" in err, err


def test_a_byte_flipped_in_a_remote_archive_shows_mismatch_with_rclones_whole_line(host: Host) -> None:
    damaged = host.backup()
    host.ok("offsite", "copy", damaged, "--no-prune")
    archive = host.sftp.largest(host.offsite_path)
    good = host.backup()
    host.ok("offsite", "copy", good, "--no-prune")
    assert {row["offsite"]["verification"] for row in host.listing().values()} == {"verified"}
    _flip_a_byte(archive, archive.stat().st_size // 2)

    code, out, err = host.tool("verify", damaged, "--offsite")
    result = json.loads(out)
    assert err.strip().splitlines()[-1].endswith(result["findings"][0]), err
    assert code == 1 and result["result"] == "failed", out
    finding = result["findings"][0]
    assert finding.startswith(f"the offsite copy of {damaged} is corrupt (MISMATCH): crypt cannot authenticate")
    assert "key fits this target" in finding and "bad password" not in finding, finding
    # rclone's own line, whole (not its last 400 characters).
    assert finding.endswith("(rclone: Failed to copyto: failed to authenticate decrypted block)"), finding
    rows = host.listing()
    assert rows[damaged]["offsite"]["verification"] == "MISMATCH"
    assert rows[good]["offsite"]["verification"] == "verified"
    assert rows[damaged]["offsite"]["problem"] == finding
    assert re.search(rf"{damaged}.*MISMATCH", host.ok("list"))

    # A byte flipped in an archive's last (short) block: rclone reports the short read, still a MISMATCH.
    tail = host.backup()
    before = set(host.sftp.copies(host.offsite_path))
    host.ok("offsite", "copy", tail, "--no-prune")
    tail_archive = max(set(host.sftp.copies(host.offsite_path)) - before, key=lambda p: p.stat().st_size)
    _flip_a_byte(tail_archive, tail_archive.stat().st_size - 5)

    code, out, _ = host.tool("offsite", "verify")
    results = {r["id"]: r for r in json.loads(out)}
    assert code == 1 and {i: r["result"] for i, r in results.items()} == {damaged: "failed", good: "ok", tail: "failed"}
    assert results[tail]["findings"][0].endswith("(rclone: Failed to copyto: unexpected EOF)"), results[tail]
    assert host.listing()[tail]["offsite"]["verification"] == "MISMATCH"


def _ids_offsite(host: Host) -> set[str]:
    return {name.removesuffix(".json") for name in host.offsite().listing() if name.endswith(".json")}


def test_offsite_retention_prunes_only_after_a_successful_copy(host: Host) -> None:
    # Keep nothing for its age: only the newest two good copies and the pinned release backup stay.
    retention = {"OFFSITE_RETENTION_DAYS": "0", "OFFSITE_RETENTION_MIN_COUNT": "2"}
    release = host.backup("--reason", "release", "--release-ref", "r1")
    first, second, third = (host.backup("--reason", "scheduled") for _ in range(3))
    for backup_id in (release, first, second, third):
        host.ok("offsite", "copy", backup_id, "--no-prune", **retention)
    assert _ids_offsite(host) == {release, first, second, third}

    damaged = host.backup("--reason", "scheduled")
    _flip_a_byte(host.backup_dir / f"{damaged}.dump", 100)
    code, _, err = host.tool("offsite", "copy", damaged, **retention)
    assert code == 1 and "not copying a damaged backup offsite" in err, err
    assert host.metrics()["weddingflo_backup_offsite_last_result"] == "0"
    unreachable = {"OFFSITE_REMOTE_PORT": "1", **retention}
    code, _, err = host.tool("offsite", "copy", third, **unreachable)
    assert code == 1 and "the offsite target failed" in err and "connection refused" in err, err
    assert _ids_offsite(host) == {release, first, second, third}, "a failed copy deletes nothing"

    newest = host.backup("--reason", "scheduled")
    copied = json.loads(host.ok("offsite", "copy", newest, **retention))

    assert sorted(copied["pruned"]) == sorted([first, second])
    assert _ids_offsite(host) == {release, third, newest}
    assert len(host.sftp.copies(host.offsite_path)) == 6
    assert host.metrics()["weddingflo_backup_offsite_last_result"] == "1"
    assert {release, first, second, third, newest} <= set(final_files_ids(host)), "local copies are not touched"


def test_a_release_create_copies_offsite_before_it_prunes_and_a_failed_copy_prunes_nothing(host: Host) -> None:
    local_retention = {"BACKUP_RETENTION_DAYS": "0", "BACKUP_RETENTION_MIN_COUNT": "1"}
    older = host.backup("--reason", "scheduled")
    # The target cannot be reached, so the key cannot be proven: the release stops before it dumps anything.
    unreachable = {"OFFSITE_REMOTE_PORT": "1", **local_retention}
    code, out, err = host.tool("create", "--verify", "--offsite-copy", "--prune", **unreachable)
    assert code == 1 and out == "", out
    assert err.startswith("weddingflo-backup: no backup was taken: listing the offsite target failed"), err
    assert "connection refused" in err and final_files_ids(host) == [older]
    assert host.metrics()["weddingflo_backup_offsite_last_result"] == "0"

    # The key opens the target, but the provider refuses the upload (quota, permissions): the backup is kept.
    assert json.loads(host.ok("offsite", "key-check"))["key_check"] == "created"
    store = host.sftp.store / host.offsite_path
    store.chmod(0o555)
    try:
        code, out, err = host.tool("create", "--verify", "--offsite-copy", "--prune", **local_retention)
    finally:
        store.chmod(0o755)
    failed = json.loads(out)
    assert code == 1, err
    assert f"{failed['id']} was written and verified (kept), but its offsite copy failed, nothing was pruned" in err
    assert "pruned" not in failed and {older, failed["id"]} <= set(final_files_ids(host))
    assert host.metrics()["weddingflo_backup_offsite_last_result"] == "0"

    done = json.loads(host.ok("create", "--verify", "--offsite-copy", "--prune", **local_retention))
    assert done["verification"]["result"] == "ok" and done["offsite"]["sha256_ok"] is True
    assert sorted(done["pruned"]) == sorted([older, failed["id"]])
    assert final_files_ids(host) == [done["id"]] and done["id"] in _ids_offsite(host)
    assert host.metrics()["weddingflo_backup_offsite_last_result"] == "1"


def final_files_ids(host: Host) -> list[str]:
    return [name.removesuffix(".dump") for name in final_files(host.backup_dir) if name.endswith(".dump")]


def test_the_drill_passes_on_a_good_backup_and_fails_on_a_corrupted_one(host: Host) -> None:
    drill_url = host.box.ops_url.rsplit("/", 1)[0] + "/wf_drill_scratch"
    drill_env = {"BACKUP_DRILL_DATABASE_URL": drill_url}
    code, _, err = host.tool("drill", BACKUP_DRILL_DATABASE_URL=host.box.ops_url.replace("127.0.0.1", "localhost"))
    assert code == 1 and "names the production database" in err, err
    backup_id = host.backup()
    host.ok("offsite", "copy", backup_id)

    passed = json.loads(host.ok("drill", **drill_env))

    assert passed["id"] == backup_id and passed["result"] == "ok", passed
    assert passed["tables_compared"] > 5 and passed["rows_restored"] > 500
    assert passed["checksums_compared"] == passed["tables_compared"], "contents compared, not only counts"
    assert "wf_drill_scratch" not in _databases(host.box)
    metrics = host.metrics()
    assert metrics["weddingflo_backup_drill_last_result"] == "1"
    assert float(metrics["weddingflo_backup_drill_last_duration_seconds"]) > 0

    # A manifest whose counts the archive does not hold (a dump that lost rows): the restore shows it.
    manifest = json.loads((host.backup_dir / f"{backup_id}.json").read_text())
    manifest.pop("offsite")
    table = sorted(manifest["row_counts"])[0]
    manifest["row_counts"][table] += 1
    lying = host.backup_dir.parent / f"{backup_id}.json"
    lying.write_text(json.dumps(manifest))
    host.offsite().upload(lying, f"{backup_id}.json")
    hook, server = start_webhook()
    try:
        code, out, _ = host.tool("drill", **drill_env, NOTIFY_WEBHOOK_URL=hook.url)
    finally:
        server.shutdown()
    failed = json.loads(out)
    assert code == 1 and failed["result"] == "failed"
    assert hook.events() == ["drill-failed"], "a failed drill is posted to the team's webhook"
    assert f"{table}: restored" in hook.received[0]["text"]
    assert failed["findings"] == [
        f"{table}: restored {manifest['row_counts'][table] - 1} rows, the manifest says {manifest['row_counts'][table]}"
    ]
    assert host.metrics()["weddingflo_backup_drill_last_result"] == "0"
    assert "wf_drill_scratch" not in _databases(host.box)

    # The counts right, one table's contents not (a dump that wrote other values): the checksum shows it.
    manifest["row_counts"][table] -= 1
    manifest["table_checksums"][table] = "12345"
    lying.write_text(json.dumps(manifest))
    host.offsite().upload(lying, f"{backup_id}.json")
    code, out, _ = host.tool("drill", **drill_env)
    assert code == 1 and json.loads(out)["findings"] == [
        f"{table}: restored {manifest['row_counts'][table]} rows as the manifest says, but other contents (checksum "
        f"{json.loads((host.backup_dir / f'{backup_id}.json').read_text())['table_checksums'][table]}, the manifest "
        "says 12345)"
    ], out

    encrypted = host.sftp.largest(host.offsite_path)
    _flip_a_byte(encrypted, encrypted.stat().st_size // 3)
    code, out, err = host.tool("drill", **drill_env)
    assert code == 1 and json.loads(out)["findings"][0].startswith(f"the offsite copy of {backup_id} is corrupt"), out
    assert "wf_drill_scratch" not in _databases(host.box), "a corrupt copy is never restored"
    assert host.metrics()["weddingflo_backup_drill_last_result"] == "0"


def test_the_crypt_password_and_the_ssh_key_never_show_in_output_or_arguments(host: Host, tmp_path: Path) -> None:
    argv_log = tmp_path / "argv.log"
    wrapper = tmp_path / "rclone"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$0" "$@" >> {argv_log}\nexec /usr/bin/rclone "$@"\n')
    wrapper.chmod(0o755)
    env = {"OFFSITE_RCLONE": str(wrapper), "BACKUP_DRILL_DATABASE_URL": host.box.ops_url + "_drill"}
    outputs = []
    backup_id = host.backup()
    for args in (("offsite", "copy", backup_id), ("list",), ("verify", backup_id, "--offsite"), ("drill",)):
        code, out, err = host.tool(*args, **env)
        assert code == 0, err
        outputs += [out, err]
    shutil.rmtree(host.backup_dir)
    outputs += list(host.tool("fetch", backup_id, **env)[1:])
    outputs += list(host.tool("offsite", "copy", "latest", **env, OFFSITE_REMOTE_PORT="1")[1:])

    key_text = host.sftp.key.read_text().strip().splitlines()[1]
    arguments = argv_log.read_text()
    assert "obscure" in arguments and "copyto" in arguments and "lsjson" in arguments
    for secret in (CRYPT_PASSWORD, CRYPT_SALT, key_text):
        assert secret not in arguments
        assert all(secret not in text for text in outputs)
    assert stat.S_IMODE(host.backup_dir.stat().st_mode) == 0o700
    assert os.environ.get("OFFSITE_CRYPT_PASSWORD") is None


RECOVER_USER = "wfops-recover"


@pytest.fixture
def recover_user() -> Iterator[str]:
    assert os.geteuid() == 0, "recover-host creates a system user: run it as root"
    assert not user_exists(RECOVER_USER), f"{RECOVER_USER} exists already: remove it (userdel {RECOVER_USER})"
    yield RECOVER_USER
    subprocess.run(["userdel", RECOVER_USER], check=False, capture_output=True)


def _as_user(user: str, tool_path: Path, env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", user, "--", str(tool_path), "--env-file", str(env_file), *args],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ["PATH"], "LC_ALL": "C"},
    )


def test_recover_host_following_the_docs_ends_with_every_table_as_its_manifest_says(
    host: Host, recover_user: str, tmp_path: Path
) -> None:
    """docs/disaster-recovery.md, "The host is gone": prepare the new host from the vault (a wrong key is refused),
    choose a backup by its verified state, restore it, prove every table's contents equal the manifest's."""
    release = host.backup("--reason", "release", "--release-ref", "r-lost")
    scheduled = host.backup("--reason", "scheduled")
    for backup_id in (release, scheduled):
        host.ok("offsite", "copy", backup_id)
    shutil.rmtree(host.backup_dir)  # the old host is gone, and every backup on it
    target_before = host.sftp.snapshot(host.offsite_path)

    # The empty host: a fresh directory tree (its /etc, /usr/local, /var) and a system user that does not exist yet.
    prefix = Path(tempfile.mkdtemp(prefix="wfops-recover-", dir="/tmp"))
    prefix.chmod(0o755)
    inventory = tmp_path / "inventory" / "hosts.yml"
    inventory.parent.mkdir()
    (inventory.parent / "group_vars").symlink_to(REPO / "group_vars")
    host_vars = {
        "ansible_connection": "local",
        "ansible_python_interpreter": "/usr/bin/python3",
        "wfops_host_root": str(prefix),
        "wfops_host_backup_user": recover_user,
        "backup_group": recover_user,
        "backup_manage_user": True,
        "backup_become": True,
        "backup_pg_bindir": str(server_bindir()),
        "release_become": True,
        "rollback_become": True,
    }
    inventory.write_text(yaml.safe_dump({"local": {"children": {"weddingflo": {"hosts": {"newhost": host_vars}}}}}))
    # The database is gone too: the new one is empty.
    recovered_url = _database(host.box, "recovered")
    # What the vault holds, and nothing else from the old host.
    vault = tmp_path / "vault.yml"
    vault.write_text(
        yaml.safe_dump(
            {
                "wfops_database_url": recovered_url,
                "backup_database_url": recovered_url,
                "backup_offsite_remote": {
                    "type": "sftp",
                    "host": "127.0.0.1",
                    "port": host.sftp.port,
                    "user": SFTP_USER,
                    "shell_type": "none",
                },
                "backup_offsite_path": f"/store/{host.offsite_path}",
                "backup_offsite_crypt_password": CRYPT_PASSWORD,
                "backup_offsite_crypt_salt": CRYPT_SALT,
                "backup_offsite_ssh_key": host.sftp.key.read_text(),
                "backup_offsite_known_hosts": host.sftp.known_hosts.read_text(),
                "backup_drill_database_url": host.box.ops_url + "_drill",
            }
        )
    )
    vault.chmod(0o600)
    catalogue = prefix / "var/backups/weddingflo/offsite"

    def recover(*extra: str) -> subprocess.CompletedProcess[str]:
        return playbook("playbooks/recover-host.yml", "-e", "backup_schedule_enabled=true", *extra)

    def playbook(path: str, *extra: str) -> subprocess.CompletedProcess[str]:
        # The switches as an operator types them: `-e key=value`, so every value is a string ("true").
        return subprocess.run(
            [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), path, "-e", f"@{vault}", *extra],
            cwd=REPO,
            env={
                **{k: v for k, v in host.box.env.items() if k != "ANSIBLE_SHOW_CUSTOM_STATS"},
                "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                "ANSIBLE_NOCOLOR": "1",
            },
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def summary(run: subprocess.CompletedProcess[str]) -> str:
        """The play's last words, as the default callback prints them (YAML, wrapped)."""
        task = run.stdout.split("TASK [backup : Show what the host can restore]")[-1]
        result = task.split("=>", 1)[1].split("\n\n", 1)[0]
        return yaml.safe_load(result)["msg"]

    try:
        dry = recover("--check")
        assert dry.returncode == 0, dry.stdout[-3000:]
        assert list(prefix.iterdir()) == [] and not user_exists(recover_user), "a check run changes nothing"

        # Step 1, with the key mistyped: refused in one sentence, and nothing catalogued or written offsite.
        for wrong in ("backup_offsite_crypt_password=wrong-password", "backup_offsite_crypt_salt=wrong-salt"):
            refused = recover("-e", wrong, "-e", "recover_verify_offsite=true")
            assert refused.returncode != 0, refused.stdout[-3000:]
            assert "the offsite key does not fit sftp://127.0.0.1/" in refused.stdout, refused.stdout[-3000:]
            assert "offsite backups restorable" not in refused.stdout
            assert not list(catalogue.glob("*.json")) and host.sftp.snapshot(host.offsite_path) == target_before
            assert wrong.split("=")[1] not in refused.stdout + refused.stderr

        # Step 1: the host from the vault; every copy downloaded once and checked.
        first = recover("-e", "recover_verify_offsite=true")
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
        assert summary(first) == (
            f"2 offsite backups restorable from sftp://127.0.0.1/store/{host.offsite_path} (encrypted); newest "
            f"{scheduled} ({_created_at(catalogue, scheduled)}, scheduled); 2 verified, 0 unverified, 0 MISMATCH"
        )
        again = recover()
        assert again.returncode == 0 and re.search(r"newhost\s*: ok=\d+\s+changed=0 ", again.stdout), again.stdout[
            -1500:
        ]
        assert "2 verified, 0 unverified (-e recover_verify_offsite=true checks them all)" in summary(again)
        assert CRYPT_PASSWORD not in first.stdout + again.stdout and CRYPT_SALT not in first.stdout + again.stdout

        tool_path = prefix / "usr/local/bin/weddingflo-backup"
        env_file = prefix / "etc/weddingflo-backup/backup.env"
        for private in (env_file, prefix / "etc/weddingflo-backup/offsite_ssh_key"):
            assert (private.stat().st_uid, stat.S_IMODE(private.stat().st_mode)) == (
                pwd.getpwnam(recover_user).pw_uid,
                0o600,
            ), private
        units = prefix / "etc/systemd/system"
        assert "offsite copy latest" in (units / "weddingflo-backup.service").read_text()
        assert "OnCalendar=Sun *-*-* 05:30:00" in (units / "weddingflo-backup-drill.timer").read_text()

        # Step 2: choose a backup; each copy's state says whether it was checked.
        listed = _as_user(recover_user, tool_path, env_file, "list", "--json")
        assert listed.returncode == 0, listed.stderr
        rows = {row["id"]: row for row in json.loads(listed.stdout)}
        assert set(rows) == {release, scheduled}
        assert all(row["locations"] == ["offsite"] for row in rows.values())
        assert {row["offsite"]["verification"] for row in rows.values()} == {"verified"}
        assert rows[release]["release_ref"] == "r-lost"

        # Step 4: the documented rollback (`wfops rollback --database --backup ID -e rollback_code=false`, as
        # ansible-playbook runs it) on a host whose ledger is empty, into the empty database. No app here to smoke.
        confirmed = [f"rollback_backup_id={release}", f"rollback_confirm={release}"]
        switches = ["rollback_database=true", *confirmed, "rollback_code=false", "rollback_smoke=false"]
        rolled = playbook("rollback.yml", *(arg for switch in switches for arg in ("-e", switch)))
        assert rolled.returncode == 0, rolled.stdout[-3000:] + rolled.stderr[-2000:]
        ledger = [json.loads(line) for line in (prefix / "var/lib/weddingflo/ledger.jsonl").read_text().splitlines()]
        assert [(e["kind"], e["status"], e["backup_id"]) for e in ledger] == [("rollback", "successful", release)]
        in_transaction = ledger[0]["rollback"]["database"]["compare"]
        assert in_transaction["result"] == "ok" and in_transaction["when"] == "inside the restore's transaction"
        assert in_transaction["checksums_compared"] == in_transaction["tables_compared"] > 5, in_transaction
        safety = [
            row
            for row in json.loads(_as_user(recover_user, tool_path, env_file, "list", "--json", "--cached").stdout)
            if row["reason"] == "pre-rollback"
        ]
        assert len(safety) == 1 and safety[0]["locations"] == ["local"], "the empty database's safety dump is kept"
        # The tool's own compare afterwards (still in maintenance: nobody writes), and Python's computation.
        compared = _as_user(recover_user, tool_path, env_file, "compare", release)
        assert compared.returncode == 0, compared.stdout + compared.stderr
        result = json.loads(compared.stdout)
        assert result["result"] == "ok" and result["checksums_compared"] == result["tables_compared"] > 5, result
        manifest = json.loads((catalogue / f"{release}.json").read_text())
        assert row_checksums(recovered_url, tool._CHECKSUM_SESSION) == manifest["table_checksums"]
        verified = _as_user(recover_user, tool_path, env_file, "verify", scheduled)
        assert verified.returncode == 0 and json.loads(verified.stdout)["result"] == "ok", verified.stderr

        # The scheduled unit, step by step as systemd runs it: a copy that cannot write stops it before prune.
        units_ok = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", *(str(p) for p in sorted(units.glob("weddingflo-backup*")))],
            capture_output=True,
            text=True,
            check=False,
        )
        assert units_ok.returncode == 0, units_ok.stderr
        steps = [
            line.removeprefix("ExecStart=").split()
            for line in (units / "weddingflo-backup.service").read_text().splitlines()
            if line.startswith("ExecStart=")
        ]
        assert [step[3:5] for step in steps] == [["create", "--reason"], ["offsite", "copy"], ["prune"]]
        store = host.sftp.store / host.offsite_path
        store.chmod(0o555)  # the provider refuses writes (quota, permissions)
        try:
            outcomes = []
            for step in steps:
                done = subprocess.run(["runuser", "-u", recover_user, "--", *step], capture_output=True, text=True)
                outcomes.append(done.returncode)
                if done.returncode != 0:
                    break
        finally:
            store.chmod(0o755)
        assert outcomes == [0, 1], "the unit fails at the offsite copy, before prune"
        assert "copying" in done.stderr and "failed" in done.stderr, done.stderr
        metrics = (prefix / "var/lib/node_exporter/textfile_collector/weddingflo_backup.prom").read_text()
        assert "weddingflo_backup_last_run_success 1" in metrics
        assert "weddingflo_backup_offsite_last_result 0" in metrics
        assert _ids_offsite(host) == {release, scheduled}

        # The new host now holds a backup of its own that is not offsite: the summary counts offsite copies only.
        assert len(json.loads(_as_user(recover_user, tool_path, env_file, "list", "--json", "--cached").stdout)) == 4
        assert summary(recover()).startswith("2 offsite backups restorable from ")
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def _created_at(catalogue: Path, backup_id: str) -> str:
    return json.loads((catalogue / f"{backup_id}.json").read_text())["created_at"]


def test_wfops_run_drill_runs_one_drill_on_demand_and_reports_it(host: Host) -> None:
    backup_id = host.backup()
    host.ok("offsite", "copy", backup_id)
    settings = host.box.directory
    remote = {k.removeprefix("OFFSITE_REMOTE_").lower(): v for k, v in host.env.items() if "_REMOTE_" in k}
    (settings / "offsite.json").write_text(json.dumps({"remote": remote, "path": host.env["OFFSITE_PATH"]}))
    for name, value in (
        ("offsite_crypt_password", CRYPT_PASSWORD),
        ("offsite_crypt_salt", CRYPT_SALT),
        ("drill_database_url", host.box.ops_url + "_d"),
    ):
        (settings / name).write_text(value)
        (settings / name).chmod(0o600)
    try:
        passed = host.box.wfops("run", "drill", "--env", "local", "--json")
        summary = json.loads(passed.stdout)
        drill = summary["phases"][0]
        assert passed.returncode == 0 and drill["name"] == "drill" and drill["status"] == "ok", passed.stderr[-2000:]
        assert drill["result"]["id"] == backup_id and drill["result"]["tables_compared"] > 5
        assert "tables match the manifest (row counts and contents)" in drill["result"]["summary"]
        # `wfops backups`: the sandbox host has no backup of its own; the offsite copy the drill checked is there.
        shown = host.box.wfops("backups", "--env", "local")
        assert shown.returncode == 0, shown.stderr[-2000:]
        assert shown.stdout.splitlines()[0].split() == [
            *("id", "created", "(UTC)", "reason", "size", "where", "local", "offsite", "release")
        ]
        assert re.search(rf"^{backup_id} .* offsite +not here +verified *$", shown.stdout, re.MULTILINE), shown.stdout

        encrypted = host.sftp.largest(host.offsite_path)
        _flip_a_byte(encrypted, encrypted.stat().st_size // 2)
        failed = host.box.wfops("run", "drill", "--env", "local", "--json")
        drill = json.loads(failed.stdout)["phases"][0]
        assert failed.returncode != 0 and drill["status"] == "failed", failed.stdout[-2000:]
        assert f"the offsite copy of {backup_id} is corrupt (MISMATCH)" in drill["result"]["summary"]
        shown = json.loads(host.box.wfops("backups", "--env", "local", "--json").stdout)["backups"]
        assert [(row["id"], row["offsite"]["verification"]) for row in shown] == [(backup_id, "MISMATCH")]
        assert CRYPT_PASSWORD not in passed.stdout + passed.stderr + failed.stdout + failed.stderr
    finally:
        for name in ("offsite.json", "offsite_crypt_password", "offsite_crypt_salt", "drill_database_url"):
            (settings / name).unlink(missing_ok=True)


def test_configuration_errors_and_passwords_reach_rclone_only_obscured() -> None:
    values = {"OFFSITE_REMOTE_TYPE": "sftp", "OFFSITE_REMOTE_PASS": "plain-sftp-pw"}
    with pytest.raises(tool.BackupError, match="OFFSITE_CRYPT_PASSWORD is not set"):
        tool._offsite_settings(values, 7, 3)
    assert tool.Offsite(tool._offsite_settings({**values, "OFFSITE_CRYPT": "false"}, 7, 3)).prefix.startswith(
        "wfoffsite:"
    )
    assert tool._offsite_settings({"OFFSITE_PATH": "/x"}, 7, 3) is None, "no remote, no offsite"
    env = tool.Offsite(tool._offsite_settings({**values, "OFFSITE_CRYPT_PASSWORD": CRYPT_PASSWORD}, 7, 3)).env()
    for key, plain in (
        ("RCLONE_CONFIG_WFOFFSITE_PASS", "plain-sftp-pw"),
        ("RCLONE_CONFIG_WFOFFSITECRYPT_PASSWORD", CRYPT_PASSWORD),
    ):
        assert env[key] != plain
        revealed = subprocess.run(["rclone", "reveal", env[key]], capture_output=True, text=True, check=True)
        assert revealed.stdout.strip() == plain
    assert (
        env["RCLONE_CONFIG"] == os.devnull
        and env["RCLONE_CONFIG_WFOFFSITECRYPT_REMOTE"] == "wfoffsite:weddingflo-backups"
    )


def test_the_tools_help_names_every_offsite_command() -> None:
    shown = subprocess.run(
        ["/usr/bin/python3", str(REPO / "files" / "weddingflo_backup.py"), "--help"], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    for usage in (
        "list [--json] [--cached]",
        "verify ID --offsite",
        "offsite verify [ID ...]",
        "offsite key-check",
        "notify-failure UNIT",
        "weddingflo-keycheck.bin",
    ):
        assert usage in shown.stdout, usage
