"""The backup phase as Ansible runs it: install, back up, verify, prune, report; dry run; failure stops the release."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from conftest import REPO, VENV_BIN, SandboxHandle, start_sandbox, stop_sandbox
from webhook_receiver import start_webhook

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
    # A backup run on its own is manual, even with a ref: only a release takes (and pins) a release backup.
    assert report["release_ref"] == "abc123" and report["reason"] == "manual"
    assert json.loads(Path(report["manifest"]).read_text())["pinned"] is False
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
OWNERS = ("-e", "wfops_host_backup_user=daemon", "-e", "backup_group=daemon")


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
    assert "User=daemon" in text and "--reason scheduled" in text and " prune" in text
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


# What every weddingflo-backup service runs under (tasks/schedule.yml's units; _hardening.j2).
HARDENING = (
    "PrivateDevices=true",
    "ProtectKernelTunables=true",
    "ProtectKernelModules=true",
    "ProtectKernelLogs=true",
    "ProtectControlGroups=true",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "CapabilityBoundingSet=\n",
    "SystemCallFilter=@system-service",
    "NoNewPrivileges=true",
    "ProtectSystem=strict",
)
# systemd-analyze security's exposure, 0-100 (it prints a tenth of it): the units score 20 ("2.0 OK"), the units
# before the hardening 85 ("8.5 EXPOSED").
EXPOSURE_LIMIT = "25"


def _systemd_analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, check=False)


def test_the_scheduled_units_are_hardened_accepted_by_systemd_and_report_their_failures(box: SandboxHandle) -> None:
    drill = ("-e", "backup_drill_schedule_enabled=true", "-e", "backup_drill_timeout=90min")
    owners = ("-e", "wfops_host_backup_user=daemon", "-e", "backup_group=daemon")
    result = box.wfops("run", "backup", "--env", "local", *SCHEDULED, *drill, *owners, "--json")
    assert result.returncode == 0, result.stderr
    unit_dir = _host(box) / "etc" / "systemd" / "system"
    units = sorted(unit_dir.glob("weddingflo-backup*"))
    assert [unit.name for unit in units] == [
        "weddingflo-backup-drill.service",
        "weddingflo-backup-drill.timer",
        "weddingflo-backup-notify@.service",
        "weddingflo-backup.service",
        "weddingflo-backup.timer",
    ]

    verified = _systemd_analyze("verify", "--man=no", *map(str, units))
    # systemd-analyze exits 0 on a setting it cannot parse and only says "ignoring": nothing may be said at all.
    assert verified.returncode == 0 and verified.stderr == "", verified.stderr

    services = {unit.name: unit.read_text() for unit in units if unit.suffix == ".service"}
    for name, text in services.items():
        assert all(setting in text for setting in HARDENING), name
        assert "TimeoutStartSec=" in text, name
        exposure = _systemd_analyze("security", "--offline=true", f"--threshold={EXPOSURE_LIMIT}", str(unit_dir / name))
        assert exposure.returncode == 0, exposure.stdout[-600:]
    for name in ("weddingflo-backup.service", "weddingflo-backup-drill.service"):
        assert "OnFailure=weddingflo-backup-notify@%n.service" in services[name]
    assert "TimeoutStartSec=6h" in services["weddingflo-backup.service"]
    assert "TimeoutStartSec=90min" in services["weddingflo-backup-drill.service"]
    assert "create --reason scheduled --verify" in services["weddingflo-backup.service"], "verified as a release's"
    # The control: the same unit without its sandbox is what the exposure limit refuses.
    bare = unit_dir / "bare" / "weddingflo-backup.service"
    bare.parent.mkdir()
    bare.write_text(
        "\n".join(
            line
            for line in services["weddingflo-backup.service"].splitlines()
            if "=" not in line or line.split("=")[0] in ("Description", "Type", "User", "Group", "ExecStart")
        )
    )
    exposed = _systemd_analyze("security", "--offline=true", f"--threshold={EXPOSURE_LIMIT}", str(bare))
    assert exposed.returncode != 0, exposed.stdout[-600:]

    # What OnFailure= runs when the backup hangs past TimeoutStartSec: systemd's MONITOR_* variables, %i = the unit.
    notify = next(
        line for line in services["weddingflo-backup-notify@.service"].splitlines() if line.startswith("ExecStart=")
    )
    command = notify.removeprefix("ExecStart=").replace("%i", "weddingflo-backup.service").split()
    hook, server = start_webhook()
    try:
        monitor = {"MONITOR_SERVICE_RESULT": "timeout", "MONITOR_EXIT_CODE": "killed", "MONITOR_EXIT_STATUS": "TERM"}
        posted = subprocess.run(
            command, env={**box.env, **monitor, "NOTIFY_WEBHOOK_URL": hook.url}, capture_output=True, text=True
        )
    finally:
        server.shutdown()
    assert posted.returncode == 0, posted.stderr
    assert hook.events() == ["unit-failed"]
    assert (
        "weddingflo-backup.service failed (timeout: killed TERM); see journalctl -u weddingflo-backup.service"
        in (hook.received[0]["text"])
    )


def _playbook(box: SandboxHandle, *extra: str) -> subprocess.CompletedProcess[str]:
    """ansible-playbook itself: its `-e key=value` gives every value as a string, "false" included."""
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "playbooks/backup.yml", *extra],
        cwd=REPO,
        env={**box.env, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_string_booleans_from_the_command_line_mean_what_they_say(tmp_path: Path) -> None:
    handle = start_sandbox(tmp_path / "strings", guests=200)
    try:
        switches = [
            *("-e", "backup_verify=false", "-e", "backup_prune=false", "-e", "backup_schedule_enabled=true"),
            *("-e", "backup_drill_schedule_enabled=false", "-e", "backup_offsite_enabled=false"),
            *("-e", "backup_become=false", "-e", "backup_manage_user=false", "-e", "backup_verify_restore_drill=false"),
            # Retention that would delete every backup but the newest, were prune not off.
            *("-e", "backup_retention_days=0", "-e", "backup_retention_min_count=1"),
        ]
        for _ in range(2):
            done = _playbook(handle, *switches)
            assert done.returncode == 0, done.stdout[-3000:]
        archives = _backups(handle)
        assert len(archives) == 2, "backup_prune=false: nothing pruned"
        manifest = json.loads(archives[-1].with_suffix(".json").read_text())
        assert manifest["verification"]["kind"] == "toc", "backup_verify=false: not verified again"
        assert (manifest["reason"], manifest["release_ref"], manifest["pinned"]) == ("manual", None, False)
        units = _host(handle) / "etc" / "systemd" / "system"
        assert sorted(p.name for p in units.iterdir()) == [
            "weddingflo-backup-notify@.service",
            "weddingflo-backup.service",
            "weddingflo-backup.timer",
        ]
        assert "OFFSITE_ENABLED=false" in (_host(handle) / "etc" / "weddingflo-backup" / "backup.env").read_text()

        refused = _playbook(handle, "-e", "backup_reason=release")
        assert refused.returncode != 0 and "a release backup names the release it protects" in refused.stdout
        pinned = _playbook(handle, "-e", "backup_reason=release", "-e", "release_ref=r9")
        assert pinned.returncode == 0, pinned.stdout[-3000:]
        newest = json.loads(_backups(handle)[-1].with_suffix(".json").read_text())
        assert (newest["reason"], newest["release_ref"], newest["pinned"]) == ("release", "r9", True)
    finally:
        stop_sandbox(handle)


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
