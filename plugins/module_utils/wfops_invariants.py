"""The runbook's post-normalisation checks as data (files/invariants.yml), evaluated read-only.

Used by normalize (after its run), smoke (flows 2-4), monitor (drift and legacy signals) and `wfops run verify`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.wfops_pg import DatabaseError

KINDS = ("allowed_values", "zero")


@dataclass
class InvariantResult:
    name: str
    description: str
    passed: bool
    value: Any
    examples: list[Any] = field(default_factory=list)
    action: str = ""

    def summary(self) -> str:
        if self.passed:
            return f"{self.name}: ok"
        shown = f"; e.g. {', '.join(str(e) for e in self.examples)}" if self.examples else ""
        return f"{self.name}: {self.value}{shown}"


def _validate(invariant: dict[str, Any]) -> None:
    missing = [key for key in ("name", "kind", "query") if not invariant.get(key)]
    if missing or invariant.get("kind") not in KINDS:
        raise DatabaseError(
            f"invariant {invariant.get('name', '?')} is malformed: needs name, query and kind ({', '.join(KINDS)})"
        )


def evaluate(cursor: Any, invariant: dict[str, Any]) -> InvariantResult:
    """Run one invariant's query and judge it; fetch a few example rows when it fails."""
    _validate(invariant)
    cursor.execute(invariant["query"])
    rows = cursor.fetchall()
    if invariant["kind"] == "allowed_values":
        allowed = set(invariant.get("allowed") or [])
        value = [{"value": row[0], "count": int(row[1])} for row in rows]
        passed = all(row[0] in allowed for row in rows)
        if not passed:
            value = [v for v in value if v["value"] not in allowed]
    else:
        value = int(rows[0][0]) if rows else 0
        passed = value == 0
    examples: list[Any] = []
    if not passed and invariant.get("examples"):
        cursor.execute(invariant["examples"])
        examples = [row[0] if len(row) == 1 else list(row) for row in cursor.fetchall()]
    return InvariantResult(
        name=invariant["name"],
        description=invariant.get("description", ""),
        passed=passed,
        value=value,
        examples=[str(e) if not isinstance(e, list) else [str(x) for x in e] for e in examples],
        action=invariant.get("action", ""),
    )


def evaluate_all(
    connection: Any, invariants: list[dict[str, Any]], names: list[str] | None = None
) -> list[InvariantResult]:
    """Every (or every named) invariant, in one read-only transaction."""
    chosen = [i for i in invariants if not names or i.get("name") in names]
    unknown = sorted(set(names or []) - {i.get("name") for i in invariants})
    if unknown:
        raise DatabaseError(f"unknown invariant(s) {', '.join(unknown)}")
    connection.autocommit = False
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION READ ONLY")
            return [evaluate(cursor, invariant) for invariant in chosen]
    finally:
        connection.rollback()
