"""Drizzle's PostgreSQL migrations, applied exactly as drizzle-orm's migrator records them, with its gaps closed.

Kept (drizzle-orm src/migrator.ts + src/pg-core/dialect.ts): the journal's entries in order, `<tag>.sql` split on
`--> statement-breakpoint`, hash = sha256 hex of the whole file, created_at = the journal's `when`, bookkeeping in
"<schema>"."<table>" (id serial, hash text, created_at bigint), pending = `when` greater than the newest applied
created_at, every pending migration and its bookkeeping row in one transaction.

Added: a session-level advisory lock for the whole run, lock_timeout/statement_timeout with bounded retries when a
lock cannot be had, and verification before anything runs (edited applied migrations, entries Drizzle would skip
silently, applied rows the journal does not know).

Pure Python on psycopg2; its only Ansible import is its sibling wfops_pg, so the wfops wrapper and the tests can
load the same code (src/wfops/plugin_code.py).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible.module_utils.wfops_pg import DatabaseError, quote_ident

BREAKPOINT = "--> statement-breakpoint"
DEFAULT_SCHEMA = "drizzle"
DEFAULT_TABLE = "__drizzle_migrations"
# pg_advisory_lock key shared by every wfops migrate run: int8 of sha256("wfops:drizzle-migrate").
ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(b"wfops:drizzle-migrate").digest()[:8], "big", signed=True)
LOCK_NOT_AVAILABLE = "55P03"


class MigrationError(DatabaseError):
    """A migration failure a person can act on; the message says what and where."""


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

    def first_lines(self, count: int = 3) -> list[str]:
        lines = [line for line in self.sql_text.splitlines() if line.strip() and line.strip() != BREAKPOINT]
        return lines[:count]


def read_migrations(folder: Path) -> list[Migration]:
    """The folder's migrations in journal order (meta/_journal.json, then <tag>.sql)."""
    journal_path = Path(folder) / "meta" / "_journal.json"
    try:
        journal = journal_path.read_bytes().decode("utf-8")
    except FileNotFoundError as exc:
        raise MigrationError(f"{journal_path} not found: not a Drizzle migrations folder") from exc

    def sql_of(tag: str) -> str:
        path = Path(folder) / f"{tag}.sql"
        try:
            # Byte for byte, as drizzle-orm hashes it (no newline translation).
            return path.read_bytes().decode("utf-8")
        except FileNotFoundError as exc:
            raise MigrationError(f"{path} is in the journal but missing on disk") from exc

    return _parse_journal(journal, sql_of)


JOURNAL = "meta/_journal.json"


def migrations_from_files(files: dict[str, str], origin: str) -> list[Migration]:
    """The migrations of a folder given as {relative path: text} (meta/_journal.json and <tag>.sql)."""
    if JOURNAL not in files:
        raise MigrationError(f"{origin} has no {JOURNAL}: not a Drizzle migrations folder")

    def sql_of(tag: str) -> str:
        if f"{tag}.sql" not in files:
            raise MigrationError(f"{origin}/{tag}.sql is in the journal but missing")
        return files[f"{tag}.sql"]

    return _parse_journal(files[JOURNAL], sql_of)


def _parse_journal(journal_text: str, sql_of: Callable[[str], str]) -> list[Migration]:
    journal = json.loads(journal_text)
    return [
        Migration(int(entry["idx"]), str(entry["tag"]), int(entry["when"]), sql_of(str(entry["tag"])))
        for entry in journal.get("entries", [])
    ]


def write_migration_files(folder: Path, files: dict[str, str]) -> None:
    """The release's migrations kept on the host as the record of what was applied (each file written whole)."""
    for name, text in sorted(files.items()):
        target = (folder / name).resolve()
        if folder.resolve() not in target.parents:
            raise MigrationError(f"{name} is not a file inside the migrations folder")
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_bytes(text.encode("utf-8"))
        partial.chmod(0o644)
        partial.replace(target)


