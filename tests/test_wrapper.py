"""The wfops wrapper: phases in, summary.json / junit.xml / exit code out."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from conftest import REPO, run_wfops
from unit_project import FAILING_ROLE, copy_project, unit_env
from wfops.phases import PHASES

OK_ROLE = """---
- name: Do the work
  ansible.builtin.set_stats:
    data:
      wfops_backup:
        status: ok
        duration_s: 1.5
        backup_id: backup-20260101-000000
        check: "{{ ansible_check_mode }}"
    per_host: false
"""

SKIPPED_ROLE = """---
- name: Report that this phase is not implemented yet
  ansible.builtin.set_stats:
    data:
      {key}:
        status: skipped
        reason: not implemented yet
        duration_s: 0
    per_host: false
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project whose backup role succeeds and whose migrate role fails."""
    root = copy_project(tmp_path / "project")
    # Every phase role becomes a stand-in that reports skipped, so the wrapper is tested on its own.
    for phase in PHASES:
        (root / "roles" / phase.role / "tasks" / "main.yml").write_text(SKIPPED_ROLE.format(key=phase.stats_key))
    (root / "roles" / "backup" / "tasks" / "main.yml").write_text(OK_ROLE)
    (root / "roles" / "migrate" / "tasks" / "main.yml").write_text(FAILING_ROLE)
    return root


def _wfops(project: Path, *args: str, extra_env: dict[str, str] | None = None):
    return run_wfops(*args, env=unit_env(project, extra_env))


def _summary(project: Path, stdout: str) -> dict:
    summary = json.loads(stdout)
    on_disk = json.loads((project / "runs" / summary["run_id"] / "summary.json").read_text())
    assert on_disk == summary
    return summary


def _statuses(summary: dict) -> dict[str, str]:
    return {phase["name"]: phase["status"] for phase in summary["phases"]}


def test_release_stops_at_the_failing_phase_and_exits_non_zero(project: Path) -> None:
    result = _wfops(project, "release", "--env", "unit", "--ref", "abc123", "--json")
    assert result.returncode == 1, result.stderr
    summary = _summary(project, result.stdout)
    assert summary["status"] == "failed"
    assert summary["env"] == "unit" and summary["release_ref"] == "abc123"
    assert _statuses(summary) == {
        "preflight": "skipped",
        "backup": "ok",
        "migrate": "failed",
        "normalize": "skipped",
        "deploy": "skipped",
        "smoke": "skipped",
    }
    by_name = {phase["name"]: phase for phase in summary["phases"]}
    assert by_name["preflight"]["result"]["reason"] == "not implemented yet"
    assert by_name["backup"]["result"]["backup_id"] == "backup-20260101-000000"
    assert by_name["backup"]["duration_s"] == 1.5
    assert "migration 0027 failed half-way" in by_name["migrate"]["result"]["error"]
    assert by_name["normalize"]["result"]["reason"] == "not run: migrate failed"
    # Progress goes to stderr so stdout is only the JSON.
    assert "▶ backup (runbook phase 2) started" in result.stderr

    junit = ElementTree.parse(project / "runs" / summary["run_id"] / "junit.xml").getroot()
    assert (junit.get("tests"), junit.get("failures"), junit.get("skipped")) == ("6", "1", "4")
    failure = junit.find("testcase[@name='migrate']/failure")
    assert failure is not None and "0027" in failure.get("message", "")


def test_a_successful_phase_exits_zero_with_its_facts(project: Path) -> None:
    result = _wfops(project, "run", "backup", "--env", "unit", "--json")
    assert result.returncode == 0, result.stderr
    summary = _summary(project, result.stdout)
    assert summary["status"] == "successful"
    assert summary["phases"] == [
        {
            "name": "backup",
            "status": "ok",
            "duration_s": 1.5,
            "result": {"backup_id": "backup-20260101-000000", "check": False},
        }
    ]


def test_a_phase_not_built_yet_is_reported_skipped_never_ok(project: Path) -> None:
    result = _wfops(project, "run", "preflight", "stats-repair", "--env", "unit", "--json")
    assert result.returncode == 0, result.stderr
    summary = _summary(project, result.stdout)
    assert _statuses(summary) == {"preflight": "skipped", "stats-repair": "skipped"}
    assert {p["result"]["reason"] for p in summary["phases"]} == {"not implemented yet"}


def test_run_stops_after_a_failed_phase(project: Path) -> None:
    result = _wfops(project, "run", "migrate", "backup", "--env", "unit", "--json")
    assert result.returncode == 1
    summary = _summary(project, result.stdout)
    assert _statuses(summary) == {"migrate": "failed", "backup": "skipped"}
    assert not (project / "runs" / summary["run_id"] / "artifacts" / "02-backup").exists()


def test_check_mode_reaches_the_roles(project: Path) -> None:
    result = _wfops(project, "run", "backup", "--env", "unit", "--check", "--json")
    assert result.returncode == 0, result.stderr
    summary = _summary(project, result.stdout)
    assert summary["check_mode"] is True
    assert summary["phases"][0]["result"]["check"] is True


def test_release_from_a_phase_does_not_rerun_the_earlier_ones(project: Path) -> None:
    result = _wfops(project, "release", "--env", "unit", "--ref", "abc123", "--from", "normalize", "--json")
    assert result.returncode == 0, result.stderr
    summary = _summary(project, result.stdout)
    by_name = {phase["name"]: phase for phase in summary["phases"]}
    for name in ("preflight", "backup", "migrate"):
        assert by_name[name]["result"]["reason"] == "not re-run: the release resumed after it"
    assert "▶ migrate" not in result.stderr and "▶ normalize" in result.stderr


def test_the_table_is_printed_without_json(project: Path) -> None:
    result = _wfops(project, "run", "backup", "--env", "unit")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert any(line.startswith("backup") and " ok " in line for line in lines)
    assert "result: SUCCESSFUL" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "nonsense", "--env", "unit"), "unknown phase 'nonsense'"),
        (("release", "--env", "unit", "--ref", "x", "--from", "monitor"), "not a release phase"),
        (("release", "--env", "unit", "--ref", "x", "--from", "nope"), "unknown phase 'nope'"),
        (
            ("run", "backup", "--env", "unit", "-e", "database_url=postgres://u:p@h/d"),
            "secrets are not accepted",
        ),
        (("run", "backup", "--env", "unit", "-e", "novalue"), "expected key=value"),
        (("run", "backup", "--env", "moon"), "invalid choice: 'moon'"),
        (("run", "backup", "--env", "unit", "-e", "notify_webhook_url=https://hooks.example/T0/B0/x"), "secrets are"),
    ],
)
def test_bad_input_exits_2_before_anything_runs(project: Path, args: tuple[str, ...], message: str) -> None:
    result = _wfops(project, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (project / "runs").exists()


def test_secrets_in_the_environment_never_reach_the_run_artifacts(project: Path) -> None:
    sentinel = "Sentinel-Passw0rd-4f1c"
    result = _wfops(
        project,
        "release",
        "--env",
        "unit",
        "--ref",
        "abc",
        "--json",
        extra_env={"DATABASE_URL": f"postgresql://u:{sentinel}@db:5432/x", "DOKPLOY_API_KEY": sentinel},
    )
    summary = json.loads(result.stdout)
    assert sentinel not in result.stdout + result.stderr
    run_dir = project / "runs" / summary["run_id"]
    files = [path for path in run_dir.rglob("*") if path.is_file()]
    assert any(path.name == "command" for path in files)
    for path in files:
        assert sentinel not in path.read_text(errors="replace"), path


def test_phases_lists_all_nine_in_runbook_order() -> None:
    result = run_wfops("phases", "--json")
    assert result.returncode == 0
    every = json.loads(result.stdout)
    phases = [p for p in every if not p["auxiliary"]]
    assert [p["name"] for p in every if p["auxiliary"]] == ["verify", "drill"]
    assert [p["name"] for p in phases] == [
        "preflight",
        "backup",
        "migrate",
        "normalize",
        "deploy",
        "smoke",
        "monitor",
        "rollback",
        "stats-repair",
    ]
    assert [p["runbook_number"] for p in phases] == list(range(1, 10))
    for phase in every:
        assert (REPO / phase["playbook"]).is_file()
        assert (REPO / "roles" / phase["role"] / "meta" / "argument_specs.yml").is_file()
