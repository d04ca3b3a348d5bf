"""Drizzle's PostgreSQL migrations, applied exactly as drizzle-orm's migrator applies and records them, with its gaps
closed.

Kept (drizzle-orm src/migrator.ts + src/pg-core/dialect.ts): the journal's entries in order, `<tag>.sql` split on
`--> statement-breakpoint` into chunks sent one by one on one connection (a chunk of comments only is an empty
statement that succeeds), hash = sha256 hex of the whole file, created_at = the journal's `when`, bookkeeping in
"<schema>"."<table>" (id serial, hash text, created_at bigint), pending = `when` greater than the newest applied
created_at, every pending migration and its bookkeeping row in one transaction (wfops_drizzle_apply).

Added: a session-level advisory lock for the whole run; lock_timeout/statement_timeout set for the session (so they
survive a migration's own COMMIT) with bounded retries when a lock cannot be had; verification before anything
runs (edited applied migrations, entries Drizzle would skip silently, applied rows the journal does not know) with
a way out recorded once (wfops_drizzle_drift); a plan that flags migrations that are not atomic
(wfops_drizzle_sql); a failure report that says what persisted; and `per-migration` transactions on request.

Pure Python on psycopg2; its only Ansible imports are its wfops siblings, so the wfops wrapper and the tests can
load the same code (src/wfops/plugin_code.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ansible.module_utils.wfops_drizzle_apply import (
    LOCK_NOT_AVAILABLE,
    ONE_TRANSACTION,
    PER_MIGRATION,
    TRANSACTION_MODES,
    MigrationError,
    Run,
    apply,
)
from ansible.module_utils.wfops_drizzle_drift import (
    Finding,
    as_facts,
    decide,
    read_acknowledgements,
    record_acknowledgements,
    refusal,
    verify,
)
from ansible.module_utils.wfops_drizzle_sql import may_matter, split_statements
from ansible.module_utils.wfops_pg import advisory_lock_holder, quote_ident

__all__ = ["LOCK_NOT_AVAILABLE", "PER_MIGRATION", "Finding", "MigrationError", "verify"]

BREAKPOINT = "--> statement-breakpoint"
DEFAULT_SCHEMA = "drizzle"
DEFAULT_TABLE = "__drizzle_migrations"
# pg_advisory_lock key shared by every wfops migrate run: int8 of sha256("wfops:drizzle-migrate").
ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(b"wfops:drizzle-migrate").digest()[:8], "big", signed=True)


@dataclass(frozen=True)
class Migration:
    """One journal entry with its SQL file."""

    idx: int
    tag: str
    when: int
    sql_text: str

    @cached_property
    def hash(self) -> str:
        return hashlib.sha256(self.sql_text.encode("utf-8")).hexdigest()

    @cached_property
    def chunks(self) -> list[str]:
        """The statements as Drizzle sends them, numbered from 1: every chunk, empty ones included."""
        return self.sql_text.split(BREAKPOINT)

    @property
    def statements(self) -> list[str]:
        """The chunks holding anything but whitespace (what a psql script of the migration needs)."""
        return [chunk for chunk in self.chunks if chunk.strip()]

    @cached_property
    def transaction_control(self) -> list[tuple[int, str]]:
        """(statement, BEGIN|COMMIT|ROLLBACK) for each statement that starts or ends a transaction, in order."""
        return [
            (number, kind)
            for number, chunk in enumerate(self.chunks, start=1)
            if may_matter(chunk)
            for statement in split_statements(chunk)
            if (kind := statement.transaction_control())
        ]

    @cached_property
    def outside_transaction(self) -> list[tuple[int, str, bool]]:
        """(statement, command, alone in its chunk) for each command PostgreSQL refuses inside a transaction."""
        found = []
        for number, chunk in enumerate(self.chunks, start=1):
            statements = split_statements(chunk) if may_matter(chunk) else []
            found += [(number, what, len(statements) == 1) for s in statements if (what := s.outside_transaction())]
        return found

    @cached_property
    def commits(self) -> frozenset[int]:
        """The statements that end the transaction they run in (what came before them is then committed)."""
        return frozenset(number for number, kind in self.transaction_control if kind in ("COMMIT", "ROLLBACK"))

    @property
    def atomic(self) -> bool:
        return not self.transaction_control and not self.outside_transaction

    def first_lines(self, count: int = 3) -> list[str]:
        lines = [line for line in self.sql_text.splitlines() if line.strip() and line.strip() != BREAKPOINT]
        return lines[:count]


def read_migrations(folder: Path) -> list[Migration]:
    """The folder's migrations in journal order (meta/_journal.json, then <tag>.sql)."""
    journal_path = Path(folder) / "meta" / "_journal.json"
    try:
        journal = journal_path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError as exc:
        raise MigrationError(f"{journal_path} not found: not a Drizzle migrations folder") from exc

    def sql_of(tag: str) -> str:
        path = Path(folder) / f"{tag}.sql"
        try:
            # Byte for byte, as drizzle-orm hashes it (no newline translation; Buffer.toString's U+FFFD for bad bytes).
            return path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError as exc:
            raise MigrationError(f"{path} is in the journal but missing on disk") from exc

    return _parse_journal(journal, sql_of)


