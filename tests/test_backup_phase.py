"""The backup phase as Ansible runs it: install, back up, verify, prune, report; dry run; failure stops the release."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SandboxHandle, start_sandbox, stop_sandbox

ROLE = REPO / "roles" / "backup"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    handle = start_sandbox(tmp_path_factory.mktemp("backup-phase"), guests=2000)
    yield handle
    stop_sandbox(handle)


def _host(box: SandboxHandle) -> Path:
    return box.directory / "host"


def _backups(box: SandboxHandle) -> list[Path]:
    directory = _host(box) / "var" / "backups" / "weddingflo"
    return sorted(directory.glob("backup-*.dump")) if directory.exists() else []


def test_check_mode_reports_the_plan_and_writes_nothing(box: SandboxHandle) -> None:
    result = box.wfops("run", "backup", "--env", "local", "--check", "--json")
    assert result.returncode == 0, result.stderr
    phase = json.loads(result.stdout)["phases"][0]
    assert phase["status"] == "ok"
    assert phase["result"]["dry_run"] is True
    assert phase["result"]["estimated_size_bytes"] > 0 and phase["result"]["free_bytes"] > 0
    assert phase["result"]["backup_dir"].startswith(str(box.directory))
    assert not _host(box).exists(), "check mode installed or wrote something"


def test_the_phase_installs_the_tool_backs_up_verifies_prunes_and_reports(box: SandboxHandle) -> None:
    result = box.wfops("run", "backup", "--env", "local", "-e", "release_ref=abc123", "--json")
    assert result.returncode == 0, result.stderr
    phase = json.loads(result.stdout)["phases"][0]
    assert phase["status"] == "ok"
    report = phase["result"]
    archives = _backups(box)
    assert [a.stem for a in archives] == [report["id"]]
    assert report["size_bytes"] == archives[0].stat().st_size
    assert report["verification"] == "ok" and report["pruned"] == []
    assert report["release_ref"] == "abc123"
    env_file = _host(box) / "etc" / "weddingflo-backup" / "backup.env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    tool = _host(box) / "usr" / "local" / "bin" / "weddingflo-backup"
    listed = subprocess.run(
        [str(tool), "--env-file", str(env_file), "list", "--json"], capture_output=True, text=True, check=True
    )
    assert json.loads(listed.stdout)[0]["id"] == report["id"]
    # The password is in the 0600 env file and nowhere else the run produced.
    password = box.ops_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    summary_id = json.loads(result.stdout)["run_id"]
    produced = [p for p in (REPO / "runs" / summary_id).rglob("*") if p.is_file()]
    produced += [p for p in (_host(box) / "var").rglob("*") if p.is_file() and p.suffix != ".dump"]
    for path in produced:
        assert password not in path.read_text(errors="replace"), path
    assert password not in result.stdout + result.stderr


def _host_tasks_run(run_id: str) -> list[str]:
    """The backup role's tasks that ran (not skipped) in a run, from ansible-runner's events."""
    events = [json.loads(p.read_text()) for p in (REPO / "runs" / run_id).rglob("job_events/*.json")]
    return [
        e["event_data"]["task"]
        for e in events
        if e["event"] == "runner_on_ok" and e["event_data"].get("role") == "backup"
    ]


def test_the_tool_and_settings_are_installed_again_only_when_they_differ(box: SandboxHandle) -> None:
    env_file = _host(box) / "etc" / "weddingflo-backup" / "backup.env"
    tool = _host(box) / "usr" / "local" / "bin" / "weddingflo-backup"
    first = box.wfops("run", "backup", "--env", "local", "--json")
    assert first.returncode == 0, first.stderr
    unchanged = box.wfops("run", "backup", "--env", "local", "--json")
    assert unchanged.returncode == 0, unchanged.stderr
    installs = {task["name"] for task in yaml.safe_load((ROLE / "tasks" / "install_files.yml").read_text())}
    assert not installs & set(_host_tasks_run(json.loads(unchanged.stdout)["run_id"]))

    env_file.chmod(0o644)
    tool.write_text(tool.read_text() + "# edited on the host\n")
    repaired = box.wfops("run", "backup", "--env", "local", "--json")
    assert repaired.returncode == 0, repaired.stderr
    assert installs <= set(_host_tasks_run(json.loads(repaired.stdout)["run_id"])) | {"Create the backup system user"}
    assert env_file.stat().st_mode & 0o777 == 0o600
    assert tool.read_bytes() == (REPO / "files" / "weddingflo_backup.py").read_bytes()


SCHEDULED = ("-e", "backup_schedule_enabled=true", "-e", "backup_schedule_on_calendar=*-*-* 02:30:00")
OWNERS = ("-e", "wfops_host_backup_user=nobody", "-e", "backup_group=nogroup")


def test_scheduled_units_are_valid_for_systemd_and_installed_again_only_when_they_differ(box: SandboxHandle) -> None:
    result = box.wfops("run", "backup", "--env", "local", *SCHEDULED, *OWNERS, "--json")
    assert result.returncode == 0, result.stderr
    unit_dir = _host(box) / "etc" / "systemd" / "system"
    service, timer = unit_dir / "weddingflo-backup.service", unit_dir / "weddingflo-backup.timer"
    installing = {task["name"] for task in yaml.safe_load((ROLE / "tasks" / "schedule.yml").read_text())}
    assert installing & set(_host_tasks_run(json.loads(result.stdout)["run_id"]))
    again = box.wfops("run", "backup", "--env", "local", *SCHEDULED, *OWNERS, "--json")
    assert again.returncode == 0, again.stderr
    assert not installing & set(_host_tasks_run(json.loads(again.stdout)["run_id"]))
    good = timer.read_text()
    timer.write_text(good.replace("02:30:00", "03:00:00"))
    repaired = box.wfops("run", "backup", "--env", "local", *SCHEDULED, *OWNERS, "--json")
    assert repaired.returncode == 0, repaired.stderr
    assert timer.read_text() == good
    text = service.read_text()
    assert "User=nobody" in text and "--reason scheduled" in text and " prune" in text
    assert "OnCalendar=*-*-* 02:30:00" in timer.read_text() and "Persistent=true" in timer.read_text()
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(service), str(timer)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    broken = unit_dir / "broken" / "weddingflo-backup.timer"
    broken.parent.mkdir()
    broken.write_text(timer.read_text().replace("OnCalendar=*-*-* 02:30:00", "OnCalendar=not-a-time"))
    rejected = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(broken)], capture_output=True, text=True, check=False
    )
    assert rejected.returncode != 0


def test_the_release_stops_before_migrate_when_the_backup_fails(tmp_path: Path) -> None:
    handle = start_sandbox(tmp_path / "down", guests=200)
    try:
        # The database is out of reach (a stopped sandbox is refused before any phase, exit 3).
        url = handle.directory / "database_url"
        port = json.loads((handle.directory / "state.json").read_text())["port"]
        url.write_text(url.read_text().replace(f":{port}/", ":1/"))
        result = handle.wfops("release", "--env", "local", "--ref", "abc123", "--json")
        assert result.returncode == 1
        phases = {p["name"]: p for p in json.loads(result.stdout)["phases"]}
        assert phases["backup"]["status"] == "failed"
        assert "cannot reach the database weddingflo" in phases["backup"]["result"]["error"]
        assert phases["migrate"]["status"] == "skipped"
        assert phases["migrate"]["result"]["reason"] == "not run: backup failed"
        assert "▶ migrate" not in result.stderr
    finally:
        stop_sandbox(handle)
