"""The runbook's data normalisation (phase 4) and emergency stats repair (phase 9), safe on a live database.

Each section changes rows in short batches over physical page ranges (see wfops_pg.batched_change), counts
exactly what it would change in check mode with the same predicate, and changes nothing on a second run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.wfops_pg import (
    BatchStats,
    DatabaseError,
    Limits,
    batched_change,
    execute_with_retries,
    quote_ident,
    refuse_when_subject_to_rls,
)

SECTIONS = ("rsvp", "guest_side", "company_id", "not_null", "client_stats")

# The runbook's emergency SQL (phase 9), per client: the real guest count and budget total as text.
CLIENT_GUEST_COUNT_SQL = "(SELECT COUNT(*)::INTEGER FROM guests g WHERE g.client_id = t.id)"
CLIENT_BUDGET_SQL = (
    "(SELECT COALESCE(SUM(CAST(b.estimated_cost AS NUMERIC)), 0)::TEXT FROM budget b WHERE b.client_id = t.id)"
)


@dataclass
class Options:
    rsvp_map: dict[str, str] = field(default_factory=dict)
    rsvp_canonical: list[str] = field(default_factory=list)
    rsvp_fallback: str = "pending"
    side_map: dict[str, str] = field(default_factory=dict)
    side_canonical: list[str] = field(default_factory=list)
    company_id_tables: list[dict[str, str]] = field(default_factory=list)
    not_null_columns: list[dict[str, str]] = field(default_factory=list)
    batch_size: int = 5000
    touch_updated_at: bool = True
    sample_size: int = 5
    limits: Limits = field(default_factory=Limits)


@dataclass
class SectionResult:
    section: str
    check_mode: bool
    rows: int = 0
    detail: list[dict[str, Any]] = field(default_factory=list)
    batches: int = 0
    retries: int = 0
    max_batch_ms: float = 0.0

    def absorb(self, stats: BatchStats) -> None:
        self.rows += stats.rows
        self.batches += stats.batches
        self.retries += stats.retries
        self.max_batch_ms = max(self.max_batch_ms, stats.max_batch_ms)


def tables_of(section: str, options: Options) -> list[str]:
    if section in ("rsvp", "guest_side"):
        return ["guests"]
    if section == "company_id":
        return sorted(
            {e["table"] for e in options.company_id_tables} | {e["parent"] for e in options.company_id_tables}
        )
    if section == "not_null":
        return sorted({e["table"] for e in options.not_null_columns})
    return ["clients", "guests", "budget"]


def _mapped_value(column: str, mapping: dict[str, str], canonical: list[str], fallback_sql: str) -> tuple[str, dict]:
    """SQL for the canonical value of t.<column>: mapped case-insensitively (trimmed), as the app's own code does."""
    sources = [*canonical, *mapping]
    targets = [*canonical, *mapping.values()]
    sql = (
        f"coalesce((SELECT m.target FROM unnest(%(sources)s::text[], %(targets)s::text[]) AS m(source, target)"
        f" WHERE m.source = lower(btrim(t.{quote_ident(column)}))), {fallback_sql})"
    )
    return sql, {"sources": [s.lower() for s in sources], "targets": targets}


def _touch(options: Options) -> str:
    return ", updated_at = now()" if options.touch_updated_at else ""


def _value_section(
    connection: Any,
    section: str,
    column: str,
    mapping: dict[str, str],
    canonical: list[str],
    fallback: tuple[str, dict[str, Any]],
    options: Options,
    check_mode: bool,
    progress: Callable[[str], None] | None,
) -> SectionResult:
    target, params = _mapped_value(column, mapping, canonical, fallback[0])
    params.update(fallback[1])
    col = quote_ident(column)
    result = SectionResult(section, check_mode)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT t.{col}, {target}, count(*) FROM guests AS t WHERE t.{col} IS DISTINCT FROM {target}"
            " GROUP BY 1, 2 ORDER BY 3 DESC",
            params,
        )
        result.detail = [{"from": old, "to": new, "rows": int(n)} for old, new, n in cursor.fetchall()]
    connection.commit()
    if check_mode:
        result.rows = sum(d["rows"] for d in result.detail)
        return result

    def statement(predicate: str) -> str:
        return (
            f"UPDATE guests AS t SET {col} = {target}{_touch(options)}"
            f" WHERE {predicate} AND t.{col} IS DISTINCT FROM {target}"
        )

    result.absorb(
        batched_change(
            connection,
            table="guests",
            statement=statement,
            params=params,
            batch_rows=options.batch_size,
            limits=options.limits,
            progress=progress,
        )
    )
    return result


