"""The top-level group_vars/ apply to every playbook, top-level or under playbooks/, with every inventory."""

from __future__ import annotations

import json
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
# The environments are the inventories that exist.
INVENTORIES = tuple(sorted(path.stem for path in (REPO / "inventory").glob("*.yml")))
# The remote environments take their secrets from the vault and a few settings from vars.yml (placeholders in the
# committed ones); stand in for them, and for the release ref. (Nothing connects.)
SETTINGS = {
    "vault_wfops_host_address": "203.0.113.7",
    "vault_wfops_database_url": "postgresql://ops@203.0.113.8:5432/postgres",
    "vault_wfops_dokploy_api_key": "not-a-real-key",
    "vault_wfops_smoke_email": "smoke@weddingflo.example",
    "vault_wfops_smoke_password": "not-a-real-password",
    "wfops_dokploy_service_id": "app-1",
    "wfops_app_dir": "/srv/weddingflo",
    "release_ref": "abc123",
}


def _e(settings: dict[str, str]) -> list[str]:
    return [arg for key, value in settings.items() for arg in ("-e", f"{key}={value}")]


FAKE_VAULT = _e(SETTINGS)


@pytest.fixture(scope="module", autouse=True)
def fake_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A sandbox directory holding only a database URL, so the local guard finds its setting."""
    directory = tmp_path_factory.mktemp("fake-sandbox")
    (directory / "database_url").write_text("postgresql://postgres@127.0.0.1:1/weddingflo")
    (directory / "dokploy_api_key").write_text("not-a-real-key")
    (directory / "smoke_password").write_text("not-a-real-password")
    services = {"dokploy_url": "http://127.0.0.1:1", "application_id": "app-1", "app_url": "http://127.0.0.1:1"}
    (directory / "services.json").write_text(json.dumps(services))
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


def test_inventories_and_environments_agree() -> None:
    assert INVENTORIES == ("local", "production", "staging")
    assert tuple(sorted(p.parent.name for p in (REPO / "group_vars").glob("*/vars.yml"))) == INVENTORIES


# Only what each phase uses: deploy needs the host, Dokploy and the app's URL, not the database or the smoke account.
DEPLOY_ONLY = {
    key: SETTINGS[key]
    for key in ("vault_wfops_host_address", "vault_wfops_dokploy_api_key", "wfops_dokploy_service_id", "release_ref")
}


def test_each_phase_asks_only_for_the_settings_it_uses() -> None:
    deploy = _guard_only("playbooks/deploy.yml", "inventory/staging.yml", *_e(DEPLOY_ONLY))
    assert deploy.returncode == 0, deploy.stdout
    with_app = _e({**DEPLOY_ONLY, "wfops_app_dir": "/srv"})
    migrate = _guard_only("playbooks/migrate.yml", "inventory/staging.yml", *with_app)
    assert migrate.returncode != 0
    assert "vault_wfops_database_url is not set for staging" in migrate.stdout


def test_a_placeholder_from_the_committed_vars_is_not_a_setting() -> None:
    settings = {key: value for key, value in DEPLOY_ONLY.items() if key != "wfops_dokploy_service_id"}
    result = _guard_only("playbooks/deploy.yml", "inventory/production.yml", *_e(settings))
    assert result.returncode != 0
    assert "wfops_dokploy_service_id is not set for production: set it in group_vars/production/vars.yml" in (
        result.stdout
    )


def test_no_sandbox_default_outside_the_sandbox() -> None:
    result = _guard_only("playbooks/preflight.yml", "inventory/staging.yml", "-e", "vault_wfops_host_address=x")
    assert result.returncode != 0
    assert "wfops_app_dir is not set for staging: set it in group_vars/staging/vars.yml" in result.stdout
    assert "WFOPS_APP_DIR" in result.stdout


@pytest.mark.parametrize("playbook", ["release.yml", "playbooks/deploy.yml", "playbooks/migrate.yml"])
def test_bare_ansible_playbook_refuses_staging_and_production_without_a_ref(playbook: str) -> None:
    without_ref = {key: value for key, value in SETTINGS.items() if key != "release_ref"}
    for env in ("staging", "production"):
        result = _guard_only(playbook, f"inventory/{env}.yml", *_e(without_ref))
        assert result.returncode != 0
        assert f"no release ref for {env}" in result.stdout


def test_the_sandbox_runs_without_a_ref() -> None:
    result = _guard_only("playbooks/deploy.yml", "inventory/local.yml")
    assert result.returncode == 0, result.stdout
    assert "release unset" in result.stdout


def test_a_controller_on_the_host_itself_needs_no_address(tmp_path: Path) -> None:
    """The documented local-connection form of an inventory (wfops checked out on the host)."""
    inventory = tmp_path / "production.yml"
    inventory.write_text(
        "production:\n  children:\n    weddingflo:\n      hosts:\n        weddingflo-production:\n"
        "          ansible_connection: local\n"
    )
    (tmp_path / "group_vars").symlink_to(REPO / "group_vars")
    settings = {key: value for key, value in SETTINGS.items() if key != "vault_wfops_host_address"}
    result = _guard_only("playbooks/deploy.yml", str(inventory), *_e(settings))
    assert result.returncode == 0, result.stdout
    assert "wfops: env production, host weddingflo-production" in result.stdout
