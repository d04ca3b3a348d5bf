"""Running migrations as drizzle-orm's migrator runs them, knowing at every step what the server has made durable.

drizzle-orm (pg-core/dialect.ts) sends `begin`, then every chunk of every pending migration as it is (a chunk may
hold several statements; a chunk holding only comments is an empty statement that succeeds), each followed by its
bookkeeping insert, then `commit` — all on one connection. wfops sends the very same sequence on a connection in
autocommit mode, so a migration's own `COMMIT;` / `BEGIN;` act on the server exactly as they do under drizzle-orm
(a `CREATE INDEX CONCURRENTLY` after a `COMMIT;` runs outside the transaction there and here). After each step it
reads libpq's transaction status: whatever was sent before the server last stood outside a transaction is
durable, so a failure can say exactly which migrations and statements persisted, and what to do next.

`per-migration` (opt-in) wraps each migration with its bookkeeping row in its own transaction instead, so a
migration's locks are released before the next one runs; a failure then leaves the earlier migrations applied and
recorded, and the next run continues from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.wfops_pg import DatabaseError

LOCK_NOT_AVAILABLE = "55P03"
# libpq's PQtransactionStatus: idle = outside a transaction, so everything sent before is committed.
IDLE, IN_TRANSACTION = 0, 2
ONE_TRANSACTION, PER_MIGRATION = "one", "per-migration"
TRANSACTION_MODES = (ONE_TRANSACTION, PER_MIGRATION)


class MigrationError(DatabaseError):
    """A migration failure a person can act on; the message says what, where, what persisted and what next."""


@dataclass(frozen=True)
class Step:
    """One thing sent: a chunk of a migration (statement 1..n, numbered as Drizzle splits them) or its row."""

    tag: str
    statement: int | None  # None: the bookkeeping row


@dataclass
class Progress:
    """Everything sent in this run, and how much of it the server has made durable."""

    sent: list[Step] = field(default_factory=list)
    durable: int = 0
    # A statement whose own COMMIT committed what came before it inside it: (tag, statement, certain).
    partly: tuple[str, int, bool] | None = None

    def after(self, step: Step, status: int, commits_inside: bool) -> None:
        self.sent.append(step)
        if status == IDLE:
            self.durable, self.partly = len(self.sent), None
        elif commits_inside and step.statement is not None:  # e.g. `COMMIT; BEGIN; ...` in one chunk
            self.durable, self.partly = len(self.sent) - 1, (step.tag, step.statement, True)

    def failed(self, step: Step, before: int, now: int, commits_inside: bool) -> None:
        """The failing statement itself held a COMMIT: did it run before the error?"""
        if commits_inside and step.statement is not None and before != IDLE:
            if now == IDLE:
                self.durable, self.partly = len(self.sent), (step.tag, step.statement, True)
            else:
                self.partly = (step.tag, step.statement, False)

    def persisted(self) -> tuple[list[str], dict[str, list[int]]]:
        """Recorded migrations, and statements committed without their migration's row, in the order sent."""
        durable = self.sent[: self.durable]
        recorded = [step.tag for step in durable if step.statement is None]
        statements: dict[str, list[int]] = {}
        for step in durable:
            if step.statement is not None and step.tag not in recorded:
                statements.setdefault(step.tag, []).append(step.statement)
        return recorded, statements


class StepFailure(Exception):
    def __init__(self, step: Step, label: str, cause: Exception, before: int, now: int) -> None:
        super().__init__(label)
        self.step, self.label, self.cause, self.before, self.now = step, label, cause, before, now

    @property
    def sqlstate(self) -> str | None:
        return getattr(self.cause, "pgcode", None)


def _status(cursor: Any) -> int:
    return int(cursor.connection.info.transaction_status)


def execute_chunk(cursor: Any, chunk: str) -> None:
    """One chunk as drizzle-orm sends it; an empty one (whitespace, comments, `;`) succeeds as an empty statement,
    as it does through node-postgres (psycopg2 reports the server's EmptyQueryResponse as an error)."""
    import psycopg2

    if not chunk.strip():
        return
    try:
        cursor.execute(chunk)
    except psycopg2.ProgrammingError as exc:
        if exc.pgcode is None and "empty query" in str(exc):
            return
        raise


def _run_unit(cursor: Any, unit: list[Any], record: Callable[[Any, Any], None], progress: Progress) -> list[dict]:
    """`begin`, every chunk and row of the unit's migrations, `commit`: drizzle-orm's sequence."""
    cursor.execute("BEGIN")
    applied = []
    for migration in unit:
        started = time.monotonic()
        for number, chunk in enumerate(migration.chunks, start=1):
            step, before = Step(migration.tag, number), _status(cursor)
            try:
                execute_chunk(cursor, chunk)
            except Exception as exc:
                excerpt = " ".join(chunk.split())[:160]
                raise StepFailure(step, f"statement {number} ({excerpt})", exc, before, _status(cursor)) from exc
            progress.after(step, _status(cursor), number in migration.commits)
        step, before = Step(migration.tag, None), _status(cursor)
        try:
            record(cursor, migration)
        except Exception as exc:
            raise StepFailure(step, "its bookkeeping row", exc, before, _status(cursor)) from exc
        progress.after(step, _status(cursor), False)
        applied.append(
            {"tag": migration.tag, "hash": migration.hash, "ms": round((time.monotonic() - started) * 1000, 1)}
        )
    last = Step(unit[-1].tag, None)
    try:
        # As drizzle-orm: also when a migration's own COMMIT ended the transaction (the server only warns then).
        cursor.execute("COMMIT")
    except Exception as exc:
        raise StepFailure(last, "the closing COMMIT", exc, IN_TRANSACTION, _status(cursor)) from exc
    progress.durable, progress.partly = len(progress.sent), None
    return applied


