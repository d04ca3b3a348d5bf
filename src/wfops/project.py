"""Where the wfops project lives and what its environments are."""

from __future__ import annotations

import os
from pathlib import Path

# The environment `wfops sandbox up` builds on this machine (inventory/local.yml).
SANDBOX_ENVIRONMENT = "local"


class UnknownEnvironmentError(ValueError):
    """An --env that has no inventory."""

    def __init__(self, env: str, known: list[str]) -> None:
        super().__init__(
            f"unknown environment {env!r}: there is no inventory/{env}.yml; use one of: {', '.join(known)}"
        )


def project_root() -> Path:
    """The checkout holding ansible.cfg, playbooks/ and roles/ (WFOPS_HOME overrides)."""
    override = os.environ.get("WFOPS_HOME")
    root = Path(override) if override else Path(__file__).resolve().parents[2]
    if not (root / "ansible.cfg").is_file():
        raise FileNotFoundError(f"{root} is not a wfops checkout (no ansible.cfg); set WFOPS_HOME to the checkout")
    return root


def environments(root: Path | None = None) -> list[str]:
    """The environments are the inventories that exist: inventory/<env>.yml, its settings in group_vars/<env>/."""
    return sorted(path.stem for path in ((root or project_root()) / "inventory").glob("*.yml"))


def inventory_path(env: str, root: Path | None = None) -> Path:
    """The inventory file of an environment."""
    known = environments(root)
    if env not in known:
        raise UnknownEnvironmentError(env, known)
    return (root or project_root()) / "inventory" / f"{env}.yml"


def runs_dir(root: Path | None = None) -> Path:
    """Where every run keeps its private data dir (git-ignored)."""
    return (root or project_root()) / "runs"