@dataclass(frozen=True)
class Bookkeeping:
    """Where Drizzle records applied migrations (drizzle.config's `migrations: {schema, table}`)."""

    schema: str = DEFAULT_SCHEMA
    table: str = DEFAULT_TABLE

    @property
    def qualified(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.table)}"

    def ensure(self, cursor: Any) -> None:
        """The schema and table Drizzle creates when they are missing (the same DDL)."""
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.schema)}")
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {self.qualified}"
            " (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)"
        )

    def exists(self, cursor: Any) -> bool:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (self.qualified,))
        return bool(cursor.fetchone()[0])

    def applied(self, cursor: Any) -> list[tuple[int, str, int | None]]:
        if not self.exists(cursor):
            return []
        cursor.execute(f"SELECT id, hash, created_at FROM {self.qualified} ORDER BY created_at, id")
        return [(int(i), str(h), None if c is None else int(c)) for i, h, c in cursor.fetchall()]

    def record(self, cursor: Any, migration: Migration) -> None:
        cursor.execute(
            f"INSERT INTO {self.qualified} (hash, created_at) VALUES (%s, %s)", (migration.hash, migration.when)
        )


@dataclass
class Finding:
    """A difference between the database's bookkeeping and the release's migrations folder."""

    kind: str  # edited | skipped | unknown
    tag: str | None
    when: int | None
    message: str
    applied_hash: str | None = None
    file_hash: str | None = None


def verify(migrations: list[Migration], applied: list[tuple[int, str, int | None]]) -> list[Finding]:
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


def pending_migrations(migrations: list[Migration], applied: list[tuple[int, str, int | None]]) -> list[Migration]:
    """Drizzle's rule: every entry whose `when` is greater than the newest applied created_at."""
    head = max((c for _, _, c in applied if c is not None), default=None)
    return [m for m in migrations if head is None or m.when > head]


def head_of(migrations: list[Migration], applied: list[tuple[int, str, int | None]]) -> dict[str, Any] | None:
    head = max((c for _, _, c in applied if c is not None), default=None)
    if head is None:
        return None
    tag = next((m.tag for m in migrations if m.when == head), None)
    return {"tag": tag, "created_at": head, "applied": len(applied)}


def plan_entry(migration: Migration) -> dict[str, Any]:
    return {
        "tag": migration.tag,
        "when": migration.when,
        "hash": migration.hash,
        "statements": len(migration.statements),
        "first_lines": migration.first_lines(),
    }


@dataclass
class Settings:
    lock_wait_s: float = 300.0
    lock_timeout: str = "5s"
    statement_timeout: str = "15min"
    retries: int = 5
    retry_delay_s: float = 2.0
    allow_drift: bool = False
    application_name: str = "wfops-migrate"


@dataclass
class Outcome:
    head_before: dict[str, Any] | None
    head_after: dict[str, Any] | None
    pending: list[dict[str, Any]]
    applied: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    lock_wait_s: float = 0.0
    check_mode: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.applied) or (self.check_mode and bool(self.pending))


def lock_holder(cursor: Any) -> str:
    cursor.execute(
        "SELECT a.pid, coalesce(a.application_name, ''), a.backend_start, coalesce(a.client_addr::text, 'local')"
        " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
        " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
        (ADVISORY_LOCK_KEY,),
    )
    row = cursor.fetchone()
    if row is None:
        return "a session that has since ended"
    pid, name, since, client = row
    return f"pid {pid} ({name or 'no application_name'}, from {client}), connected since {since.isoformat()}"


def acquire_lock(connection: Any, wait_s: float) -> float:
    """The session-level advisory lock, polled until `wait_s`; returns how long it took."""
    started = time.monotonic()
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
            if cursor.fetchone()[0]:
                return round(time.monotonic() - started, 3)
            if time.monotonic() - started >= wait_s:
                holder = lock_holder(cursor)
                raise MigrationError(
                    f"another migration run holds the migration lock: {holder}; waited {wait_s:g}s "
                    "(raise migrate_lock_wait, or stop that run)",
                    holder=holder,
                )
            time.sleep(min(0.5, max(wait_s / 20, 0.05)))


