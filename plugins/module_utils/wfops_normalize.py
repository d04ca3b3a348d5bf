"""The runbook's data normalisation (phase 4) and emergency stats repair (phase 9), safe on a live database.

Each section changes rows in short batches over physical page ranges, on several connections at once (see
wfops_batches.paged_change), counts exactly what it would change in check mode with the same predicate, and changes
nothing on a second run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.wfops_batches import PagedChange, Workers, paged_change
from ansible.module_utils.wfops_pg import (
    BatchStats,
    DatabaseError,
    Limits,
    execute_with_retries,
    quote_ident,
    refuse_when_subject_to_rls,
)

SECTIONS = ("rsvp", "guest_side", "company_id", "not_null", "client_stats")
# undefined_column, undefined_table: what a dry run meets before the migrations it plans have run.
SCHEMA_NOT_YET = ("42703", "42P01")

# Clients recounted per statement at most: each recount reads the client's guests and budget rows (~50 + ~10 in
# production), so 500 keep a statement's row locks on clients to a few hundred milliseconds.
CLIENTS_PER_BATCH = 500

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
    # How long a NOT NULL step may wait for its ACCESS EXCLUSIVE lock: the app's writes queue behind it meanwhile.
    ddl_lock_timeout: str = "50ms"
    workers: Workers = field(default_factory=Workers)


@dataclass
class SectionResult:
    section: str
    check_mode: bool
    rows: int = 0
    detail: list[dict[str, Any]] = field(default_factory=list)
    batches: int = 0
    retries: int = 0
    max_batch_ms: float = 0.0
    note: str = ""

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


@dataclass
class ValueColumn:
    """One value section of `guests`: the column and the SQL (with its parameters) of its canonical value."""

    section: str
    column: str
    target: str
    params: dict[str, Any]

    @property
    def quoted(self) -> str:
        return quote_ident(self.column)


def _mapped_value(
    section: str, column: str, mapping: dict[str, str], canonical: list[str], fallback_sql: str
) -> ValueColumn:
    """The canonical value of t.<column>: mapped case-insensitively (trimmed), as the app's own code does.

    A CASE over literals costs a comparison or two per row (a lookup subquery per row costs several times that,
    and it is evaluated in both the WHERE and the SET).
    """
    pairs = [(value, value) for value in canonical] + list(mapping.items())
    params: dict[str, Any] = {}
    arms = []
    for n, (source, target) in enumerate(pairs):
        params[f"{section}_s{n}"], params[f"{section}_t{n}"] = source.lower(), target
        arms.append(f"WHEN %({section}_s{n})s THEN %({section}_t{n})s")
    col = quote_ident(column)
    sql = f"(CASE lower(btrim(t.{col})) {' '.join(arms)} ELSE {fallback_sql} END)" if arms else fallback_sql
    return ValueColumn(section, column, sql, params)


def _touch(options: Options) -> str:
    return ", updated_at = now()" if options.touch_updated_at else ""


def value_columns(sections: list[str], options: Options) -> list[ValueColumn]:
    """The value sections asked for, in order: rsvp (anything unknown becomes the runbook's catch-all) and
    guest_side (the runbook maps the legacy sides only: any other value, or NULL, is left as it is).

    guests' company_id backfill stays a pass of its own: as a third column of this pass, its per-row parent lookup
    made the pass three times slower (measured at 1M guests) than the two passes."""
    columns = []
    if "rsvp" in sections:
        column = _mapped_value("rsvp", "rsvp_status", options.rsvp_map, options.rsvp_canonical, "%(rsvp_fallback)s")
        column.params["rsvp_fallback"] = options.rsvp_fallback
        columns.append(column)
    if "guest_side" in sections:
        columns.append(
            _mapped_value("guest_side", "guest_side", options.side_map, options.side_canonical, "t.guest_side")
        )
    return columns


def _value_sections(
    connection: Any,
    columns: list[ValueColumn],
    options: Options,
    check_mode: bool,
    progress: Callable[[str], None] | None,
) -> list[SectionResult]:
    """The value sections in one pass over `guests`: each changed row gets one new version, not one per section.

    Every batch updates its rows through a self-join on ctid and returns their values before and after, so the
    report counts exactly what changed. A row a concurrent write changed between the statement's scan and its
    update has a new ctid by then, so the batch skips it; the catch-up finds it again by id (locking the rows first
    instead, FOR NO KEY UPDATE, re-reads them at their newest version, but cost ~20% more at 1M guests on every
    batch). In check mode one scan counts the same predicates.
    """
    params: dict[str, Any] = {}
    for column in columns:
        params.update(column.params)
    cols = [c.quoted for c in columns]
    differs = " OR ".join(f"t.{c.quoted} IS DISTINCT FROM {c.target}" for c in columns)
    results = [SectionResult(c.section, check_mode) for c in columns]
    if check_mode:
        values = ", ".join(f"t.{c.quoted}, {c.target}" for c in columns)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {values}, count(*) FROM guests AS t WHERE {differs} GROUP BY {values}", params)
            groups = cursor.fetchall()
        connection.commit()
        _tally_values(results, groups)
        return results

    before_after = ", ".join(f"o.{col} AS b{n}, t.{col} AS a{n}" for n, col in enumerate(cols))
    pairs = ", ".join(f"b{n}, a{n}" for n in range(len(cols)))
    assignments = ", ".join(f"{c.quoted} = {c.target}" for c in columns)

    def statement(predicate: str) -> str:
        return (
            f"WITH o AS MATERIALIZED (SELECT t.ctid AS row_id, {', '.join(f't.{col}' for col in cols)}"
            f" FROM guests AS t WHERE {predicate} AND ({differs})),"
            f" changed AS (UPDATE guests AS t SET {assignments}{_touch(options)} FROM o"
            f" WHERE t.ctid = o.row_id AND ({differs}) RETURNING {before_after})"
            f" SELECT {pairs}, count(*) FROM changed GROUP BY {pairs}"
        )

    def tally(rows: list[tuple[Any, ...]]) -> int:
        _tally_values(results, rows)
        return sum(int(row[-1]) for row in rows)

    change = PagedChange(
        table="guests",
        statement=statement,
        pending=f"SELECT t.id FROM guests AS t WHERE {differs}",
        params=params,
        tally=tally,
    )
    stats = paged_change(
        connection,
        change,
        batch_rows=options.batch_size,
        limits=options.limits,
        workers=options.workers,
        progress=progress,
    )
    for result in results:
        result.batches, result.retries, result.max_batch_ms = stats.batches, stats.retries, stats.max_batch_ms
    return results


def _tally_values(results: list[SectionResult], groups: list[tuple[Any, ...]]) -> None:
    """Add (before, after, ..., rows) groups to each section's per-value detail, biggest first, and its rows."""
    for n, result in enumerate(results):
        counts = {(d["from"], d["to"]): d["rows"] for d in result.detail}
        for group in groups:
            before, after, rows = group[2 * n], group[2 * n + 1], int(group[-1])
            if before != after:
                counts[(before, after)] = counts.get((before, after), 0) + rows
        result.detail = [
            {"from": old, "to": new, "rows": rows}
            for (old, new), rows in sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
        ]
        result.rows = sum(counts.values())


def _company_id_section(
    connection: Any,
    options: Options,
    check_mode: bool,
    progress: Callable[[str], None] | None,
) -> SectionResult:
    """Each child table takes company_id from its parent. A table with nothing to fill is only counted; one with at
    most a batch to fill gets one statement (holding no more row locks than a batch)."""
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
        if check_mode:
            result.rows += fixable
        elif fixable:
            fillable = f"t.{key} = p.id AND t.company_id IS NULL AND p.company_id IS NOT NULL"

            def statement(predicate: str, table: str = table, parent: str = parent, fillable: str = fillable) -> str:
                return (
                    f"UPDATE {table} AS t SET company_id = p.company_id{_touch(options)} FROM {parent} AS p"
                    f" WHERE {predicate} AND {fillable}"
                )

            change = PagedChange(
                table=entry["table"],
                statement=statement,
                pending=f"SELECT t.id FROM {table} AS t JOIN {parent} AS p ON {fillable}",
                expected_rows=fixable,
            )
            stats = paged_change(
                connection,
                change,
                batch_rows=0 if fixable <= options.batch_size else options.batch_size,
                limits=options.limits,
                workers=options.workers,
                progress=progress,
            )
            row["rows"] = stats.rows
            result.absorb(stats)
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
            row["status"] = _set_not_null(connection, table, column, options)
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


def _ddl(connection: Any, table: str, statement: str, options: Options, stats: BatchStats) -> None:
    """One NOT NULL step in its own transaction. It first takes SHARE UPDATE EXCLUSIVE, which the app's writes do not
    wait for, under the usual lock_timeout: an autovacuum of the table (likely right after the backfills) holds that
    lock and cancels itself for a waiter after deadlock_timeout (1 s). Waiting for the ACCESS EXCLUSIVE lock in the
    statement itself instead would queue every write of the app behind the wait, for that second (measured: a 988 ms
    stall of the benchmark's writer at 3M guests). The statement then waits at most `ddl_lock_timeout`."""
    sql = (
        f"LOCK TABLE {quote_ident(table)} IN SHARE UPDATE EXCLUSIVE MODE;"
        " SELECT set_config('lock_timeout', %(ddl_lock_timeout)s, true); " + statement.replace("%", "%%")
    )
    execute_with_retries(connection, sql, {"ddl_lock_timeout": options.ddl_lock_timeout}, options.limits, stats)


def _set_not_null(connection: Any, table: str, column: str, options: Options) -> str:
    qt, qc = quote_ident(table), quote_ident(column)
    constraint = quote_ident(f"{table}_{column}_not_null"[:63])
    stats = BatchStats()
    connection.autocommit = False
    _ddl(connection, table, f"ALTER TABLE {qt} DROP CONSTRAINT IF EXISTS {constraint}", options, stats)
    _ddl(
        connection,
        table,
        f"ALTER TABLE {qt} ADD CONSTRAINT {constraint} CHECK ({qc} IS NOT NULL) NOT VALID",
        options,
        stats,
    )
    try:
        # SHARE UPDATE EXCLUSIVE only: the scan does not hold up the app's writes.
        execute_with_retries(
            connection, f"ALTER TABLE {qt} VALIDATE CONSTRAINT {constraint}", None, options.limits, stats
        )
    except Exception as exc:
        if getattr(exc, "pgcode", None) != "23514":  # a NULL arrived meanwhile
            raise
        _ddl(connection, table, f"ALTER TABLE {qt} DROP CONSTRAINT {constraint}", options, stats)
        return "NULLs arrived during validation"
    _ddl(connection, table, f"ALTER TABLE {qt} ALTER COLUMN {qc} SET NOT NULL", options, stats)
    _ddl(connection, table, f"ALTER TABLE {qt} DROP CONSTRAINT {constraint}", options, stats)
    return "SET NOT NULL"


def _drifted_clients(connection: Any) -> list[str]:
    """Ids of the live clients whose cached stats differ from the data: one aggregate pass over guests and budget
    (the per-client subqueries of the runbook's SQL cost an index scan per client, twice)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH g AS (SELECT client_id, count(*)::INTEGER AS n FROM guests GROUP BY client_id),"
            " b AS (SELECT client_id, COALESCE(SUM(CAST(estimated_cost AS NUMERIC)), 0)::TEXT AS total"
            " FROM budget GROUP BY client_id)"
            " SELECT t.id::text FROM clients AS t LEFT JOIN g ON g.client_id = t.id LEFT JOIN b ON b.client_id = t.id"
            " WHERE t.deleted_at IS NULL AND (t.guest_count IS DISTINCT FROM COALESCE(g.n, 0)"
            " OR t.budget IS DISTINCT FROM COALESCE(b.total, '0')) ORDER BY t.id"
        )
        ids = [row[0] for row in cursor.fetchall()]
    connection.commit()
    return ids


def _client_stats_section(
    connection: Any, options: Options, check_mode: bool, progress: Callable[[str], None] | None
) -> SectionResult:
    """The drifted clients found in one pass, then corrected in batches of ids with the runbook's own SQL
    (which checks the drift again, so a client the app corrected meanwhile is left alone)."""
    result = SectionResult("client_stats", check_mode)
    drift = (
        f"t.deleted_at IS NULL AND (t.guest_count IS DISTINCT FROM {CLIENT_GUEST_COUNT_SQL}"
        f" OR t.budget IS DISTINCT FROM {CLIENT_BUDGET_SQL})"
    )
    sample = max(options.sample_size, 0)
    ids = _drifted_clients(connection)
    if check_mode:
        result.rows = len(ids)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT t.id::text, t.guest_count, {CLIENT_GUEST_COUNT_SQL}, t.budget, {CLIENT_BUDGET_SQL}"
                " FROM clients AS t WHERE t.id = ANY(%s::uuid[]) ORDER BY t.id",
                (ids[:sample],),
            )
            rows = cursor.fetchall()
        connection.commit()
    else:
        sql = (
            "WITH s AS ("
            f" SELECT t.id, t.guest_count AS old_count, t.budget AS old_budget, {CLIENT_GUEST_COUNT_SQL} AS cnt,"
            f" {CLIENT_BUDGET_SQL} AS total FROM clients AS t WHERE t.id = ANY(%s::uuid[]) AND {drift})"
            f" UPDATE clients AS c SET guest_count = s.cnt, budget = s.total{_touch(options)}"
            " FROM s WHERE c.id = s.id AND c.deleted_at IS NULL"
            " AND (c.guest_count IS DISTINCT FROM s.cnt OR c.budget IS DISTINCT FROM s.total)"
            " RETURNING c.id::text, s.old_count, s.cnt, s.old_budget, s.total"
        )
        stats = BatchStats()
        step = min(options.batch_size, CLIENTS_PER_BATCH) if options.batch_size > 0 else max(len(ids), 1)
        for start in range(0, len(ids), step):
            execute_with_retries(connection, sql, (ids[start : start + step],), options.limits, stats, sample)
            if progress:
                progress(f"clients: {min(start + step, len(ids))}/{len(ids)} drifted, {stats.rows} corrected")
        result.absorb(stats)
        rows = stats.returned
    result.detail = [
        {"client_id": cid, "guest_count": f"{old} -> {new}", "budget": f"{old_b} -> {new_b}"}
        for cid, old, new, old_b, new_b in rows
    ]
    return result


def normalize_sections(
    connection: Any,
    sections: list[str],
    options: Options,
    *,
    check_mode: bool,
    progress: Callable[[str], None] | None = None,
) -> list[SectionResult]:
    """Run (or, in check mode, count) the sections in order, the value sections of `guests` in one pass where the
    first of them stands; refuses when RLS would hide rows from the connected role."""
    unknown = [section for section in sections if section not in SECTIONS]
    if unknown:
        raise DatabaseError(f"unknown normalisation section {unknown[0]!r}; the sections are {', '.join(SECTIONS)}")
    connection.autocommit = False
    with connection.cursor() as cursor:
        refuse_when_subject_to_rls(cursor, sorted({t for section in sections for t in tables_of(section, options)}))
    connection.commit()
    done: dict[str, SectionResult] = {}
    for section in sections:
        if section in done:
            continue
        try:
            done.update(_run_section(connection, section, sections, options, check_mode, progress))
        except Exception as exc:
            # A dry-run release counts before its migrations ran: a column or table they add is not there yet.
            if not check_mode or getattr(exc, "pgcode", None) not in SCHEMA_NOT_YET:
                raise
            connection.rollback()
            reason = " ".join(str(exc).split())
            done[section] = SectionResult(
                section, True, note=f"cannot be counted before the pending migrations are applied: {reason}"
            )
    return [done[section] for section in sections]


def _run_section(
    connection: Any,
    section: str,
    sections: list[str],
    options: Options,
    check_mode: bool,
    progress: Callable[[str], None] | None,
) -> dict[str, SectionResult]:
    """One section's result by name (for rsvp or guest_side: every value section asked, from their one pass)."""
    if section in ("rsvp", "guest_side"):
        results = _value_sections(connection, value_columns(sections, options), options, check_mode, progress)
        return {result.section: result for result in results}
    if section == "company_id":
        return {section: _company_id_section(connection, options, check_mode, progress)}
    if section == "not_null":
        return {section: _not_null_section(connection, options, check_mode)}
    return {section: _client_stats_section(connection, options, check_mode, progress)}
