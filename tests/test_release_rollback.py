"""The whole release, the rollback, the lock, the ledger and the monitor, end to end on the sandbox."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import (
    REPO,
    SandboxHandle,
    module_result,
    run_module,
    run_wfops,
    start_sandbox,
    stop_sandbox,
    table_checksums,
)


@pytest.fixture
def box(tmp_path: Path) -> Iterator[SandboxHandle]:
    handle = start_sandbox(tmp_path / "box", guests=1000)
    yield handle
    stop_sandbox(handle)


# A sandbox never migrated or normalised still has legacy data: releases from deploy check the app's flows only.
APP_FLOWS = ("-e", 'smoke_flows=["auth", "sse"]')


def _json_run(box: SandboxHandle, *args: str) -> tuple[int, dict]:
    result = box.wfops(*args, "--json")
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def _phases(summary: dict) -> dict[str, dict]:
    return {phase["name"]: phase for phase in summary["phases"]}


def _ledger(box: SandboxHandle) -> list[dict]:
    path = box.directory / "host" / "var" / "lib" / "weddingflo" / "ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _services(box: SandboxHandle) -> dict:
    return json.loads((box.directory / "services.json").read_text())


def _commit(box: SandboxHandle) -> str:
    with urllib.request.urlopen(_services(box)["app_url"] + "/api/health", timeout=5) as answer:
        return json.loads(answer.read())["commit"]


def _app_switch(box: SandboxHandle, **switches: bool) -> None:
    request = urllib.request.Request(
        _services(box)["app_url"] + "/__standin/app",
        method="POST",
        data=json.dumps(switches).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=5).close()


def _checksums(box: SandboxHandle) -> dict[str, str]:
    return table_checksums(box)


def test_a_full_release_from_the_previous_state_passes_every_phase(box: SandboxHandle) -> None:
    code, summary = _json_run(box, "release", "--env", "local", "--ref", "rel-1")
    assert code == 0, summary
    assert {name: p["status"] for name, p in _phases(summary).items()} == {
        name: "ok" for name in ("preflight", "backup", "migrate", "normalize", "deploy", "smoke")
    }
    assert _phases(summary)["preflight"]["result"]["tests_passed"] >= 13
    assert _commit(box) == "rel-1"
    entry = _ledger(box)[-1]
    assert entry["kind"] == "release" and entry["status"] == "successful" and entry["ref"] == "rel-1"
    assert entry["backup_id"] == _phases(summary)["backup"]["result"]["id"]
    deployment = _phases(summary)["deploy"]["result"]["deployment"]
    assert entry["serving"] == entry["deployed"]
    assert entry["serving"]["deployment_id"] == deployment["deploymentId"] and entry["serving"]["reported"] == "rel-1"
    assert (entry["previous"]["release_run"], entry["previous"]["reported"]) == ("before-ledger", "previous")
    assert set(entry["phases"].values()) == {"ok"}
    status = box.wfops("lock", "status", "--env", "local")
    assert status.returncode == 0 and status.stdout.strip() == "not held"
    history = box.wfops("history", "--env", "local").stdout
    marked = [line.split() for line in history.splitlines() if line.split()[3:4] == ["*"]]
    assert [(parts[1], parts[2], parts[5]) for parts in marked] == [("release", "rel-1", "successful")], history
    assert "* serving now: rel-1 (" in history


def test_a_dry_run_release_plans_every_phase_and_changes_nothing(box: SandboxHandle) -> None:
    before, commit = table_checksums(box), _commit(box)
    code, summary = _json_run(box, "release", "--env", "local", "--ref", "dry-1", "--check")
    assert code == 0, summary
    phases = _phases(summary)
    assert {name: p["status"] for name, p in phases.items()} == {
        name: "ok" for name in ("preflight", "backup", "migrate", "normalize", "deploy", "smoke")
    }
    assert [p["tag"][:4] for p in phases["migrate"]["result"]["pending"]] == ["0023", "0024", "0025", "0026", "0027"]
    # Sections that need the pending migrations' columns say so instead of failing the dry run.
    sections = {s["section"]: s for s in phases["normalize"]["result"]["sections"]}
    assert sections["rsvp"]["rows"] > 0, sections
    assert "pending migrations" in sections["company_id"]["note"], sections
    # Smoke runs against the unchanged database: what fails is reported, not fatal, in a dry run.
    assert "check mode" in phases["smoke"]["result"]["summary"], phases["smoke"]
    # Nothing is written, not even by the app: a dry run's smoke signs in nowhere (no session).
    assert table_checksums(box) == before and _commit(box) == commit
    assert not (box.directory / "host" / "var" / "lib" / "weddingflo" / "ledger.jsonl").exists()
    assert box.wfops("lock", "status", "--env", "local").stdout.strip() == "not held"


def test_a_release_whose_smoke_fails_rolls_its_code_back_automatically(box: SandboxHandle) -> None:
    code, first = _json_run(box, "release", "--env", "local", "--ref", "good", "--from", "backup")
    assert code == 0, first
    _app_switch(box, sse=False)
    try:
        code, summary = _json_run(
            box,
            "release",
            "--env",
            "local",
            "--ref",
            "bad",
            "--from",
            "backup",
            "-e",
            "release_auto_rollback=true",
            "-e",
            "smoke_sse_timeout=1",
        )
    finally:
        _app_switch(box, sse=True)
    assert code == 1
    phases = _phases(summary)
    assert phases["deploy"]["status"] == "ok" and phases["smoke"]["status"] == "failed"
    assert phases["rollback"]["status"] == "ok"
    assert phases["rollback"]["result"]["code"]["method"] == "dokploy rollback"
    assert _commit(box) == "good"
    # Code only, as printed: the code went back already; the database is a human decision.
    assert summary["rollback_command"] == [
        "wfops rollback --env local",
        "ansible-playbook rollback.yml -i inventory/local.yml",
    ]
    entry = _ledger(box)[-1]
    assert (entry["status"], entry["failed_phase"], entry["ref"]) == ("failed", "smoke", "bad")
    assert entry["rollback"]["status"] == "ok"
    assert entry["previous"]["ref"] == "good" and entry["deployed"]["ref"] == "bad"
    assert entry["serving"]["ref"] == "good" and entry["rolled_back_run"] == entry["run_id"]


def test_the_printed_rollback_command_works_as_printed_and_a_failed_rollback_names_its_target(
    box: SandboxHandle,
) -> None:
    code, good = _json_run(box, "release", "--env", "local", "--ref", "good", "--from", "backup")
    assert code == 0, good
    _app_switch(box, sse=False)
    try:
        code, bad = _json_run(
            box, "release", "--env", "local", "--ref", "bad", "--from", "deploy", "-e", "smoke_sse_timeout=1"
        )
    finally:
        _app_switch(box, sse=True)
    assert code == 1 and _phases(bad)["smoke"]["status"] == "failed" and _commit(box) == "bad"
    printed = bad["rollback_command"]
    assert printed == ["wfops rollback --env local", "ansible-playbook rollback.yml -i inventory/local.yml"]
    assert "--database" not in " ".join(printed) and "--confirm" not in " ".join(printed), "code only"

    # A code rollback that fails (here: the app never reports the target in the field asked for) is recorded with
    # the ref it was returning to, and names what it expected and what the app reported.
    code, failed = _json_run(
        box,
        "rollback",
        "--env",
        "local",
        "-e",
        "rollback_health_commit_field=build.sha",
        "-e",
        "rollback_health_timeout=1",
    )
    assert code == 1
    error = _phases(failed)["rollback"]["result"]["error"]
    assert "build.sha is None, expected good" in error, error
    entry = _ledger(box)[-1]
    assert (entry["kind"], entry["status"], entry["failed_phase"], entry["ref"]) == (
        "rollback",
        "failed",
        "rollback",
        "good",
    )

    # The printed command, as printed (no terminal, no --confirm needed: the code only).
    command = printed[0].split()
    assert command[0] == "wfops"
    rolled = box.wfops(*command[1:], "--json")
    assert rolled.returncode == 0, rolled.stdout[-3000:]
    assert _commit(box) == "good"
    history = box.wfops("history", "--env", "local").stdout
    assert "* serving now: good (" in history, history


def test_a_database_rollback_restores_the_pre_release_rows_exactly(box: SandboxHandle) -> None:
    before = _checksums(box)
    code, summary = _json_run(box, "release", "--env", "local", "--ref", "rel-2", "--from", "backup")
    assert code == 0, summary
    backup_id = _phases(summary)["backup"]["result"]["id"]
    connection = box.connect()
    with connection, connection.cursor() as cursor:  # the app keeps writing after the release
        cursor.execute(
            "INSERT INTO guests (client_id, company_id, first_name)"
            " SELECT id, company_id, 'after-release' FROM clients LIMIT 3"
        )
    connection.close()
    assert _checksums(box) != before

    refused = box.wfops("rollback", "--env", "local", "--database")
    assert refused.returncode == 2 and "--confirm" in refused.stderr  # no terminal to ask on

    code, rollback = _json_run(box, "rollback", "--env", "local", "--database", "--confirm", backup_id)
    assert code == 0, rollback
    report = _phases(rollback)["rollback"]["result"]["database"]
    assert report["backup"] == backup_id
    assert report["compare"]["result"] == "ok" and report["compare"]["migration_head"]["applied"] == 23
    assert report["rows_lost"] >= 3
    assert "public.guests" in {t["table"] for t in report["lost_by_table"]}
    smoke = _phases(rollback)["smoke"]
    assert smoke["status"] == "ok" and {c["flow"][0] for c in smoke["result"]["checks"]} == {"0", "1", "8"}
    after = _checksums(box)
    # The smoke run after the rollback signs in and out again: it leaves no session behind.
    assert after == before
    connection = box.connect()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sessions")
        assert cursor.fetchone() == (0,)
    connection.close()
    backups = json.loads(box.wfops("backups", "--env", "local", "--json").stdout)["backups"]
    safety = [b for b in backups if b["id"] == report["safety_backup"]]
    assert safety and safety[0]["reason"] == "pre-rollback"


def _host_files(box: SandboxHandle) -> dict[str, tuple[int, int]]:
    """Every file and directory of the sandbox's host tree, with its size and modification time."""
    host = box.directory / "host"
    return {str(path.relative_to(host)): (path.stat().st_size, path.stat().st_mtime_ns) for path in host.rglob("*")}


