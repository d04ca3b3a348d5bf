"""What must hold before a play starts: found here, nothing has run yet when one of these fails."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from wfops.project import SANDBOX_ENVIRONMENT
from wfops.sandbox import service as sandbox
from wfops.vault import Vault, environment_files


class UnknownBackupError(ValueError):
    """A --backup id the host does not have (bad input: nothing ran)."""


def check_environment(env: str, root: Path, vault: Vault) -> None:
    """The vault opens every encrypted file of the environment (VaultError), and the sandbox runs when the
    environment is the sandbox (SandboxError)."""
    vault.check(environment_files(root, env), root)
    if env == SANDBOX_ENVIRONMENT:
        sandbox.require_up()


def require_backup(backup_id: str, list_backups: Callable[[], dict[str, Any]]) -> None:
    """A backup named on the command line exists on the host (`latest` is resolved by the rollback itself)."""
    if backup_id == "latest":
        return
    try:
        backups = list_backups().get("backups") or []
    except RuntimeError as exc:
        raise UnknownBackupError(
            f"no backup {backup_id!r} can be found: the host's backups cannot be listed ({exc})"
        ) from None
    known = [str(backup.get("id")) for backup in backups]
    if backup_id not in known:
        newest = ", ".join(known[:3]) or "none"
        raise UnknownBackupError(
            f"no backup {backup_id!r} on the host (newest: {newest}); `wfops backups --env ENV` lists them"
        )
