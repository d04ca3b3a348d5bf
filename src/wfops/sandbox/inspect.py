"""Read-only questions about a WeddingFlo database: migration head and legacy-data counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg2 import sql

from wfops.drizzle import DEFAULT_SCHEMA, DEFAULT_TABLE, Migration

CANONICAL_RSVP = ("confirmed", "declined", "maybe", "pending")
CANONICAL_SIDES = ("partner1", "partner2", "mutual")
# The ten child tables whose company_id is denormalised from their parent (runbook phase 4 §3).
CHILD_TABLES = (
    "guests",
    "events",
    "budget",
    "vendors",
    "hotels",
    "gifts",
    "timeline",
    "documents",
    "advance_payments",
    "chatbot_messages",
)


@dataclass
class MigrationState:
    applied: int
    head_tag: str | None
    head_created_at: int | None


@dataclass
class LegacyCounts:
    legacy_rsvp: int
    legacy_guest_side: int
    null_company_id: dict[str, int] = field(default_factory=dict)
    clients_with_stats_drift: int = 0


def migration_state(cursor: Any, migrations: list[Migration]) -> MigrationState:
    """How many migrations Drizzle's table records, and which journal entry is the head."""
    cursor.execute("SELECT to_regclass(%s)", (f'"{DEFAULT_SCHEMA}"."{DEFAULT_TABLE}"',))
    if cursor.fetchone()[0] is None:
        return MigrationState(0, None, None)
    cursor.execute(
        sql.SQL("SELECT count(*), max(created_at) FROM {}.{}").format(
            sql.Identifier(DEFAULT_SCHEMA), sql.Identifier(DEFAULT_TABLE)
        )
    )
    count, head = cursor.fetchone()
    tag = next((m.tag for m in migrations if m.when == head), None) if head is not None else None
    return MigrationState(int(count), tag, head)


def _has_column(cursor: Any, table: str, column: str) -> bool:
    cursor.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name = %s AND column_name = %s",
        (table, column),
    )
    return cursor.fetchone() is not None


def legacy_counts(cursor: Any) -> LegacyCounts:
    """The rows the release's normalisation exists to fix."""
    cursor.execute(
        "SELECT count(*) FILTER (WHERE rsvp_status <> ALL(%s)),"
        " count(*) FILTER (WHERE guest_side IS NOT NULL AND guest_side <> ALL(%s)) FROM guests",
        (list(CANONICAL_RSVP), list(CANONICAL_SIDES)),
    )
    rsvp, side = cursor.fetchone()
    nulls: dict[str, int] = {}
    for table in CHILD_TABLES:
        if _has_column(cursor, table, "company_id"):
            cursor.execute(sql.SQL("SELECT count(*) FROM {} WHERE company_id IS NULL").format(sql.Identifier(table)))
            nulls[table] = int(cursor.fetchone()[0])
    cursor.execute(
        """
        SELECT count(*) FROM clients c
        WHERE c.deleted_at IS NULL AND (
          c.guest_count <> (SELECT count(*) FROM guests g WHERE g.client_id = c.id)
          OR c.budget <> (SELECT coalesce(sum(b.estimated_cost), 0)::text FROM budget b
                          WHERE b.client_id = c.id))
        """
    )
    drift = int(cursor.fetchone()[0])
    return LegacyCounts(int(rsvp), int(side), nulls, drift)
