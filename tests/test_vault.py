"""The vault as ansible-playbook takes it, on a copy of the checkout (no host, no database): every way of giving the
password opens an encrypted vault whose values reach the play, and the password is never written under runs/."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, VENV_BIN
from unit_project import copy_project, ok_role, replace_role, unit_env

PASSWORD = "SentinelVaultPassw0rd-unit-7c1e"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The `unit` environment with an encrypted vault; the backup stand-in reports a vault value it was given."""
    root = copy_project(tmp_path / "project")
    vault = root / "group_vars" / "unit" / "vault.yml"
    vault.write_text("vault_unit_marker: opened-by-the-vault\n")
    password = tmp_path / "vault-pass"
    password.write_text(PASSWORD + "\n")
    subprocess.run(
        [str(VENV_BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(password), str(vault)],
        check=True,
        capture_output=True,
    )
    replace_role(root, "backup", ok_role("wfops_backup", marker="{{ vault_unit_marker }}"))
    return root


def _run(project: Path, *args: str, stdin: str = "", extra_env: dict[str, str] | None = None) -> dict:
    completed = subprocess.run(
        [str(VENV_BIN / "wfops"), "run", "backup", "--env", "unit", "--json", *args],
        input=stdin,
        env=unit_env(project, extra_env),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        start_new_session=True,  # no terminal: a prompt reads stdin
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert PASSWORD not in completed.stdout + completed.stderr
    return json.loads(completed.stdout)


@pytest.mark.parametrize(
    "way",
    [
        "--vault-password-file",
        "--vault-id",
        "--vault-id prompt",
        "--ask-vault-pass",
        "ANSIBLE_VAULT_PASSWORD_FILE",
        "ANSIBLE_VAULT_IDENTITY_LIST",
    ],
)
def test_every_way_of_giving_the_password_opens_the_vault_and_writes_it_nowhere(
    project: Path, tmp_path: Path, way: str
) -> None:
    password_file = str(tmp_path / "vault-pass")
    args, stdin, extra_env = {
        "--vault-password-file": (["--vault-password-file", password_file], "", None),
        "--vault-id": (["--vault-id", f"unit@{password_file}"], "", None),
        "--vault-id prompt": (["--vault-id", "unit@prompt"], PASSWORD + "\n", None),
        "--ask-vault-pass": (["--ask-vault-pass"], PASSWORD + "\n", None),
        "ANSIBLE_VAULT_PASSWORD_FILE": ([], "", {"ANSIBLE_VAULT_PASSWORD_FILE": password_file}),
        "ANSIBLE_VAULT_IDENTITY_LIST": ([], "", {"ANSIBLE_VAULT_IDENTITY_LIST": f"unit@{password_file}"}),
    }[way]
    summary = _run(project, *args, stdin=stdin, extra_env=extra_env)
    assert summary["phases"][0]["result"]["marker"] == "opened-by-the-vault"
    run_dir = project / "runs" / summary["run_id"]
    files = [path for path in run_dir.rglob("*") if path.is_file()]
    assert any(path.name == "command" for path in files)
    for path in files:  # env/ (when written), command, job events, stdout, summary, junit
        assert PASSWORD not in path.read_text(errors="replace"), path
