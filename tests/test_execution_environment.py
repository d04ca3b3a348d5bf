"""The execution environment AWX runs wfops in: `ansible-builder create` (scripts/ee-context.sh, as `make ee-context`
runs it) turns execution-environment.yml and the collection built from this checkout into a build context that holds
everything the roles need. Building the image needs a container runtime and is not done here."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from conftest import REPO, VENV_BIN


def _pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line (comments and -r lines left out)."""
    pins = {}
    for line in path.read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[name.lower()] = version
    return pins


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ee")
    completed = subprocess.run(
        ["bash", str(REPO / "scripts" / "ee-context.sh"), str(out)],
        capture_output=True,
        text=True,
        env={"PATH": f"{VENV_BIN}:/usr/bin:/bin", "WFOPS_BIN": str(VENV_BIN), "HOME": str(out)},
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return out / "context"


def test_the_containerfile_builds_on_the_debian_base_with_the_pinned_ansible(context: Path) -> None:
    containerfile = (context / "Containerfile").read_text()
    assert 'EE_BASE_IMAGE="docker.io/library/python:3.11-slim-bookworm"' in containerfile
    assert 'PKGMGR="/usr/bin/apt-get"' in containerfile
    constraints = _pins(REPO / "constraints.txt")
    core, runner = constraints["ansible-core"], constraints["ansible-runner"]
    assert f'ANSIBLE_INSTALL_REFS="ansible-core=={core} ansible-runner=={runner}"' in containerfile
    # Debian images come without package lists: the update runs before any install.
    assert containerfile.index("RUN apt-get update") < containerfile.index("RUN /output/scripts/pip_install")
    assert "ansible-galaxy collection install" in containerfile and "WORKDIR /build" in containerfile


def test_the_context_holds_the_python_packages_and_tools_the_roles_call(context: Path) -> None:
    python = _pins(context / "_build" / "requirements.txt")
    runtime = _pins(REPO / "requirements.txt")
    assert python == {name: runtime[name] for name in ("psycopg2-binary", "requests")}
    bindep = {line.split()[0]: line for line in (context / "_build" / "bindep.txt").read_text().splitlines()}
    for package in ("postgresql-client", "rclone", "git", "nodejs", "npm", "openssh-client"):
        assert package in bindep and "[platform:dpkg]" in bindep[package], package


def test_the_collection_tarball_and_its_dependencies_are_in_the_context(context: Path) -> None:
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    assert requirements[0] == {"name": "collections/weddingflo-wfops.tar.gz", "type": "file"}
    # The same collections, at the same versions, as requirements.yml for a project sync.
    pinned = yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]
    assert requirements[1:] == pinned
    tarball = context / "_build" / "collections" / "weddingflo-wfops.tar.gz"
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
    manifest = next(name for name in names if name.endswith("MANIFEST.json"))
    assert manifest == "MANIFEST.json"
    assert {"roles/backup/tasks/main.yml", "roles/release/tasks/main.yml", "playbooks/release.yml"} <= names
    assert any(name.startswith("plugins/modules/") and name.endswith(".py") for name in names)
    # What the collection leaves out (build_ignore): the tests, the wrapper, the sandbox app.
    assert not any(name.startswith(("tests/", "src/", "sandbox-app/", ".venv/")) for name in names)