def _ranges(numbers: list[int]) -> str:
    spans: list[list[int]] = []
    for number in numbers:
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)


def failure_report(
    progress: Progress, failed_tag: str, failed_where: str, lost: bool = False
) -> tuple[str, dict[str, Any]]:
    """What persisted before the failure and what to do next, in words and as facts."""
    recorded, statements = progress.persisted()
    parts = []
    if recorded:
        parts.append(f"applied and recorded before the failure: {', '.join(recorded)}")
    for tag, numbers in statements.items():
        parts.append(f"committed but not recorded: statement(s) {_ranges(numbers)} of {tag}")
    if progress.partly:
        tag, number, certain = progress.partly
        parts.append(
            f"{'' if certain else 'possibly '}committed: the part of statement {number} of {tag} before its own "
            "COMMIT" + ("" if certain else " (and everything before it, if the error came after that COMMIT: check)")
        )
    if not parts and lost:
        persisted = "nothing was applied (the open transaction ended with the session)"
        next_step = "run migrate again once the database is back"
    elif not parts:
        persisted = "the transaction was rolled back and nothing was applied"
        next_step = "fix it and run migrate again"
    else:
        persisted = "; ".join(parts) + "; everything else of this run was rolled back"
        unrecorded = [tag for tag in statements if tag] + ([progress.partly[0]] if progress.partly else [])
        if unrecorded:
            next_step = (
                f"{', '.join(dict.fromkeys(unrecorded))} is not recorded, so migrate would run those statements "
                "again: make them safe to repeat (IF NOT EXISTS, IF EXISTS) or undo them by hand, fix "
                f"{failed_where} of {failed_tag}, then run migrate again"
            )
        elif lost:
            next_step = f"run migrate again once the database is back: it continues with {failed_tag}"
        else:
            next_step = f"fix {failed_where} of {failed_tag} and run migrate again: it continues with {failed_tag}"
    facts = {
        "persisted": {"recorded": recorded, "statements": statements, "partly": progress.partly},
        "next": next_step,
    }
    return f"{persisted}; next: {next_step}", facts


@dataclass
class Run:
    """How to apply: the bookkeeping insert, the transaction mode, retries of a unit that could not get a lock."""

    record: Callable[[Any, Any], None]
    transaction: str = ONE_TRANSACTION
    retries: int = 5
    retry_delay_s: float = 2.0
    lock_timeout: str = "5s"
    log: Callable[[str], None] | None = None


def apply(connection: Any, migrations: list[Any], run: Run) -> tuple[list[dict], int]:
    """Apply the migrations (autocommit connection, session timeouts already set); returns what was applied and
    the attempts of the last unit. A lock not had within lock_timeout retries the unit when nothing of it persisted."""
    units = [migrations] if run.transaction == ONE_TRANSACTION else [[m] for m in migrations]
    progress, applied, attempt = Progress(), [], 0
    with connection.cursor() as cursor:
        for unit in units:
            mark = (len(progress.sent), progress.durable)
            for attempt in range(1, run.retries + 2):
                try:
                    applied += _run_unit(cursor, unit, run.record, progress)
                    break
                except StepFailure as failure:
                    _settle(connection, cursor, progress, failure, unit)
                    untouched = progress.durable == mark[1] and progress.partly is None
                    if failure.sqlstate == LOCK_NOT_AVAILABLE and untouched and attempt <= run.retries:
                        del progress.sent[mark[0] :]
                        if run.log:
                            run.log(
                                f"attempt {attempt}: {failure.step.tag} could not get a lock within "
                                f"{run.lock_timeout}; retrying in {run.retry_delay_s * attempt:g}s"
                            )
                        time.sleep(run.retry_delay_s * attempt)
                        continue
                    raise _error(failure, progress, attempt, run, lost=bool(connection.closed)) from failure.cause
    return applied, attempt


def _settle(connection: Any, cursor: Any, progress: Progress, failure: StepFailure, unit: list[Any]) -> None:
    """Roll back what is still open and work out what the failing statement committed itself."""
    if connection.closed:
        return
    migration = next(m for m in unit if m.tag == failure.step.tag)
    commits_inside = failure.step.statement in migration.commits
    progress.failed(failure.step, failure.before, failure.now, commits_inside)
    if failure.now != IDLE:
        cursor.execute("ROLLBACK")


def _error(failure: StepFailure, progress: Progress, attempt: int, run: Run, lost: bool) -> MigrationError:
    message = " ".join(str(failure.cause).split()) or type(failure.cause).__name__
    where = f"statement {failure.step.statement}" if failure.step.statement else failure.label
    report, facts = failure_report(progress, failure.step.tag, where, lost)
    facts |= {"tag": failure.step.tag, "statement": failure.step.statement, "attempts": attempt}
    facts["applied"] = facts["persisted"]["recorded"]
    if lost:
        return MigrationError(
            f"lost the connection to the database while {failure.step.tag} ran (was the server stopped or "
            f"restarted?): {message}; {report}",
            **facts,
        )
    if failure.sqlstate == LOCK_NOT_AVAILABLE:
        return MigrationError(
            f"{failure.step.tag} could not get a lock within {run.lock_timeout} in {attempt} attempts; {report}",
            **facts,
        )
    return MigrationError(f"{failure.step.tag} failed at {failure.label}: {message}; {report}", **facts)