def test_a_wrong_confirmation_is_refused_before_anything_is_written_on_the_host(box: SandboxHandle) -> None:
    code, release = _json_run(box, "release", "--env", "local", "--ref", "rel-3", "--from", "backup")
    assert code == 0
    backup_id = _phases(release)["backup"]["result"]["id"]
    before, commit, files = _checksums(box), _commit(box), _host_files(box)
    code, rollback = _json_run(
        box, "rollback", "--env", "local", "--database", "--backup", "latest", "--confirm", "backup-19990101-000000"
    )
    assert code == 1
    error = _phases(rollback)["rollback"]["result"]["error"]
    # The prompt's id is the backup `latest` resolved to, not the word.
    assert f"(latest is {backup_id}); to go ahead: --confirm {backup_id}" in error, error
    assert _host_files(box) == files, "no safety dump, no lock, no ledger line: nothing new on the host"
    assert _checksums(box) == before and _commit(box) == commit
    # What the wrapper can tell by itself is refused before anything runs.
    for confirm in (("--backup", backup_id, "--confirm", "backup-19990101-000000"), ("--confirm", "latest")):
        refused = box.wfops("rollback", "--env", "local", "--database", *confirm)
        assert refused.returncode == 2 and "--confirm" in refused.stderr, refused.stderr
    # On a terminal, the plan is shown and the prompt names the backup latest resolved to; a wrong answer stops.
    prompt, plan, code = _answer_the_prompt(box, "latest", ("--database", "--backup", "latest"))
    assert code == 1 and f"Type the backup id ({backup_id}) to restore it" in prompt, prompt
    assert f"backup: {backup_id} (release backup" in plan and "asked for: latest" in plan, plan
    assert "stopped; nothing was restored" in plan
    # The dry run verified the backup (its manifest records when); nothing else changed, nothing new was written.
    after = _host_files(box)
    assert set(after) == set(files) and _checksums(box) == before
    assert {path for path in files if after[path] != files[path]} <= {f"var/backups/weddingflo/{backup_id}.json"} | {
        "var/backups/weddingflo"
    }


