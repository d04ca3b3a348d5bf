"""Staging first: which environment a ref must pass before another, and the proof found in that one's ledger."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wfops.orchestration import AdminError

# A release to the key needs a successful release of the same ref to the value first.
STAGED_BEFORE: dict[str, str] = {"production": "staging"}

ReadHistory = Callable[[str], list[dict[str, Any]]]


def successful_release(history: list[dict[str, Any]], ref: str) -> dict[str, Any] | None:
    """The newest ledger entry of a release of `ref` that ended successful with its smoke phase ok."""
    for entry in reversed(history):
        if (
            entry.get("kind") == "release"
            and entry.get("ref") == ref
            and entry.get("status") == "successful"
            and (entry.get("phases") or {}).get("smoke") == "ok"
        ):
            return entry
    return None


def staging_extravars(env: str, ref: str, read_history: ReadHistory) -> dict[str, Any]:
    """release_staged_run (the staging run that released `ref`) or, when none, release_staging_note saying why."""
    earlier = STAGED_BEFORE.get(env)
    if earlier is None:
        return {}
    try:
        history = read_history(earlier)
    except (AdminError, OSError) as exc:  # staging unreachable: said in the refusal, which the role makes
        return {"release_staging_note": f"{earlier}'s ledger could not be read: {exc}"}
    entry = successful_release(history, ref)
    if entry is not None:
        return {"release_staged_run": str(entry.get("run_id") or "?")}
    released = [e.get("ref") for e in history if e.get("kind") == "release" and e.get("status") == "successful"]
    newest = ", ".join(str(r) for r in released[-3:]) or "none"
    return {"release_staging_note": f"{earlier}'s ledger has no successful release of it; newest there: {newest}"}