def _company_id_section(
    connection: Any, options: Options, check_mode: bool, progress: Callable[[str], None] | None
) -> SectionResult:
    result = SectionResult("company_id", check_mode)
    for entry in options.company_id_tables:
        table, parent, key = (
            quote_ident(entry["table"]),
            quote_ident(entry["parent"]),
            quote_ident(entry["foreign_key"]),
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) FILTER (WHERE p.company_id IS NOT NULL), count(*) FILTER (WHERE p.company_id IS NULL)"
                f" FROM {table} AS t LEFT JOIN {parent} AS p ON p.id = t.{key} WHERE t.company_id IS NULL"
            )
            fixable, unfixable = (int(v) for v in cursor.fetchone())
        connection.commit()
        row = {"table": entry["table"], "parent": entry["parent"], "rows": fixable, "without_parent_company": unfixable}
        if not check_mode:

            def statement(predicate: str, table: str = table, parent: str = parent, key: str = key) -> str:
                return (
                    f"UPDATE {table} AS t SET company_id = p.company_id{_touch(options)} FROM {parent} AS p"
                    f" WHERE {predicate} AND t.{key} = p.id AND t.company_id IS NULL AND p.company_id IS NOT NULL"
                )

            stats = batched_change(
                connection,
                table=entry["table"],
                statement=statement,
                batch_rows=options.batch_size,
                limits=options.limits,
                progress=progress,
            )
            row["rows"] = stats.rows
            result.absorb(stats)
        else:
            result.rows += fixable
        result.detail.append(row)
    return result


def _not_null_section(connection: Any, options: Options, check_mode: bool) -> SectionResult:
    """SET NOT NULL without a long ACCESS EXCLUSIVE scan: a NOT VALID CHECK, validated (no write lock), lets
    PostgreSQL skip the scan; each step under lock_timeout with retries. NULLs left are reported, not fatal."""
    result = SectionResult("not_null", check_mode)
    for entry in options.not_null_columns:
        table, column = entry["table"], entry["column"]
        qt, qc = quote_ident(table), quote_ident(column)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT a.attnotnull FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attname = %s",
                (qt, column),
            )
            found = cursor.fetchone()
            if found is None:
                raise DatabaseError(f"{table}.{column} does not exist (normalize_not_null_columns)")
            cursor.execute(f"SELECT count(*) FROM {qt} WHERE {qc} IS NULL")
            nulls = int(cursor.fetchone()[0])
            examples: list[str] = []
            if nulls:
                cursor.execute(f"SELECT id::text FROM {qt} WHERE {qc} IS NULL ORDER BY id LIMIT 5")
                examples = [r[0] for r in cursor.fetchall()]
        connection.commit()
        row: dict[str, Any] = {"table": table, "column": column, "nulls": nulls}
        if found[0]:
            row["status"] = "already NOT NULL"
        elif check_mode and nulls and _left_after_backfill(connection, table, column, options) == 0:
            # The company_id section runs first and fills every one of these.
            row["status"] = "would SET NOT NULL"
            row["nulls_after_backfill"] = 0
        elif nulls:
            row.update(status="NULLs remain", examples=examples)
        elif check_mode:
            row["status"] = "would SET NOT NULL"
        else:
            row["status"] = _set_not_null(connection, table, column, options.limits)
            if row["status"] == "SET NOT NULL":
                result.rows += 1
        result.detail.append(row)
    if check_mode:
        result.rows = sum(1 for row in result.detail if row["status"] == "would SET NOT NULL")
    return result


def _left_after_backfill(connection: Any, table: str, column: str, options: Options) -> int | None:
    """NULL company_ids the company_id section cannot fill (no parent, or a parent without company), or None."""
    entry = next((e for e in options.company_id_tables if e["table"] == table), None)
    if column != "company_id" or entry is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {quote_ident(table)} AS t LEFT JOIN {quote_ident(entry['parent'])} AS p"
            f" ON p.id = t.{quote_ident(entry['foreign_key'])} WHERE t.company_id IS NULL AND p.company_id IS NULL"
        )
        left = int(cursor.fetchone()[0])
    connection.commit()
    return left