def _answer_the_prompt(box: SandboxHandle, answer: str, args: tuple[str, ...]) -> tuple[str, str, int]:
    """wfops rollback on a terminal (a pseudo-terminal as stdin), answering its prompt: stdout, stderr, exit code."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "wfops"), "rollback", "--env", "local", *args],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=box.env,
            cwd=REPO,
        )
        os.write(controller, f"{answer}\n".encode())  # waits in the terminal until the prompt reads it
        stdout, stderr = process.communicate(timeout=300)
    finally:
        os.close(controller)
        os.close(terminal)
    return stdout, stderr, process.returncode


def test_a_second_release_is_refused_while_the_lock_is_held(box: SandboxHandle) -> None:
    lock = box.directory / "host" / "var" / "lib" / "weddingflo" / "release.lock"
    held = run_module(
        "wfops_release_lock",
        {
            "path": str(lock),
            "state": "acquired",
            "holder": {"kind": "release", "run_id": "other-run", "ref": "r9", "who": "alice"},
        },
    )
    assert module_result(held)["held"] is True
    code, summary = _json_run(box, "release", "--env", "local", "--ref", "r10", "--from", "deploy", *APP_FLOWS)
    assert code == 1
    # The holder's process (an ad-hoc ansible) has ended, so the lock is refused as stale: held all the same.
    assert "held by alice (release of r9, run other-run" in summary["error"]
    assert _commit(box) == "previous"
    status = box.wfops("lock", "status", "--env", "local")
    assert "held by alice - release of r9, run other-run" in status.stdout
    assert box.wfops("lock", "release", "--env", "local").returncode == 2
    released = box.wfops("lock", "release", "--env", "local", "--force")
    assert released.returncode == 0 and "released the lock of alice" in released.stdout
    code, _ = _json_run(box, "release", "--env", "local", "--ref", "r10", "--from", "deploy", *APP_FLOWS)
    assert code == 0


def test_two_releases_at_once_one_is_refused(box: SandboxHandle) -> None:
    command = [
        str(REPO / ".venv" / "bin" / "wfops"),
        "release",
        "--env",
        "local",
        "--from",
        "deploy",
        "--json",
        *APP_FLOWS,
    ]
    first = subprocess.Popen(
        [*command, "--ref", "a"], env=box.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    second = subprocess.Popen(
        [*command, "--ref", "b"], env=box.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    summaries = [json.loads(p.communicate(timeout=300)[0]) for p in (first, second)]
    assert sorted(s["status"] for s in summaries) == ["failed", "successful"]
    refused = next(s for s in summaries if s["status"] == "failed")
    assert "the release lock is held by" in refused["error"], refused["error"]
    assert len([e for e in _ledger(box) if e["kind"] == "release"]) == 1


# One real check (vitest) keeps preflight honest and short: a resumed release needs a preflight on record.
QUICK_PREFLIGHT = ("-e", 'preflight_commands=[{"name": "tests", "argv": ["npx", "--no-install", "vitest", "run"]}]')
RESUME_RULE = ("-e", "release_check_resume=true")


def test_a_resumed_release_carries_on_the_interrupted_one_and_its_backup(box: SandboxHandle) -> None:
    code, failed = _json_run(
        box, "release", "--env", "local", "--ref", "r4", *QUICK_PREFLIGHT,
        "-e", "deploy_push_argv=[]", "-e", "deploy_health_timeout=1",
    )  # fmt: skip
    assert code == 1 and _phases(failed)["deploy"]["status"] == "failed"
    backup_id = _phases(failed)["backup"]["result"]["id"]
    backups_before = len(json.loads(box.wfops("backups", "--env", "local", "--json").stdout)["backups"])

    code, refused = _json_run(box, "release", "--env", "local", "--ref", "r5", "--from", "deploy", *RESUME_RULE)
    assert code == 1 and "resumes the last release on this host, which is r4" in refused["error"], refused["error"]
    code, refused = _json_run(box, "release", "--env", "local", "--ref", "r4", "--from", "smoke", *RESUME_RULE)
    assert code == 1 and "did not finish every phase before smoke (deploy failed)" in refused["error"]

    code, resumed = _json_run(box, "release", "--env", "local", "--ref", "r4", "--from", "deploy", *RESUME_RULE)
    assert code == 0, resumed
    phases = _phases(resumed)
    for name in ("preflight", "backup", "migrate", "normalize"):
        assert phases[name]["result"]["reason"] == "not re-run: the release resumed after it"
    assert phases["deploy"]["status"] == "ok" and phases["smoke"]["status"] == "ok"
    assert len(json.loads(box.wfops("backups", "--env", "local", "--json").stdout)["backups"]) == backups_before
    assert _commit(box) == "r4"
    entry = _ledger(box)[-1]
    assert (entry["backup_id"], entry["resumed_from"]) == (backup_id, failed["run_id"])
    # So the resumed release's database rollback restores the backup its first run took.
    code, rollback = _json_run(box, "rollback", "--env", "local", "--database", "--confirm", backup_id)
    assert code == 0, rollback
    assert _phases(rollback)["rollback"]["result"]["database"]["backup"] == backup_id


def test_backup_latest_restores_the_newest_release_backup_not_a_safety_backup(box: SandboxHandle) -> None:
    code, release = _json_run(box, "release", "--env", "local", "--ref", "rel-l", "--from", "backup")
    assert code == 0, release
    backup = _phases(release)["backup"]["result"]
    manifest = json.loads(Path(backup["manifest"]).read_text())
    code, dry = _json_run(box, "rollback", "--env", "local", "--database", "--backup", "latest", "--check")
    assert code == 0, dry
    summary = _phases(dry)["rollback"]["result"]["summary"]
    assert summary.startswith("code would go back to previous (dokploy rollback); would restore " + backup["id"]), (
        summary
    )
    assert _phases(dry)["rollback"]["result"]["database"]["safety_backup"] is None
    for attempt, extra in enumerate(((), ("-e", "rollback_code=false"))):
        # Each rollback takes a safety backup first: from the second on, the newest backup is a safety one.
        _insert_verification(box, f"after-backup-{attempt}")
        code, rollback = _json_run(
            box, "rollback", "--env", "local", "--database", "--backup", "latest", "--confirm", backup["id"], *extra
        )
        assert code == 0, rollback
        report = _phases(rollback)["rollback"]["result"]["database"]
        assert (report["backup"], report["asked"], report["backup_reason"]) == (backup["id"], "latest", "release")
        assert report["compare"]["result"] == "ok"
        assert _verifications(box, f"after-backup-{attempt}") == 0, "the row written after the backup is gone"
        safety = [b for b in _backups(box) if b["id"] == report["safety_backup"]]
        assert safety and safety[0]["reason"] == "pre-rollback", "the safety backup is kept and named"
        assert f"safety backup {report['safety_backup']}" in _phases(rollback)["rollback"]["result"]["summary"]
    counts = _row_counts(box)
    # The smoke check after each rollback signs in: its session is the one row newer than the backup.
    assert {t: n for t, n in counts.items() if t != "public.sessions"} == {
        t: n for t, n in manifest["row_counts"].items() if t != "public.sessions"
    }
    assert _ledger(box)[-1]["backup_id"] == backup["id"]
    history = box.wfops("history", "--env", "local").stdout
    assert f"restored {backup['id']}" in history


def _insert_verification(box: SandboxHandle, identifier: str) -> None:
    connection = box.connect()
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO verifications (id, identifier, value, expires_at)"
            " VALUES (%s, %s, 'x', now() + interval '1 day')",
            (identifier, identifier),
        )
    connection.close()


def _verifications(box: SandboxHandle, identifier: str) -> int:
    connection = box.connect()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM verifications WHERE identifier = %s", (identifier,))
        (count,) = cursor.fetchone()
    connection.close()
    return count


def _backups(box: SandboxHandle) -> list[dict]:
    return json.loads(box.wfops("backups", "--env", "local", "--json").stdout)["backups"]


def _row_counts(box: SandboxHandle) -> dict[str, int]:
    return {table: int(value.split(":")[0]) for table, value in table_checksums(box).items()}


def test_the_monitor_flags_planted_drift_and_legacy_values_and_passes_on_a_clean_release(box: SandboxHandle) -> None:
    code, _ = _json_run(box, "release", "--env", "local", "--ref", "r5", "--from", "backup")
    assert code == 0
    code, clean = _json_run(box, "monitor", "--env", "local")
    assert code == 0, clean
    assert {s["status"] for s in clean["phases"][0]["result"]["signals"]} <= {"ok"}
    connection = box.connect()
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "UPDATE clients SET guest_count = guest_count + 1 WHERE id = (SELECT id FROM clients"
            " WHERE deleted_at IS NULL ORDER BY id LIMIT 1)"
        )
        cursor.execute(
            "UPDATE guests SET rsvp_status = 'attending' WHERE id = (SELECT id FROM guests ORDER BY id LIMIT 1)"
        )
    connection.close()
    code, flagged = _json_run(box, "monitor", "--env", "local")
    assert code == 1
    signals = {s["name"]: s for s in flagged["phases"][0]["result"]["signals"]}
    assert signals["client stats drift"]["status"] == "fail"
    assert "wfops run stats-repair" in signals["client stats drift"]["action"]
    assert signals["enum display issues"]["status"] == "fail"
    assert "attending" in signals["enum display issues"]["evidence"]
    assert signals["500 errors"]["status"] == "ok"


def test_preflight_stops_the_release_on_a_type_error_or_a_shrunken_suite(box: SandboxHandle, tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(REPO / "sandbox-app", app, ignore=shutil.ignore_patterns("dist", "node_modules"))
    (app / "node_modules").symlink_to(REPO / "sandbox-app" / "node_modules")
    (app / "src" / "lib" / "broken.ts").write_text("export const count: number = 'not a number';\n")
    env = {**box.env, "WFOPS_APP_DIR": str(app)}
    result = run_wfops("release", "--env", "local", "--ref", "r6", "--json", env=env)
    summary = json.loads(result.stdout)
    phases = _phases(summary)
    assert result.returncode == 1 and phases["preflight"]["status"] == "failed"
    checks = {c["name"]: c for c in phases["preflight"]["result"]["checks"]}
    assert checks["typescript"]["rc"] != 0 and checks["tests"]["rc"] == 0
    assert phases["backup"]["result"]["reason"] == "not run: preflight failed"
    shrunk = run_wfops(
        "run",
        "preflight",
        "--env",
        "local",
        "-e",
        "preflight_min_tests=500",
        "--json",
        env={**box.env, "WFOPS_APP_DIR": str(REPO / "sandbox-app")},
    )
    phase = json.loads(shrunk.stdout)["phases"][0]
    assert shrunk.returncode == 1 and "fewer than preflight_min_tests=500" in phase["result"]["error"]
    assert app.is_dir()