JOURNAL = "meta/_journal.json"


def migrations_from_files(files: dict[str, str], origin: str) -> list[Migration]:
    """The migrations of a folder given as {relative path: text} (meta/_journal.json and <tag>.sql)."""
    if JOURNAL not in files:
        raise MigrationError(
            f"{origin} has no {JOURNAL}: it is not a Drizzle migrations folder (drizzle.config's `out`)"
        )

    def sql_of(tag: str) -> str:
        if f"{tag}.sql" not in files:
            raise MigrationError(f"{origin}/{tag}.sql is in the journal but missing")
        return files[f"{tag}.sql"]

    return _parse_journal(files[JOURNAL], sql_of)


def _parse_journal(journal_text: str, sql_of: Callable[[str], str]) -> list[Migration]:
    journal = json.loads(journal_text)
    # drizzle-orm reads only `tag` and `when`, in the array's order.
    return [
        Migration(int(entry.get("idx", position)), str(entry["tag"]), int(entry["when"]), sql_of(str(entry["tag"])))
        for position, entry in enumerate(journal.get("entries", []))
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


def plan_entry(migration: Migration, transaction: str, skipped: bool = False, full: bool = True) -> dict[str, Any]:
    """What the plan shows of a migration: tag, statements, whether it is atomic and why; in full (a dry run's plan)
    also its hash, first lines and the statements that control or refuse a transaction."""
    entry: dict[str, Any] = {
        "tag": migration.tag,
        "when": migration.when,
        "statements": len(migration.chunks),
        "atomic": migration.atomic,
        "notes": transaction_notes(migration, transaction),
    }
    if full:
        entry |= {
            "hash": migration.hash,
            "first_lines": migration.first_lines(),
            "transaction_control": [{"statement": n, "command": kind} for n, kind in migration.transaction_control],
            "outside_transaction": [{"statement": n, "command": w} for n, w, _ in migration.outside_transaction],
        }
    if skipped:
        entry["skipped"] = True  # older than the head: applied now on request (migrate_apply_skipped)
    return entry


def transaction_notes(migration: Migration, transaction: str) -> list[str]:
    """Why a migration is not atomic, and which of its statements will fail where they stand."""
    scope = (
        "this migration's earlier statements"
        if transaction == PER_MIGRATION
        else "everything this run sent before it (earlier migrations included)"
    )
    notes = []
    in_transaction, controls = True, dict(migration.transaction_control)
    outside = {n: (what, alone) for n, what, alone in migration.outside_transaction}
    for number in range(1, len(migration.chunks) + 1):
        if number in outside:
            what, alone = outside[number]
            if not alone:
                notes.append(
                    f"statement {number} runs {what} beside other statements in one chunk: PostgreSQL runs such a "
                    "chunk as one implicit transaction and refuses it; give it a chunk of its own"
                )
            elif in_transaction:
                notes.append(
                    f"statement {number} ({what}) cannot run inside a transaction and nothing before it in this "
                    "migration ends the transaction: it fails (as under drizzle-kit migrate); put "
                    "`COMMIT;--> statement-breakpoint` before it"
                )
        if number in controls:
            if controls[number] == "BEGIN" and in_transaction:
                notes.append(
                    f"not atomic as written: statement {number} (BEGIN) runs inside the migration transaction, where "
                    "PostgreSQL only warns and goes on"
                )
            in_transaction = controls[number] == "BEGIN"
            if controls[number] in ("COMMIT", "ROLLBACK"):
                verb = "commits" if controls[number] == "COMMIT" else "discards"
                notes.append(
                    f"not atomic: statement {number} ({controls[number]}) {verb} {scope}; a later failure does not "
                    "undo it"
                )
    if not in_transaction:
        notes.append("it ends outside a transaction: its bookkeeping row commits on its own")
    return notes


TRANSACTION_NOTES = {
    ONE_TRANSACTION: "one transaction for every pending migration (as Drizzle): a failure applies nothing, unless a "
    "migration's own COMMIT came first; the locks taken are held until the last migration commits",
    PER_MIGRATION: "one transaction per migration: each migration commits with its bookkeeping row and releases its "
    "locks before the next runs; a failure leaves the migrations before it applied and recorded, and the next run "
    "continues from the failed one",
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
    transaction: str = ONE_TRANSACTION
    # Decisions about drift, recorded once: tags to apply although Drizzle skips them, findings to acknowledge.
    apply_skipped: list[str] = field(default_factory=list)
    acknowledge: list[str] = field(default_factory=list)
    acknowledge_reason: str = ""
    acknowledged_by: str = ""


@dataclass
class Outcome:
    head_before: dict[str, Any] | None
    head_after: dict[str, Any] | None
    pending: list[dict[str, Any]]
    applied: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    acknowledged: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    lock_wait_s: float = 0.0
    check_mode: bool = False
    transaction: str = ONE_TRANSACTION
    transaction_note: str = TRANSACTION_NOTES[ONE_TRANSACTION]

    @property
    def changed(self) -> bool:
        return bool(self.applied or self.acknowledged) or (self.check_mode and bool(self.pending))


def lock_holder(cursor: Any) -> str:
    """Who holds drizzle's migration lock."""
    return advisory_lock_holder(cursor, ADVISORY_LOCK_KEY)


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


def _check(settings: Settings) -> None:
    if settings.transaction not in TRANSACTION_MODES:
        raise MigrationError(
            f"migrate_transaction is {settings.transaction!r}: use one of {', '.join(TRANSACTION_MODES)}"
        )
    if settings.acknowledge and not (settings.acknowledge_reason.strip() and settings.acknowledged_by.strip()):
        raise MigrationError(
            "an acknowledgement is recorded with who and why: add -e migrate_acknowledge_reason='<why>' "
            "(and migrate_acknowledged_by when the operator's name is not known); nothing was applied"
        )


def migrate(
    connection: Any,
    migrations: list[Migration],
    *,
    bookkeeping: Bookkeeping | None = None,
    settings: Settings | None = None,
    check_mode: bool = False,
    log: Callable[[str], None] | None = None,
) -> Outcome:
    """Verify, then apply the pending migrations (one transaction, or one per migration), under the advisory lock."""
    bookkeeping = bookkeeping or Bookkeeping()
    settings = settings or Settings()
    _check(settings)
    connection.autocommit = True
    lock_wait = 0.0 if check_mode else acquire_lock(connection, settings.lock_wait_s)
    try:
        with connection.cursor() as cursor:
            if not check_mode:
                bookkeeping.ensure(cursor)
            applied_rows = bookkeeping.applied(cursor)
            recorded = read_acknowledgements(cursor, bookkeeping.qualified)
        findings = verify(migrations, applied_rows)
        decisions = decide(findings, recorded, settings.apply_skipped, settings.acknowledge)
        chosen = {finding.tag for finding in decisions.apply}
        pending = {id(m) for m in pending_migrations(migrations, applied_rows)}
        # Journal order, as Drizzle would have run them: a skipped migration comes before the pending ones.
        to_apply = [m for m in migrations if id(m) in pending or m.tag in chosen]
        outcome = Outcome(
            head_before=head_of(migrations, applied_rows),
            head_after=head_of(migrations, applied_rows),
            # The whole plan for a dry run; after a run, what ran is in `applied` (hash, ms).
            pending=[plan_entry(m, settings.transaction, m.tag in chosen, full=check_mode) for m in to_apply],
            findings=as_facts(findings),
            lock_wait_s=lock_wait,
            check_mode=check_mode,
            transaction=settings.transaction,
            transaction_note=TRANSACTION_NOTES[settings.transaction],
        )
        if decisions.open and not settings.allow_drift:
            raise MigrationError(refusal(decisions.open), findings=outcome.findings)
        if decisions.acknowledge and not check_mode:
            with connection.cursor() as cursor:
                cursor.execute("BEGIN")
                try:
                    record_acknowledgements(
                        cursor,
                        bookkeeping.qualified,
                        decisions.acknowledge,
                        settings.acknowledged_by,
                        settings.acknowledge_reason,
                    )
                except Exception:
                    if not connection.closed:
                        cursor.execute("ROLLBACK")
                    raise
                cursor.execute("COMMIT")
            outcome.findings = as_facts(findings)
        outcome.acknowledged = as_facts(decisions.acknowledge)
        if check_mode or not to_apply:
            return outcome
        outcome.applied, outcome.attempts = _apply_with_session_limits(connection, to_apply, bookkeeping, settings, log)
        with connection.cursor() as cursor:
            outcome.head_after = head_of(migrations, bookkeeping.applied(cursor))
        return outcome
    finally:
        if not check_mode:
            _release_lock(connection)


def _apply_with_session_limits(
    connection: Any,
    to_apply: list[Migration],
    bookkeeping: Bookkeeping,
    settings: Settings,
    log: Callable[[str], None] | None,
) -> tuple[list[dict], int]:
    """The timeouts are the session's (a migration's own COMMIT would end transaction-local ones), then reset."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, false)", (settings.lock_timeout,))
        cursor.execute("SELECT set_config('statement_timeout', %s, false)", (settings.statement_timeout,))
    try:
        return apply(
            connection,
            to_apply,
            Run(
                record=bookkeeping.record,
                transaction=settings.transaction,
                retries=settings.retries,
                retry_delay_s=settings.retry_delay_s,
                lock_timeout=settings.lock_timeout,
                log=log,
            ),
        )
    finally:
        import psycopg2

        # The session may be lost or unusable after a failure; its settings then end with it.
        with contextlib.suppress(psycopg2.Error), connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout; RESET statement_timeout")


def _release_lock(connection: Any) -> None:
    """Unlock explicitly; a lost connection has released the session lock already."""
    try:
        connection.rollback()
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    except Exception:  # noqa: S110 - the server ends the lock with the session
        pass
