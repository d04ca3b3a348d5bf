"""The repository's own promises: every role documented and specified, vaults encrypted, pins agreeing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from conftest import REPO, VENV_BIN

ROLES = sorted(path.name for path in (REPO / "roles").iterdir() if path.is_dir())


def test_every_role_has_defaults_argument_specs_and_a_readme() -> None:
    assert len(ROLES) >= 10
    for role in ROLES:
        base = REPO / "roles" / role
        for required in ("tasks/main.yml", "defaults/main.yml", "meta/main.yml", "meta/argument_specs.yml"):
            assert (base / required).is_file(), f"{role}: {required}"
        specs = yaml.safe_load((base / "meta" / "argument_specs.yml").read_text())
        assert "main" in specs["argument_specs"], role
        defaults = yaml.safe_load((base / "defaults" / "main.yml").read_text()) or {}
        options = specs["argument_specs"]["main"].get("options") or {}
        assert set(defaults) == set(options), f"{role}: defaults and argument_specs disagree"
        for name in defaults:
            assert name.startswith(f"{role}_"), f"{role}: {name} lacks the role prefix"
        assert (base / "README.md").is_file(), f"{role}: README.md"


def test_committed_vault_files_are_encrypted_and_examples_list_every_key() -> None:
    tracked = subprocess.run(["git", "ls-files", "group_vars"], cwd=REPO, capture_output=True, text=True)
    for name in tracked.stdout.split():
        if name.endswith("vault.yml"):
            assert (REPO / name).read_text().startswith("$ANSIBLE_VAULT;"), f"{name} is not encrypted"
    for env in ("staging", "production"):
        example = yaml.safe_load((REPO / "group_vars" / env / "vault.yml.example").read_text())
        uses = (REPO / "group_vars" / env / "vars.yml").read_text() + (REPO / "group_vars" / "all.yml").read_text()
        for key in example:
            assert key.startswith("vault_")
            assert key in uses, f"{env}: {key} is in the example but unused"


def test_requirements_yml_names_the_collections_the_pinned_ansible_package_carries() -> None:
    wanted = {c["name"]: c["version"] for c in yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]}
    listed = subprocess.run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    installed: dict[str, str] = {}
    for collections in json.loads(listed.stdout).values():
        for name, info in collections.items():
            installed.setdefault(name, info["version"])
    assert {name: installed.get(name) for name in wanted} == wanted


def test_python_pins_agree_with_the_constraints_file() -> None:
    constraints = dict(
        line.strip().split("==") for line in (REPO / "constraints.txt").read_text().splitlines() if "==" in line
    )
    lowered = {name.lower(): version for name, version in constraints.items()}
    for requirements in ("requirements.txt", "requirements-dev.txt"):
        for line in (REPO / requirements).read_text().splitlines():
            line = line.split("#")[0].strip()
            if "==" in line:
                name, version = line.split("==")
                assert lowered[name.lower()] == version, line


def test_gitignore_keeps_local_state_out(repo: Path) -> None:
    ignored = (repo / ".gitignore").read_text().split()
    for entry in ("/.venv/", "/.sandbox/", "/runs/"):
        assert entry in ignored


def test_every_role_has_a_molecule_scenario() -> None:
    scenarios = {path.parent.name for path in (REPO / "molecule").glob("*/molecule.yml")}
    assert set(ROLES) <= scenarios, f"roles without a scenario: {sorted(set(ROLES) - scenarios)}"
    for scenario in scenarios:
        config = yaml.safe_load((REPO / "molecule" / scenario / "molecule.yml").read_text())
        sequence = config["scenario"]["test_sequence"]
        assert "converge" in sequence and "verify" in sequence, scenario
        assert config["driver"]["name"] == "default", scenario
