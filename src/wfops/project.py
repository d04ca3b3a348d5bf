"""Where the wfops project lives and what its environments are."""

from __future__ import annotations

import os
from pathlib import Path

ENVIRONMENTS: tuple[str, ...] = ("local", "staging", "production")


class UnknownEnvironmentError(ValueError):
    """An --env that has no inventory."""

    def __init__(self, env: str) -> None:
        super().__init__(f"unknown environment {env!r}; use one of: {', '.join(ENVIRONMENTS)}")


def project_root() -> Path:
    """The checkout holding ansible.cfg, playbooks/ and roles/ (WFOPS_HOME overrides)."""
    override = os.environ.get("WFOPS_HOME")
    root = Path(override) if override else Path(__file__).resolve().parents[2]
    if not (root / "ansible.cfg").is_file():
        raise FileNotFoundError(f"{root} is not a wfops checkout (no ansible.cfg); set WFOPS_HOME to the checkout")
    return root


def inventory_path(env: str, root: Path | None = None) -> Path:
    """The inventory file of an environment."""
    if env not in ENVIRONMENTS:
        raise UnknownEnvironmentError(env)
    return (root or project_root()) / "inventory" / f"{env}.yml"


def runs_dir(root: Path | None = None) -> Path:
    """Where every run keeps its private data dir (git-ignored)."""
    return (root or project_root()) / "runs"
