"""Staging first: which environment a ref must pass before another, and the proof found in that one's ledger."""

from __future__ import annotations

from collections.abc import Callable

from wfops.ledger import Entry
from wfops.orchestration import AdminError

# A release to the key needs a successful release of the same ref to the value first.
STAGED_BEFORE: dict[str, str] = {"production": "staging"}

ReadHistory = Callable[[str], list[Entry]]


def successful_release(history: list[Entry], ref: str) -> Entry | None:
    """The newest ledger entry of a release of `ref` that ended successful with its smoke phase ok."""
    for entry in reversed(history):
        released = entry.kind == "release" and entry.ref == ref and entry.status == "successful"
        if released and entry.phases.get("smoke") == "ok":
            return entry
    return None


def staging_extravars(env: str, ref: str, read_history: ReadHistory) -> dict[str, str]:
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
        return {"release_staged_run": entry.run_id or "?"}
    released = [e.ref for e in history if e.kind == "release" and e.status == "successful"]
    newest = ", ".join(str(r) for r in released[-3:]) or "none"
    return {"release_staging_note": f"{earlier}'s ledger has no successful release of it; newest there: {newest}"}
