"""PostgreSQL plumbing shared by wfops's modules: the one connection rule (any libpq URL or conninfo, parsed by
libpq itself, every parameter kept, poolers refused, the password never in a message), the RLS guard, and
changes made in short batches under lock_timeout with retries, so live traffic is never stalled for long.

Pure Python on psycopg2 with no Ansible import (the wrapper and the tests load it too).
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import re
import threading
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


# Transaction poolers (Supabase's Supavisor/PgBouncer on 6543, or a URL flagged pgbouncer=true) cannot hold what a
# phase needs for its whole session: advisory locks, SET, multi-statement transactions.
POOLER_FLAG = re.compile(r"(?:^|[?&\s])pgbouncer\s*=\s*'?(true|1|yes)\b", re.IGNORECASE)
# Where a password can sit in a connection string libpq could not parse: the URL's user info (up to the first or
# the last "@": an unencoded "@" or "/" in it is a mistake libpq reports), or a password keyword (URL or key=value).
_URL_USERINFO = (re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)@"), re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://(.*)@"))
_KEYWORD_SECRET = re.compile(r"(?:^|[\s?&])(?:ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'|\S*)", re.IGNORECASE)
# A URL whose user info holds an unencoded "/", "?" or "#": libpq would read part of the password as the host or
# path and quote it back in its errors (what follows the colon is not a port, and an "@" comes later).
_UNENCODED_PASSWORD = re.compile(r"^postgres(?:ql)?://[^/?#@:]*:(?![0-9,]*[/?#])[^/?#@]*[/?#][^@]*@", re.IGNORECASE)
# What libpq quotes in a parse error may be part of the string; only parameter names are kept.
_QUOTED = re.compile(r'"([^"]*)"')
SECRET_KEYWORDS = ("password", "sslpassword")
CONNECT_DEFAULTS = {"connect_timeout": "10"}


def _secrets_in(text: str) -> list[str]:
    """Every spelling of a password the text may carry (raw, unquoted, percent-decoded), longest first."""
    found: list[str] = []
    for pattern in _URL_USERINFO:
        userinfo = pattern.match(text)
        if userinfo and ":" in userinfo.group(1):
            secret = userinfo.group(1).split(":", 1)[1]
            found += [secret, secret.split("@", 1)[0]]
    for match in _KEYWORD_SECRET.finditer(text):
        value = match.group(1)
        found += [value, value.split("&", 1)[0]]
        if value.startswith("'") and value.endswith("'") and len(value) >= 2:
            found.append(value[1:-1].replace("\\'", "'").replace("\\\\", "\\"))
    found += [urllib.parse.unquote(value) for value in found]
    return sorted({value for value in found if value}, key=len, reverse=True)


def mask_secrets(message: str, *sources: str) -> str:
    """The message with every password found in the sources (connection strings or their parameters) as ***."""
    for secret in sorted({s for source in sources for s in _secrets_in(source)}, key=len, reverse=True):
        message = message.replace(secret, "***")
    return message


@dataclass(frozen=True)
class ConnInfo:
    """A DATABASE_URL (postgresql://...) or key=value conninfo, as libpq itself reads it: every parameter kept
    unchanged (unix sockets, percent-encoded hosts, sslcrl, sslcert/sslkey, channel_binding, options, ...)."""

    params: dict[str, str]

    @property
    def secrets(self) -> list[str]:
        return [self.params[key] for key in SECRET_KEYWORDS if self.params.get(key)]

    def mask(self, message: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            message = message.replace(secret, "***")
        return message

    def connect_params(self, application_name: str) -> dict[str, str]:
        """psycopg2.connect keywords: the string's own parameters, over wfops's defaults (a setting given wins)."""
        return {**CONNECT_DEFAULTS, "application_name": application_name, **self.params}

    def describe(self) -> str:
        """`<dbname> at <host>:<port> as <user>`, as libpq would resolve them; never the password."""
        user = self.params.get("user") or os.environ.get("PGUSER") or getpass.getuser()
        dbname = self.params.get("dbname") or os.environ.get("PGDATABASE") or user
        host = self.params.get("host") or self.params.get("hostaddr") or os.environ.get("PGHOST") or ""
        port = self.params.get("port") or os.environ.get("PGPORT") or "5432"
        if not host or host.startswith(("/", "@")):
            where = f"the unix socket in {host or 'the default socket directory'} (port {port})"
        else:
            where = f"{host}:{port}"
        return f"{dbname} at {where} as {user}"

    def refuse_pooler(self, what: str = "locks, SET and transactions") -> None:
        ports = [p.strip() for p in (self.params.get("port") or "").split(",")]
        if str(POOLER_PORT) in ports:
            raise DatabaseError(
                f"the database URL points at a transaction pooler ({self.describe()}): {what} need a session "
                "connection; use Supabase's direct connection on port 5432"
            )


def parse_database_url(database_url: str) -> ConnInfo:
    """The connection string parsed by libpq (psycopg2.extensions.parse_dsn); a pooler or a string libpq cannot
    read is refused in one sentence that never contains the password."""
    from psycopg2 import ProgrammingError
    from psycopg2.extensions import parse_dsn

    text = database_url.strip()
    if POOLER_FLAG.search(text):
        raise DatabaseError(
            "the database URL is flagged pgbouncer=true, a transaction pooler: locks, SET and transactions need a "
            "session connection; use Supabase's direct connection on port 5432"
        )
    if _UNENCODED_PASSWORD.match(text):
        raise DatabaseError(
            "the database URL's password holds a '/', '?', '#' or '@' that is not percent-encoded, so libpq would read "
            "part of it as the host or the database: encode them (/ as %2F, ? as %3F, # as %23, @ as %40)"
        )
    try:
        params = {str(key): str(value) for key, value in parse_dsn(text).items()}
    except ProgrammingError as exc:
        reason = " ".join(str(exc).split()).removeprefix("invalid dsn: ")
        reason = _QUOTED.sub(lambda m: m.group(0) if re.fullmatch(r"[A-Za-z_]\w*|=", m.group(1)) else '"..."', reason)
        reason = mask_secrets(reason, text)
        raise DatabaseError(
            f"the database URL is not a connection string libpq can read ({reason}): use "
            "postgresql://user:password@host:5432/dbname?param=value or key=value pairs"
        ) from None
    info = ConnInfo(params)
    info.refuse_pooler()
    return info


def connect(database_url: str, application_name: str) -> Any:
    """A psycopg2 connection with every parameter of the string, or DatabaseError saying where and why."""
    import psycopg2

    info = parse_database_url(database_url)
    try:
        return psycopg2.connect(**info.connect_params(application_name))
    except psycopg2.OperationalError as exc:
        reason = info.mask(" ".join(str(exc).split()))
        raise DatabaseError(f"cannot reach the database {info.describe()}: {reason}") from None


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


# --------------------------------------------------------------------------- one writer at a time, and its owner

# pg_advisory_lock key held by every phase that writes the database (migrate, normalize, stats-repair, the
# rollback's restore) for its whole run: int8 of sha256("wfops:database-writer"). The host's backup tool computes
# the same key (files/weddingflo_backup.py, WRITER_LOCK_KEY; a test holds the two equal).
WRITER_LOCK_KEY = int.from_bytes(hashlib.sha256(b"wfops:database-writer").digest()[:8], "big", signed=True)
WRITER_LOCK_APPLICATION = "wfops-writer"


def advisory_lock_holder(cursor: Any, key: int) -> str:
    """Who holds the advisory lock `key` (pg_advisory_lock(bigint)): the session's application name, pid, address
    and since when (never a password)."""
    cursor.execute(
        "SELECT a.application_name, a.pid, a.backend_start, a.client_addr"
        " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
        " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s::bigint",
        (key,),
    )
    row = cursor.fetchone()
    if row is None:
        return "a session that has just ended"
    name, pid, since, address = row
    return f"{name or 'an unnamed session'} (pid {pid}, from {address or 'a local socket'}, since {since:%H:%M:%S})"


def writer_lock_holder(cursor: Any) -> str:
    """Who holds the writer lock."""
    return advisory_lock_holder(cursor, WRITER_LOCK_KEY)


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


class OwnedConnections:
    """The connections of a module that ends with its run (wfops_owner): each is told to abandon its statement when
    this process is gone, and each running statement is cancelled when the run stops. Workers add theirs as they
    open them."""

    def __init__(self) -> None:
        self.connections: list[Any] = []
        self._lock = threading.Lock()

    def add(self, connection: Any) -> Any:
        # PostgreSQL 14+ abandons (and rolls back) a statement whose client is gone even if this process is
        # killed outright (SIGKILL leaves no time to cancel).
        if connection.server_version >= 140000:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('client_connection_check_interval', '1000', false)")
            if not connection.autocommit:
                connection.commit()
        with self._lock:
            self.connections.append(connection)
        return connection

    def cancel(self, _why: str) -> None:
        with self._lock:
            connections = list(self.connections)
        for connection in connections:
            if not connection.closed:
                with contextlib.suppress(Exception):
                    connection.cancel()


def stop_with_owner(*connections: Any) -> OwnedConnections:
    """End this module with the run that started it (wfops_owner): first cancel every statement the
    connections run (those given, and those added to the answer later), so the server rolls the transaction back at
    once instead of finishing it for nobody. Queries wait in Python (psycopg2's wait_select), so a stop interrupts
    them there."""
    import psycopg2.extensions
    import psycopg2.extras
    from ansible.module_utils.wfops_owner import OwnerWatch

    psycopg2.extensions.set_wait_callback(psycopg2.extras.wait_select)
    owned = OwnedConnections()
    for connection in connections:
        owned.add(connection)
    OwnerWatch(owned.cancel).start()
    return owned
