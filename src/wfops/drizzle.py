"""Drizzle's migration folder and bookkeeping, exactly as drizzle-orm's pg migrator reads and writes them.

drizzle-orm (src/migrator.ts, src/pg-core/dialect.ts): the journal's entries in order, each `<tag>.sql`
split on `--> statement-breakpoint`; hash = sha256 hex of the whole file; created_at = the journal's
`when`; all pending migrations and their bookkeeping rows in one transaction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg2 import sql

BREAKPOINT = "--> statement-breakpoint"
DEFAULT_SCHEMA = "drizzle"
DEFAULT_TABLE = "__drizzle_migrations"


@dataclass(frozen=True)
class Migration:
    """One journal entry with its SQL file."""

    idx: int
    tag: str
    when: int
    sql_text: str

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.sql_text.encode("utf-8")).hexdigest()

    @property
    def statements(self) -> list[str]:
        return [part for part in self.sql_text.split(BREAKPOINT) if part.strip()]


class MigrationFolderError(ValueError):
    """A migrations folder Drizzle could not read either."""


def read_migrations(folder: Path) -> list[Migration]:
    """The folder's migrations in journal order (meta/_journal.json, then <tag>.sql)."""
    journal_path = folder / "meta" / "_journal.json"
    try:
        journal: dict[str, Any] = json.loads(journal_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MigrationFolderError(f"{journal_path} not found: not a Drizzle migrations folder") from exc
    migrations = []
    for entry in journal.get("entries", []):
        path = folder / f"{entry['tag']}.sql"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise MigrationFolderError(f"{path} is in the journal but missing on disk") from exc
        migrations.append(Migration(int(entry["idx"]), str(entry["tag"]), int(entry["when"]), text))
    return migrations


def bookkeeping_table(schema: str = DEFAULT_SCHEMA, table: str = DEFAULT_TABLE) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def ensure_bookkeeping(cursor: Any, schema: str = DEFAULT_SCHEMA, table: str = DEFAULT_TABLE) -> None:
    """The schema and table Drizzle creates when they are missing (same DDL)."""
    cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    cursor.execute(
        sql.SQL("CREATE TABLE IF NOT EXISTS {} (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)").format(
            bookkeeping_table(schema, table)
        )
    )


def apply_in_one_transaction(
    connection: Any, migrations: list[Migration], schema: str = DEFAULT_SCHEMA, table: str = DEFAULT_TABLE
) -> None:
    """Apply `migrations` and record each as Drizzle does, all or nothing."""
    with connection, connection.cursor() as cursor:
        ensure_bookkeeping(cursor, schema, table)
        for migration in migrations:
            for statement in migration.statements:
                cursor.execute(statement)
            cursor.execute(
                sql.SQL("INSERT INTO {} (hash, created_at) VALUES (%s, %s)").format(bookkeeping_table(schema, table)),
                (migration.hash, migration.when),
            )
