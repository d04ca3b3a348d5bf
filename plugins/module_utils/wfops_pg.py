"""PostgreSQL plumbing shared by wfops's modules: connecting from a DATABASE_URL, the RLS guard, and
changes made in short batches under lock_timeout with retries, so live traffic is never stalled for long.

Pure Python on psycopg2 with no Ansible import (the wrapper and the tests load it too).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

POOLER_PORT = 6543
RETRYABLE = {"55P03": "lock not available", "40P01": "deadlock", "40001": "serialization failure"}


class DatabaseError(Exception):
    """A failure a person can act on; the message says what and where, never a password."""

    def __init__(self, message: str, **facts: Any) -> None:
        super().__init__(message)
        self.facts = facts


def psycopg2_missing() -> str | None:
    """The import error's traceback when psycopg2 is not installed on the host, else None."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return traceback.format_exc()
    return None


PSYCOPG2_HINT = "psycopg2 (Debian: python3-psycopg2)"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect_kwargs(database_url: str, application_name: str) -> dict[str, Any]:
    """psycopg2 connection keywords from DATABASE_URL; refuses Supabase's transaction pooler."""
    parsed = urllib.parse.urlsplit(database_url)
    if parsed.scheme not in ("postgres", "postgresql") or not parsed.hostname:
        raise DatabaseError("the database URL must look like postgresql://user:password@host:5432/dbname")
    options = dict(urllib.parse.parse_qsl(parsed.query))
    try:
        port = parsed.port or 5432
    except ValueError as exc:
        raise DatabaseError("the database URL has a port that is not a number") from exc
    if port == POOLER_PORT or options.get("pgbouncer", "").lower() == "true":
        raise DatabaseError(
            f"the database URL points at a transaction pooler ({parsed.hostname}:{port}): locks, SET and "
            "transactions need a session connection; use Supabase's direct connection on port 5432"
        )
    kwargs: dict[str, Any] = {
        "host": parsed.hostname,
        "port": port,
        "user": urllib.parse.unquote(parsed.username or ""),
        "dbname": urllib.parse.unquote(parsed.path.lstrip("/")) or "postgres",
        "application_name": application_name,
        "connect_timeout": 10,
    }
    if parsed.password is not None:
        kwargs["password"] = urllib.parse.unquote(parsed.password)
    for key in ("sslmode", "sslrootcert"):
        if key in options:
            kwargs[key] = options[key]
    return kwargs


def connect(database_url: str, application_name: str) -> Any:
    """A psycopg2 connection, or DatabaseError saying where it could not connect and why."""
    import psycopg2

    kwargs = connect_kwargs(database_url, application_name)
    try:
        return psycopg2.connect(**kwargs)
    except psycopg2.OperationalError as exc:
        reason = " ".join(str(exc).split())
        raise DatabaseError(
            f"cannot reach the database {kwargs['dbname']} at {kwargs['host']}:{kwargs['port']} as {kwargs['user']}: "
            f"{reason}"
        ) from None