def _apply_once(connection: Any, pending: list[Migration], bookkeeping: Bookkeeping, settings: Settings) -> list[dict]:
    applied = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", (settings.lock_timeout,))
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", (settings.statement_timeout,))
        for migration in pending:
            started = time.monotonic()
            for number, statement in enumerate(migration.statements, start=1):
                try:
                    cursor.execute(statement)
                except Exception as exc:
                    exc.wfops_where = (migration.tag, number, statement)  # type: ignore[attr-defined]
                    raise
            bookkeeping.record(cursor, migration)
            applied.append(
                {"tag": migration.tag, "hash": migration.hash, "ms": round((time.monotonic() - started) * 1000, 1)}
            )
    return applied


def _sqlstate(exc: Exception) -> str | None:
    return getattr(exc, "pgcode", None)


def migrate(
    connection: Any,
    migrations: list[Migration],
    *,
    bookkeeping: Bookkeeping | None = None,
    settings: Settings | None = None,
    check_mode: bool = False,
    log: Any = None,
) -> Outcome:
    """Verify, then apply the pending migrations in one transaction, under the advisory lock."""
    bookkeeping = bookkeeping or Bookkeeping()
    settings = settings or Settings()
    connection.autocommit = True
    lock_wait = 0.0 if check_mode else acquire_lock(connection, settings.lock_wait_s)
    try:
        with connection.cursor() as cursor:
            if not check_mode:
                bookkeeping.ensure(cursor)
            applied_rows = bookkeeping.applied(cursor)
        findings = verify(migrations, applied_rows)
        pending = pending_migrations(migrations, applied_rows)
        outcome = Outcome(
            head_before=head_of(migrations, applied_rows),
            head_after=head_of(migrations, applied_rows),
            pending=[plan_entry(m) for m in pending],
            findings=[f.__dict__ for f in findings],
            lock_wait_s=lock_wait,
            check_mode=check_mode,
        )
        if findings and not settings.allow_drift:
            raise MigrationError(
                "the database and this release's migrations disagree, nothing was applied: "
                + "; ".join(f.message for f in findings),
                findings=outcome.findings,
            )
        if check_mode or not pending:
            return outcome
        connection.autocommit = False
        for attempt in range(1, settings.retries + 2):
            outcome.attempts = attempt
            try:
                outcome.applied = _apply_once(connection, pending, bookkeeping, settings)
                connection.commit()
                break
            except Exception as exc:
                if connection.closed:
                    raise MigrationError(
                        "lost the connection to the database while the migration transaction ran (was the server "
                        f"stopped or restarted?): {' '.join(str(exc).split())}; nothing was applied (an uncommitted "
                        "transaction ends with its session); run migrate again"
                    ) from None
                connection.rollback()
                where = getattr(exc, "wfops_where", None)
                if _sqlstate(exc) == LOCK_NOT_AVAILABLE and attempt <= settings.retries:
                    if log:
                        log(
                            f"attempt {attempt}: {where[0] if where else 'a migration'} could not get a lock within "
                            f"{settings.lock_timeout}; retrying in {settings.retry_delay_s:g}s"
                        )
                    time.sleep(settings.retry_delay_s * attempt)
                    continue
                message = " ".join(str(exc).split())
                if _sqlstate(exc) == LOCK_NOT_AVAILABLE:
                    raise MigrationError(
                        f"{where[0] if where else 'a migration'} could not get a lock within {settings.lock_timeout} "
                        f"in {attempt} attempts; nothing was applied (the transaction was rolled back)",
                        attempts=attempt,
                    ) from exc
                if where:
                    tag, number, statement = where
                    excerpt = " ".join(statement.split())[:160]
                    raise MigrationError(
                        f"{tag} failed at statement {number} ({excerpt}): {message}; the transaction was rolled back "
                        "and nothing was applied",
                        tag=tag,
                        statement=number,
                    ) from exc
                raise MigrationError(f"the migration transaction failed: {message}; nothing was applied") from exc
        connection.autocommit = True
        with connection.cursor() as cursor:
            outcome.head_after = head_of(migrations, bookkeeping.applied(cursor))
        return outcome
    finally:
        if not check_mode:
            _release_lock(connection)


def _release_lock(connection: Any) -> None:
    """Unlock explicitly; a lost connection has released the session lock already."""
    try:
        connection.rollback()
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    except Exception:  # noqa: S110 - the server ends the lock with the session
        pass
