"""A copy of the checkout: everything a wfops run reads (WFOPS_HOME points a run at it)."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def copy_checkout(root: Path) -> Path:
    """ansible.cfg, the entry points, group_vars, playbooks, roles, plugins, files and inventory (its links kept)."""
    root.mkdir()
    for name in ("ansible.cfg", "release.yml", "rollback.yml"):
        shutil.copy(REPO / name, root / name)
    for name in ("group_vars", "playbooks", "roles", "plugins", "files"):
        shutil.copytree(REPO / name, root / name)
    shutil.copytree(REPO / "inventory", root / "inventory", symlinks=True)
    return root
