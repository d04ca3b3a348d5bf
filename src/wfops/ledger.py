"""The host's ledger, as the wrapper reads it: the ledger module's own code, plugins/module_utils/wfops_ledger.py.

The roles read and append the ledger through the wfops_ledger module; the wrapper receives its entries (wfops history,
staging's ledger for staging-first) and reads them into the same typed shape with the same rules.
"""

from __future__ import annotations

from typing import Any

from wfops.plugin_code import load

_core = load("wfops_ledger")

BEFORE_LEDGER: str = _core.BEFORE_LEDGER
Entry = _core.Entry
Ledger = _core.Ledger
LedgerError = _core.LedgerError
RollbackPlan = _core.RollbackPlan
Serving = _core.Serving
read_entries = _core.read_entries
same_commit = _core.same_commit


def entries_from(report: list[dict[str, Any]]) -> list[Any]:
    """Entries as the wfops_ledger module returns them (or as the ledger holds them), typed."""
    return [Entry.from_dict(item) for item in report if isinstance(item, dict)]


__all__ = [
    "BEFORE_LEDGER",
    "Entry",
    "Ledger",
    "LedgerError",
    "RollbackPlan",
    "Serving",
    "entries_from",
    "read_entries",
    "same_commit",
]
