"""Drift between a database's Drizzle bookkeeping and a release's migrations folder, and the ways out of it.

Verification finds three kinds: an applied migration whose file was edited since, a journal entry older than the
applied head that was never applied (drizzle-orm skips those silently), and an applied row the journal does not
know (the database is ahead of the code). Each stops the run until a person decides, once:

- apply a skipped migration now (`apply_skipped`): it runs with the pending ones and gets Drizzle's own bookkeeping
  row (hash, created_at = its `when`), so drizzle-kit and wfops both see it applied; Drizzle's head does not move;
- acknowledge a finding (`acknowledge` + a reason): recorded in the database (who, when, why, both hashes) in
  "wfops"."drizzle_acknowledged_drift", so later runs report it as acknowledged and keep every other check on. An
  acknowledgement covers that finding exactly: a file edited again is a new finding.

Pure Python on psycopg2 cursors (the wrapper and the tests load it too).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ansible.module_utils.wfops_pg import DatabaseError, quote_ident

ACK_SCHEMA = "wfops"
ACK_TABLE = "drizzle_acknowledged_drift"
ACK_QUALIFIED = f"{quote_ident(ACK_SCHEMA)}.{quote_ident(ACK_TABLE)}"
Applied = list[tuple[int, str, int | None]]


@dataclass
class Finding:
    """A difference between the database's bookkeeping and the release's migrations folder."""

    kind: str  # edited | skipped | unknown
    tag: str | None
    when: int | None
    message: str
    applied_hash: str | None = None
    file_hash: str | None = None
    acknowledged: dict[str, Any] | None = field(default=None)

    @property
    def name(self) -> str:
        """How a person names it on the command line: the tag, or an unknown row's created_at."""
        return self.tag or str(self.when)

    def way_out(self) -> str:
        acknowledge = f"-e migrate_acknowledge={self.name} -e migrate_acknowledge_reason='<why>'"
        if self.kind == "skipped":
            return f"apply it now with -e migrate_apply_skipped={self.name}, or leave it unapplied with {acknowledge}"
        if self.kind == "edited":
            return f"restore the file as applied, or accept the edit with {acknowledge}"
        return f"deploy the code that has this migration, or accept the row with {acknowledge}"

    def matches(self, ack: dict[str, Any]) -> bool:
        return (ack["kind"], ack["created_at"], ack["applied_hash"], ack["file_hash"]) == (
            self.kind,
            self.when,
            self.applied_hash,
            self.file_hash,
        )


def verify(migrations: list[Any], applied: Applied) -> list[Finding]:
    """Edited applied migrations, journal entries Drizzle would skip silently, applied rows unknown to the journal."""
    by_when = {m.when: m for m in migrations}
    findings: list[Finding] = []
    applied_whens = set()
    for _, digest, created_at in applied:
        applied_whens.add(created_at)
        migration = by_when.get(created_at) if created_at is not None else None
        if migration is None:
            findings.append(
                Finding(
                    "unknown",
                    None,
                    created_at,
                    f"an applied migration (created_at {created_at}, hash {digest[:12]}) is not in this release's "
                    "journal: the database is ahead of the code being deployed",
                    applied_hash=digest,
                )
            )
        elif migration.hash != digest:
            findings.append(
                Finding(
                    "edited",
                    migration.tag,
                    migration.when,
                    f"{migration.tag} was edited after it was applied: applied hash {digest}, file hash "
                    f"{migration.hash}",
                    applied_hash=digest,
                    file_hash=migration.hash,
                )
            )
    head = max((c for _, _, c in applied if c is not None), default=None)
    if head is not None:
        for migration in migrations:
            if migration.when <= head and migration.when not in applied_whens:
                findings.append(
                    Finding(
                        "skipped",
                        migration.tag,
                        migration.when,
                        f"{migration.tag} (when {migration.when}) is older than the applied head ({head}) and was "
                        "never applied: Drizzle would skip it silently",
                        file_hash=migration.hash,
                    )
                )
    return findings