def connection_lost(exc: BaseException) -> DatabaseError:
    """The server went away mid-change: say so, and what that means for the work done so far."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return DatabaseError(
        f"lost the connection to the database (was the server stopped or restarted?): {reason}; the batches "
        "committed before it stay, the one in flight was rolled back by the server; run the phase again"
    )


def tables_hidden_by_rls(cursor: Any, tables: list[str]) -> list[str]:
    """The tables on which the connected role is subject to row-level security (so UPDATEs see fewer rows)."""
    cursor.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
    if cursor.fetchone()[0]:
        return []
    cursor.execute(
        "SELECT c.relname, c.relforcerowsecurity, pg_has_role(current_user, c.relowner, 'USAGE')"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relname = ANY(%s) AND c.relrowsecurity",
        (list(tables),),
    )
    return sorted(name for name, forced, owner in cursor.fetchall() if forced or not owner)


def refuse_when_subject_to_rls(cursor: Any, tables: list[str]) -> None:
    hidden = tables_hidden_by_rls(cursor, tables)
    if hidden:
        cursor.execute("SELECT current_user")
        role = cursor.fetchone()[0]
        raise DatabaseError(
            f"the role {role} is subject to row-level security on {', '.join(hidden)}: every UPDATE would "
            "silently match only the rows its tenant setting allows (none, here) and report success; connect as a "
            "role with BYPASSRLS (on Supabase: postgres)",
            tables=hidden,
        )


@dataclass
class Limits:
    """How a change may touch a live database."""

    lock_timeout: str = "2s"
    statement_timeout: str = "5min"
    retries: int = 5
    retry_delay_s: float = 0.5
    pause_s: float = 0.0


@dataclass
class BatchStats:
    rows: int = 0
    batches: int = 0
    retries: int = 0
    max_batch_ms: float = 0.0
    returned: list[tuple[Any, ...]] = field(default_factory=list)


Tally = Callable[[list[tuple[Any, ...]]], int]


def execute_with_retries(
    connection: Any,
    sql: str,
    params: Any,
    limits: Limits,
    stats: BatchStats,
    keep_returned: int = 0,
    tally: Tally | None = None,
) -> int:
    """One statement in its own short transaction, retried when a lock, deadlock or serialization failure hits.

    With `tally`, the statement's rows go to it once the transaction committed, and it says how many rows changed.
    """
    for attempt in range(1, limits.retries + 2):
        started = time.monotonic()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", (limits.lock_timeout,))
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", (limits.statement_timeout,))
                cursor.execute(sql, params)
                rows = cursor.rowcount
                returned = cursor.fetchall() if tally is not None else []
                if keep_returned and cursor.description is not None:
                    wanted = keep_returned - len(stats.returned)
                    if wanted > 0:
                        stats.returned.extend(cursor.fetchmany(wanted))
            connection.commit()
        except Exception as exc:
            if getattr(connection, "closed", 0):
                raise connection_lost(exc) from None
            connection.rollback()
            code = getattr(exc, "pgcode", None)
            if code in RETRYABLE and attempt <= limits.retries:
                stats.retries += 1
                time.sleep(limits.retry_delay_s * attempt)
                continue
            if code in RETRYABLE:
                raise DatabaseError(
                    f"gave up after {attempt} attempts ({RETRYABLE[code]}, lock_timeout {limits.lock_timeout}): "
                    f"{' '.join(str(exc).split())}",
                    attempts=attempt,
                ) from exc
            raise
        if tally is not None:
            rows = tally(returned)
        stats.batches += 1
        stats.rows += max(rows, 0)
        stats.max_batch_ms = max(stats.max_batch_ms, round((time.monotonic() - started) * 1000, 1))
        return rows
    raise AssertionError("unreachable")


def relation_pages(cursor: Any, table: str) -> tuple[int, float]:
    """The table's current size in pages and its rows per page (from the planner's statistics)."""
    cursor.execute(
        "SELECT pg_relation_size(c.oid) / current_setting('block_size')::int, c.reltuples, c.relpages"
        " FROM pg_class c WHERE c.oid = %s::regclass",
        (quote_ident(table),),
    )
    pages, tuples, stat_pages = cursor.fetchone()
    density = (tuples / stat_pages) if stat_pages and tuples and tuples > 0 else 60.0
    return int(pages), max(density, 1.0)


def batched_change(
    connection: Any,
    *,
    table: str,
    statement: Callable[[str], str],
    params: Any = None,
    batch_rows: int,
    limits: Limits,
    progress: Callable[[str], None] | None = None,
    keep_returned: int = 0,
    tally: Tally | None = None,
    expected_rows: int = 0,
) -> BatchStats:
    """Run `statement(range_predicate)` over the table's physical pages in batches of about `batch_rows` rows.

    Ranges of ctid pages touch each page once (random UUID keys would touch most pages in every batch).
    Rows that concurrent updates moved behind the cursor, or into pages added meanwhile, are caught by a final
    pass over the whole table with the same predicate. `batch_rows` 0 runs one statement in one transaction.
    `expected_rows` (the rows counted beforehand) sizes the ranges when only some rows change, so that each batch
    still changes about `batch_rows` rows instead of scanning a few pages for a handful.
    """
    stats = BatchStats()
    connection.autocommit = False
    if batch_rows <= 0:
        execute_with_retries(connection, statement("TRUE"), params, limits, stats, keep_returned, tally)
        return stats
    with connection.cursor() as cursor:
        pages, density = relation_pages(cursor, table)
    connection.commit()
    per_page = min(density, expected_rows / max(pages, 1)) if expected_rows > 0 else density
    step = max(1, int(batch_rows / per_page))
    last_report = time.monotonic()
    for start in range(0, pages, step):
        predicate = f"t.ctid >= '({start},0)'::tid AND t.ctid < '({start + step},0)'::tid"
        execute_with_retries(connection, statement(predicate), params, limits, stats, keep_returned, tally)
        if progress and time.monotonic() - last_report >= 5:
            progress(f"{table}: pages {min(start + step, pages)}/{pages}, {stats.rows} rows changed")
            last_report = time.monotonic()
        if limits.pause_s:
            time.sleep(limits.pause_s)
    # The catch-up pass: normally finds nothing, so it is a scan holding no row locks for long.
    execute_with_retries(connection, statement("TRUE"), params, limits, stats, keep_returned, tally)
    return stats


# --------------------------------------------------------------------------- one writer at a time, and its owner

# pg_advisory_lock key held by every phase that writes the database (migrate, normalize, stats-repair, the
# rollback's restore) for its whole run: int8 of sha256("wfops:database-writer"). The host's backup tool computes
# the same key (files/weddingflo_backup.py, WRITER_LOCK_KEY; a test holds the two equal).
WRITER_LOCK_KEY = int.from_bytes(hashlib.sha256(b"wfops:database-writer").digest()[:8], "big", signed=True)
WRITER_LOCK_APPLICATION = "wfops-writer"


def writer_lock_holder(cursor: Any) -> str:
    """Who holds the writer lock: the session's application name, pid and since when (never a password)."""
    cursor.execute(
        "SELECT a.application_name, a.pid, a.backend_start, a.client_addr"
        " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted"
        " AND ((l.classid::bigint << 32) | l.objid::bigint) = (%s::bigint & x'ffffffffffffffff'::bigint)",
        (WRITER_LOCK_KEY,),
    )
    row = cursor.fetchone()
    if row is None:
        return "a session that has just ended"
    name, pid, since, address = row
    return f"{name or 'an unnamed session'} (pid {pid}, from {address or 'a local socket'}, since {since:%H:%M:%S})"


