"""The top-level group_vars/ apply to every playbook, top-level or under playbooks/, with every inventory."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, VENV_BIN

PLAYBOOKS = sorted(
    [str(p.relative_to(REPO)) for p in REPO.glob("*.yml") if p.name in ("release.yml", "rollback.yml")]
    + [str(p.relative_to(REPO)) for p in (REPO / "playbooks").glob("*.yml")]
)
INVENTORIES = ("local", "staging", "production")
# The remote environments take their settings from the vault; stand in for it. (Nothing connects.)
FAKE_VAULT = (
    "-e",
    "vault_wfops_host_address=203.0.113.7",
    "-e",
    "vault_wfops_database_url=postgresql://ops@203.0.113.8:5432/postgres",
    "-e",
    "vault_wfops_dokploy_api_key=not-a-real-key",
    "-e",
    "vault_wfops_smoke_password=not-a-real-password",
)


@pytest.fixture(scope="module", autouse=True)
def fake_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A sandbox directory holding only a database URL, so the local guard finds its setting."""
    directory = tmp_path_factory.mktemp("fake-sandbox")
    (directory / "database_url").write_text("postgresql://postgres@127.0.0.1:1/weddingflo")
    (directory / "dokploy_api_key").write_text("not-a-real-key")
    (directory / "smoke_password").write_text("not-a-real-password")
    previous = os.environ.get("WFOPS_SANDBOX_DIR")
    os.environ["WFOPS_SANDBOX_DIR"] = str(directory)
    yield
    if previous is None:
        del os.environ["WFOPS_SANDBOX_DIR"]
    else:
        os.environ["WFOPS_SANDBOX_DIR"] = previous


def _guard_only(playbook: str, inventory: str, *extra: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run only the always-tagged guard of a playbook (no phase runs, nothing connects)."""
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), playbook, "-i", inventory, "--tags", "wfops_guard_only", *extra],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
    )


def test_every_playbook_is_covered() -> None:
    assert "release.yml" in PLAYBOOKS and "rollback.yml" in PLAYBOOKS
    assert len(PLAYBOOKS) >= 11


@pytest.mark.parametrize("inventory", INVENTORIES)
@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_top_level_group_vars_apply(playbook: str, inventory: str) -> None:
    result = _guard_only(playbook, f"inventory/{inventory}.yml", *FAKE_VAULT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"wfops: env {inventory}," in result.stdout


def test_an_inventory_outside_inventory_dir_does_not_get_them_and_the_guard_says_so(tmp_path: Path) -> None:
    copied = tmp_path / "production.yml"
    shutil.copy(REPO / "inventory" / "production.yml", copied)
    # playbooks/ has no group_vars of its own: only the inventory's link brings them.
    result = _guard_only(str(REPO / "playbooks" / "backup.yml"), str(copied), *FAKE_VAULT, cwd=tmp_path)
    assert result.returncode != 0
    assert "group_vars/ were not loaded" in result.stdout


def test_a_missing_vault_variable_stops_the_play_with_the_file_to_fix() -> None:
    result = _guard_only("playbooks/backup.yml", "inventory/production.yml")
    assert result.returncode != 0
    assert "vault_wfops_host_address is not set for production" in result.stdout
    assert "group_vars/production/vault.yml" in result.stdout


def test_the_default_inventory_is_the_local_sandbox() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "release.yml", "--list-hosts"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
    )
    assert result.returncode == 0, result.stderr
    hosts = [line.strip() for line in result.stdout.splitlines() if line.startswith("      ")]
    assert hosts == ["sandbox"]