def read_acknowledgements(cursor: Any, bookkeeping: str) -> list[dict[str, Any]]:
    """The acknowledgements recorded for this bookkeeping table (none when the table was never created)."""
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (ACK_QUALIFIED,))
    if not cursor.fetchone()[0]:
        return []
    cursor.execute(
        "SELECT kind, tag, created_at, applied_hash, file_hash, acknowledged_by, acknowledged_at, reason"
        f" FROM {ACK_QUALIFIED} WHERE bookkeeping = %s ORDER BY id",
        (bookkeeping,),
    )
    keys = ("kind", "tag", "created_at", "applied_hash", "file_hash", "by", "at", "reason")
    rows = [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        row["created_at"] = None if row["created_at"] is None else int(row["created_at"])
        row["at"] = row["at"].isoformat()
    return rows


def record_acknowledgements(cursor: Any, bookkeeping: str, findings: list[Finding], by: str, reason: str) -> None:
    cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(ACK_SCHEMA)}")
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {ACK_QUALIFIED} (id serial PRIMARY KEY, bookkeeping text NOT NULL,"
        " kind text NOT NULL, tag text, created_at bigint, applied_hash text, file_hash text,"
        " acknowledged_by text NOT NULL, acknowledged_at timestamptz NOT NULL DEFAULT now(), reason text NOT NULL)"
    )
    for finding in findings:
        cursor.execute(
            f"INSERT INTO {ACK_QUALIFIED} (bookkeeping, kind, tag, created_at, applied_hash, file_hash,"
            " acknowledged_by, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING acknowledged_by, acknowledged_at, reason",
            (bookkeeping, finding.kind, finding.tag, finding.when, finding.applied_hash, finding.file_hash, by, reason),
        )
        who, at, why = cursor.fetchone()
        finding.acknowledged = {"by": who, "at": at.isoformat(), "reason": why}


@dataclass
class Decisions:
    """What a person decided about the findings for this run."""

    apply: list[Finding] = field(default_factory=list)
    acknowledge: list[Finding] = field(default_factory=list)
    open: list[Finding] = field(default_factory=list)


def decide(
    findings: list[Finding], recorded: list[dict[str, Any]], apply_skipped: list[str], acknowledge: list[str]
) -> Decisions:
    """Sort the findings: acknowledged before (marked), to apply now, to acknowledge now, still open. A name that
    matches no finding it could apply to is refused: a typo must not pass for a decision."""
    by_name = {finding.name: finding for finding in findings}
    decisions = Decisions()
    for name in apply_skipped:
        finding = by_name.get(name)
        if finding is None or finding.kind != "skipped":
            raise DatabaseError(
                f"migrate_apply_skipped names {name}, which is not a migration Drizzle skipped here (skipped: "
                f"{', '.join(f.name for f in findings if f.kind == 'skipped') or 'none'}); nothing was applied"
            )
        decisions.apply.append(finding)
    for name in acknowledge:
        finding = by_name.get(name)
        if finding is None:
            raise DatabaseError(
                f"migrate_acknowledge names {name}, which is not a finding here (findings: "
                f"{', '.join(f.name for f in findings) or 'none'}); nothing was applied"
            )
        if finding in decisions.apply:
            raise DatabaseError(f"{name} is both to apply and to acknowledge: choose one; nothing was applied")
        decisions.acknowledge.append(finding)
    for finding in findings:
        earlier = next((ack for ack in recorded if finding.matches(ack)), None)
        if earlier is not None:
            finding.acknowledged = {key: earlier[key] for key in ("by", "at", "reason")}
        elif finding not in decisions.apply and finding not in decisions.acknowledge:
            decisions.open.append(finding)
    return decisions


def refusal(findings: list[Finding]) -> str:
    return "the database and this release's migrations disagree, nothing was applied: " + "; ".join(
        f"{finding.message} ({finding.way_out()})" for finding in findings
    )


def as_facts(findings: list[Finding]) -> list[dict[str, Any]]:
    return [{**asdict(finding), "way_out": finding.way_out()} for finding in findings]
