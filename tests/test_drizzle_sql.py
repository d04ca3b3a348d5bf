"""The plan's reading of a migration's SQL (plugins/module_utils/wfops_drizzle_sql.py): what ends or starts a
transaction, and what PostgreSQL refuses inside one, found the way its lexer reads the text - never inside comments,
literals, quoted identifiers or function bodies."""

from __future__ import annotations

import pytest

from wfops.drizzle import Migration, split_statements


def _kinds(sql: str) -> list[tuple[str | None, str | None]]:
    return [(s.transaction_control(), s.outside_transaction()) for s in split_statements(sql)]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("/* note */\n-- ALTER TABLE x; COMMIT;", []),
        ("/* outer /* inner; COMMIT; */ still a comment; */ SELECT 1;", [(None, None)]),
        ("COMMIT;", [("COMMIT", None)]),
        ("end;\nabort;", [("COMMIT", None), ("ROLLBACK", None)]),
        ("BEGIN;\nUPDATE t SET a = 'it''s; COMMIT';", [("BEGIN", None), (None, None)]),
        ("START TRANSACTION ISOLATION LEVEL SERIALIZABLE;", [("BEGIN", None)]),
        ("SAVEPOINT s; ROLLBACK TO SAVEPOINT s; RELEASE s;", [(None, None)] * 3),
        ("SELECT E'a\\';COMMIT;'; SELECT 'x''; ROLLBACK';", [(None, None)] * 2),
        ('SELECT "we;ird; COMMIT" FROM t;', [(None, None)]),
        ("DO $$ BEGIN CREATE TYPE x AS ENUM ('a'); EXCEPTION WHEN duplicate_object THEN null; END $$;", [(None, None)]),
        (
            "CREATE FUNCTION f() RETURNS trigger AS $BODY$ BEGIN NEW.x := $q$a;COMMIT;$q$; RETURN NEW; END; $BODY$"
            " LANGUAGE plpgsql;",
            [(None, None)],
        ),
        (
            "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2;"
            " END;\nCOMMIT;",
            [(None, None), ("COMMIT", None)],
        ),
        ("SELECT $1, a$b$c FROM t;", [(None, None)]),
        ('CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "i" ON "t" ("c");', [(None, "CREATE INDEX CONCURRENTLY")]),
        ('DROP INDEX CONCURRENTLY "i";', [(None, "DROP INDEX CONCURRENTLY")]),
        (
            "REINDEX TABLE CONCURRENTLY t; REINDEX DATABASE d;",
            [(None, "REINDEX CONCURRENTLY"), (None, "REINDEX DATABASE")],
        ),
        ("REFRESH MATERIALIZED VIEW CONCURRENTLY v;", [(None, None)]),  # allowed in a transaction
        ("VACUUM ANALYZE t; ALTER SYSTEM SET work_mem = '8MB';", [(None, "VACUUM"), (None, "ALTER SYSTEM")]),
        ("ALTER TYPE s ADD VALUE 'x' BEFORE 'y';", [(None, None)]),  # in a transaction since PostgreSQL 12
    ],
)
def test_a_statement_ends_starts_or_refuses_a_transaction_only_where_postgres_reads_it(
    sql: str, expected: list[tuple[str | None, str | None]]
) -> None:
    assert _kinds(sql) == expected


def test_a_migration_knows_its_commits_and_what_would_fail_where_it_stands() -> None:
    migration = Migration(
        0,
        "0031_index",
        1,
        "CREATE TABLE t (c int);--> statement-breakpoint\nCOMMIT;--> statement-breakpoint\n"
        "CREATE INDEX CONCURRENTLY i ON t (c);--> statement-breakpoint\nBEGIN;--> statement-breakpoint\n"
        "CREATE INDEX CONCURRENTLY j ON t (c); SELECT 1;",
    )
    assert migration.transaction_control == [(2, "COMMIT"), (4, "BEGIN")]
    assert migration.outside_transaction == [
        (3, "CREATE INDEX CONCURRENTLY", True),
        (5, "CREATE INDEX CONCURRENTLY", False),
    ]
    assert migration.commits == frozenset({2}) and not migration.atomic