def _set_not_null(connection: Any, table: str, column: str, limits: Limits) -> str:
    qt, qc = quote_ident(table), quote_ident(column)
    constraint = quote_ident(f"{table}_{column}_not_null"[:63])
    stats = BatchStats()
    connection.autocommit = False
    execute_with_retries(connection, f"ALTER TABLE {qt} DROP CONSTRAINT IF EXISTS {constraint}", None, limits, stats)
    execute_with_retries(
        connection,
        f"ALTER TABLE {qt} ADD CONSTRAINT {constraint} CHECK ({qc} IS NOT NULL) NOT VALID",
        None,
        limits,
        stats,
    )
    try:
        execute_with_retries(connection, f"ALTER TABLE {qt} VALIDATE CONSTRAINT {constraint}", None, limits, stats)
    except Exception as exc:
        if getattr(exc, "pgcode", None) != "23514":  # a NULL arrived meanwhile
            raise
        execute_with_retries(connection, f"ALTER TABLE {qt} DROP CONSTRAINT {constraint}", None, limits, stats)
        return "NULLs arrived during validation"
    execute_with_retries(connection, f"ALTER TABLE {qt} ALTER COLUMN {qc} SET NOT NULL", None, limits, stats)
    execute_with_retries(connection, f"ALTER TABLE {qt} DROP CONSTRAINT {constraint}", None, limits, stats)
    return "SET NOT NULL"


def _client_stats_section(
    connection: Any, options: Options, check_mode: bool, progress: Callable[[str], None] | None
) -> SectionResult:
    result = SectionResult("client_stats", check_mode)
    drift = (
        f"t.deleted_at IS NULL AND (t.guest_count IS DISTINCT FROM {CLIENT_GUEST_COUNT_SQL}"
        f" OR t.budget IS DISTINCT FROM {CLIENT_BUDGET_SQL})"
    )
    sample = max(options.sample_size, 0)
    if check_mode:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM clients AS t WHERE {drift}")
            result.rows = int(cursor.fetchone()[0])
            cursor.execute(
                f"SELECT t.id::text, t.guest_count, {CLIENT_GUEST_COUNT_SQL}, t.budget, {CLIENT_BUDGET_SQL}"
                f" FROM clients AS t WHERE {drift} ORDER BY t.id LIMIT %s",
                (sample,),
            )
            rows = cursor.fetchall()
        connection.commit()
    else:

        def statement(predicate: str) -> str:
            return (
                "WITH s AS ("
                f" SELECT t.id, t.guest_count AS old_count, t.budget AS old_budget, {CLIENT_GUEST_COUNT_SQL} AS cnt,"
                f" {CLIENT_BUDGET_SQL} AS total FROM clients AS t WHERE {predicate} AND {drift})"
                f" UPDATE clients AS c SET guest_count = s.cnt, budget = s.total{_touch(options)}"
                " FROM s WHERE c.id = s.id AND c.deleted_at IS NULL"
                " AND (c.guest_count IS DISTINCT FROM s.cnt OR c.budget IS DISTINCT FROM s.total)"
                " RETURNING c.id::text, s.old_count, s.cnt, s.old_budget, s.total"
            )

        stats = batched_change(
            connection,
            table="clients",
            statement=statement,
            batch_rows=options.batch_size,
            limits=options.limits,
            progress=progress,
            keep_returned=sample,
        )
        result.absorb(stats)
        rows = stats.returned
    result.detail = [
        {"client_id": cid, "guest_count": f"{old} -> {new}", "budget": f"{old_b} -> {new_b}"}
        for cid, old, new, old_b, new_b in rows
    ]
    return result


def normalize_section(
    connection: Any,
    section: str,
    options: Options,
    *,
    check_mode: bool,
    progress: Callable[[str], None] | None = None,
) -> SectionResult:
    """Run (or, in check mode, count) one section; refuses when RLS would hide rows from the connected role."""
    if section not in SECTIONS:
        raise DatabaseError(f"unknown normalisation section {section!r}; the sections are {', '.join(SECTIONS)}")
    connection.autocommit = False
    with connection.cursor() as cursor:
        refuse_when_subject_to_rls(cursor, tables_of(section, options))
    connection.commit()
    if section == "rsvp":
        # Anything not canonical and not mapped becomes the fallback (the runbook's catch-all: pending).
        return _value_section(
            connection,
            section,
            "rsvp_status",
            options.rsvp_map,
            options.rsvp_canonical,
            ("%(fallback)s", {"fallback": options.rsvp_fallback}),
            options,
            check_mode,
            progress,
        )
    if section == "guest_side":
        # The runbook maps the legacy sides only: any other value (or NULL) is left as it is.
        return _value_section(
            connection,
            section,
            "guest_side",
            options.side_map,
            options.side_canonical,
            ("t.guest_side", {}),
            options,
            check_mode,
            progress,
        )
    if section == "company_id":
        return _company_id_section(connection, options, check_mode, progress)
    if section == "not_null":
        return _not_null_section(connection, options, check_mode)
    return _client_stats_section(connection, options, check_mode, progress)