@contextlib.contextmanager
def writer_lock(database_url: str, phase: str, wait_s: float = 60.0, writes: bool = True) -> Iterator[Any]:
    """The database's writer lock, held in a session of its own for as long as the block runs.

    Session-level and on its own connection: it survives the phase's commits and rollbacks, and it is released
    by the server the moment this process ends, however it ends. Waits up to `wait_s` for another writer (a
    release's normalize, a restore), then names it. A run that `writes` nothing (check mode) takes none.
    """
    if not writes:
        yield None
        return
    connection = connect(database_url, f"{WRITER_LOCK_APPLICATION} {phase}"[:63])
    try:
        connection.autocommit = True
        deadline = time.monotonic() + wait_s
        with connection.cursor() as cursor:
            while True:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", (WRITER_LOCK_KEY,))
                if cursor.fetchone()[0]:
                    break
                if time.monotonic() >= deadline:
                    raise DatabaseError(
                        f"another phase is writing this database: {writer_lock_holder(cursor)} holds wfops's "
                        f"writer lock (waited {wait_s:g}s); {phase} runs once it has finished"
                    )
                time.sleep(0.5)
        yield connection
    finally:
        connection.close()


def stop_with_owner(*connections: Any) -> Any:
    """End this module with the run that started it (wfops_owner): first cancel every statement the
    connections run, so the server rolls the transaction back at once instead of finishing it for nobody.
    Queries wait in Python (psycopg2's wait_select), so a stop interrupts them there."""
    import psycopg2.extensions
    import psycopg2.extras
    from ansible.module_utils.wfops_owner import OwnerWatch

    psycopg2.extensions.set_wait_callback(psycopg2.extras.wait_select)
    for connection in connections:
        # PostgreSQL 14+ abandons (and rolls back) a statement whose client is gone even if this process is
        # killed outright (SIGKILL leaves no time to cancel).
        if connection is not None and connection.server_version >= 140000:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('client_connection_check_interval', '1000', false)")
            if not connection.autocommit:
                connection.commit()

    def cancel(_why: str) -> None:
        for connection in connections:
            if connection is not None and not connection.closed:
                with contextlib.suppress(Exception):
                    connection.cancel()

    return OwnerWatch(cancel).start()
