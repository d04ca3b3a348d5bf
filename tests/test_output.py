"""What an SRE reads at 3 a.m.: the live view shows the phases and the tasks that ran, nothing skipped and no
check-mode wording in a real run; a guard's error once; the monitor's eight signals each with its evidence."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import SandboxHandle, run_wfops
from unit_project import copy_project, unit_env
from wfops.plugin_code import load

MIGRATE_ROLE = """---
- name: Verify and apply the pending migrations (a plan only, in check mode)
  ansible.builtin.command: "true"
  check_mode: false
  changed_when: false

- name: STOP - a pre-deployment check failed
  ansible.builtin.fail:
    msg: never
  when: false

- name: Keep a fact (bookkeeping)
  ansible.builtin.set_fact:
    _unit_fact: 1

- name: Report
  ansible.builtin.set_stats:
    data: {wfops_migrate: {status: ok, duration_s: 0.1}}
    per_host: false
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = copy_project(tmp_path / "project")
    (root / "roles" / "migrate" / "tasks" / "main.yml").write_text(MIGRATE_ROLE)
    return root


def test_the_live_view_shows_the_tasks_that_ran_and_check_mode_words_only_in_a_dry_run(project: Path) -> None:
    real = run_wfops("run", "migrate", "--env", "unit", env=unit_env(project))
    assert real.returncode == 0, real.stderr
    assert "▶ migrate (runbook phase 3) started" in real.stderr and "✓ migrate finished: ok" in real.stderr
    assert re.search(r"· \[migrate \d+s\] Verify and apply the pending migrations\n", real.stderr), real.stderr
    for hidden in ("check mode", "STOP", "Keep a fact", "Report", "Validating arguments"):
        assert hidden not in real.stderr, hidden
    dry = run_wfops("run", "migrate", "--env", "unit", "--check", env=unit_env(project))
    assert dry.returncode == 0, dry.stderr
    assert "Verify and apply the pending migrations (a plan only, in check mode)" in dry.stderr
    assert "STOP" not in dry.stderr


def test_a_guard_error_is_said_once(project: Path) -> None:
    settings = project / "group_vars" / "unit" / "vars.yml"
    settings.write_text(settings.read_text().replace("wfops_database_url:", "unused_url:"))
    result = run_wfops("release", "--env", "unit", "--ref", "r1", env=unit_env(project))
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert output.count("wfops_database_url is not set for unit") == 1, output
    assert output.count("not run: the run stopped before it (see the error)") == 6


def test_the_monitor_shows_each_of_the_eight_signals_with_its_evidence(shared_sandbox: SandboxHandle) -> None:
    result = shared_sandbox.wfops("monitor", "--env", "local")
    # The sandbox holds the previous release's legacy data: some signals fail, and the command says so.
    assert result.returncode in (0, 1), result.stderr
    for dependency in ("wfops_pg", "wfops_http", "wfops_invariants", "wfops_smoke"):
        load(dependency)  # wfops_monitor imports them as ansible.module_utils.<name>
    names = list(load("wfops_monitor").ACTIONS)
    assert len(names) == 8
    block = result.stdout[result.stdout.index("monitor signals:") :]
    for name in names:
        line = re.search(rf"^  (OK|WARN|FAIL)\s+{re.escape(name)}\s+(\S.*)$", block, re.MULTILINE)
        assert line, f"{name} missing from:\n{block}"
        if line.group(1) != "OK":
            assert " -> " in line.group(2), f"{name}: a signal that is not ok names its action"
