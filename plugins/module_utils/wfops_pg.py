"""PostgreSQL plumbing shared by wfops's modules: connecting from a DATABASE_URL, the RLS guard, and
changes made in short batches under lock_timeout with retries, so live traffic is never stalled for long.

Pure Python on psycopg2 with no Ansible import (the wrapper and the tests load it too).
"""

from __future__ import annotations

import time
import traceback
import urllib.parse
from collections.abc import Callable
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
