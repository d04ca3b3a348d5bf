"""wfops's exit codes: one table (src/wfops/exits.py), shown by --help and the README, and a scenario per code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, VENV_BIN, SandboxHandle, run_wfops
from unit_project import FAILING_ROLE, copy_project, ok_role, replace_role, start_wfops, unit_env
from wfops.exits import EXIT_CODES, Exit, render_markdown

SLEEPING_ROLE = """---
- name: Apply the pending migrations (a long statement)
  ansible.builtin.command: sleep 317
  changed_when: true
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = copy_project(tmp_path / "project")
    for role in ("preflight", "backup", "normalize", "deploy", "smoke"):
        replace_role(root, role, ok_role(f"wfops_{role}"))
    replace_role(root, "migrate", FAILING_ROLE)
    return root


def test_the_readme_shows_the_table_the_code_exits_with() -> None:
    assert render_markdown() in (REPO / "README.md").read_text()
    help_text = run_wfops("--help").stdout
    assert all(f"{int(code):>3}  " in help_text for code in EXIT_CODES)


def test_0_every_phase_ok(project: Path) -> None:
    assert run_wfops("run", "backup", "--env", "unit", env=unit_env(project)).returncode == Exit.OK == 0


def test_1_a_phase_failed(project: Path) -> None:
    result = run_wfops("run", "migrate", "--env", "unit", env=unit_env(project))
    assert result.returncode == Exit.FAILED == 1
    assert "migration 0027 failed half-way" in result.stdout


def test_1_a_guard_stopped_the_run(project: Path) -> None:
    (project / "group_vars" / "unit" / "vars.yml").write_text(
        (project / "group_vars" / "unit" / "vars.yml").read_text().replace("wfops_database_url:", "unused_url:")
    )
    result = run_wfops("run", "backup", "--env", "unit", env=unit_env(project))
    assert result.returncode == 1
    assert "wfops_database_url is not set for unit" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "nonsense", "--env", "unit"), "unknown phase 'nonsense'"),
        (("release", "--env", "unit", "--ref", "x", "--from", "monitor"), "not a release phase"),
        (("run", "backup", "--env", "moon"), "invalid choice: 'moon'"),
        (("run", "backup", "--env", "unit", "-e", "backup_offsite_crypt_salt=x"), "secrets are not accepted"),
    ],
)
def test_2_bad_input(project: Path, args: tuple[str, ...], message: str) -> None:
    result = run_wfops(*args, env=unit_env(project))
    assert result.returncode == Exit.USAGE == 2
    assert message in result.stderr
    assert not (project / "runs").exists()


@pytest.mark.parametrize("command", [("run", "deploy"), ("run", "migrate"), ("release", "--ref", "")])
def test_2_staging_without_a_ref(command: tuple[str, ...]) -> None:
    """A ref is required outside the sandbox: the guard refuses before any phase, and wfops exits 2."""
    started = time.monotonic()
    result = run_wfops(*command, "--env", "staging", "--json")
    assert result.returncode == 2, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["refused"] == "input" and "no release ref for staging" in summary["error"]
    assert {phase["status"] for phase in summary["phases"]} == {"skipped"}
    assert time.monotonic() - started < 60


def test_2_a_backup_that_does_not_exist_before_any_work(shared_sandbox: SandboxHandle) -> None:
    started = time.monotonic()
    result = shared_sandbox.wfops(
        "rollback",
        "--env",
        "local",
        "--database",
        "--backup",
        "backup-19990101-000000",
        "--confirm",
        "backup-19990101-000000",
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no backup 'backup-19990101-000000'" in result.stderr
    assert "wfops rollback" not in result.stderr, "no run was started"
    assert time.monotonic() - started < 30


def test_2_a_missing_or_wrong_vault_password(project: Path, tmp_path: Path) -> None:
    vault = project / "group_vars" / "unit" / "vault.yml"
    vault.write_text("vault_wfops_unused: from-the-vault\n")
    password = tmp_path / "vault-pass"
    password.write_text("right-password\n")
    subprocess.run(
        [str(VENV_BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(password), str(vault)], check=True
    )
    missing = run_wfops("run", "backup", "--env", "unit", env=unit_env(project))
    assert missing.returncode == 2
    assert "group_vars/unit/vault.yml is encrypted and no vault password was given" in missing.stderr
    wrong = tmp_path / "wrong-pass"
    wrong.write_text("wrong-password\n")
    refused = run_wfops("run", "backup", "--env", "unit", "--vault-password-file", str(wrong), env=unit_env(project))
    assert refused.returncode == 2
    assert "does not decrypt group_vars/unit/vault.yml" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, "one sentence"
    assert not (project / "runs").exists()
    right = run_wfops("run", "backup", "--env", "unit", "--vault-password-file", str(password), env=unit_env(project))
    assert right.returncode == 0, right.stdout + right.stderr


def test_3_the_sandbox_is_not_up(tmp_path: Path) -> None:
    env = {**os.environ, "WFOPS_SANDBOX_DIR": str(tmp_path / "no-sandbox")}
    run = run_wfops("run", "backup", "--env", "local", env=env)
    assert run.returncode == Exit.ENVIRONMENT == 3
    assert "the sandbox is not up" in run.stderr and "wfops sandbox up" in run.stderr
    status = run_wfops("sandbox", "status", env=env)
    assert status.returncode == 3
    assert "sandbox: down" in status.stdout


def test_130_interrupted(project: Path) -> None:
    replace_role(project, "migrate", SLEEPING_ROLE)
    process = start_wfops(project, "run", "backup", "migrate", "normalize", "--env", "unit", "--json")
    _wait_for(lambda: _pids_of("sleep 317"), "the migrate role's command to start")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == Exit.INTERRUPTED == 130, err
    summary = json.loads(out)
    assert summary["status"] == "interrupted"
    assert [(p["name"], p["status"]) for p in summary["phases"]] == [
        ("backup", "ok"),
        ("migrate", "interrupted"),
        ("normalize", "skipped"),
    ]
    assert _pids_of("sleep 317") == []


def _pids_of(command: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().replace(b"\0", b" ").strip() == command.encode():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"never saw {what}")
