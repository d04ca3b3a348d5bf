"""A change made in short batches over a table's physical page ranges, on one or several connections at once, then
a catch-up by key for the rows that concurrent writes moved behind the batches.

Pure Python on psycopg2 with no Ansible import (the tests load it too). Each batch is one short transaction under
lock_timeout with retries (wfops_pg.execute_with_retries), so live traffic waits at most for one batch's row locks.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.wfops_pg import BatchStats, Limits, Tally, execute_with_retries, quote_ident

# Parallel workers when the setting says "as many as the host has cores": at most this many, so a big host does not
# open a connection per core against a database that has its own, smaller, number of cores.
MAX_AUTO_WORKERS = 4
# The catch-up runs another round while its last round changed fewer rows than it found (a concurrent write moved
# or fixed one in between), at most this many rounds; the invariants then name whatever is left.
CATCH_UP_ROUNDS = 10


def worker_count(setting: int) -> int:
    """The workers to use: the setting when positive, else the host's cores (at most MAX_AUTO_WORKERS)."""
    if setting > 0:
        return setting
    return max(1, min(os.cpu_count() or 1, MAX_AUTO_WORKERS))


@dataclass
class PagedChange:
    """One table's change: `statement(predicate)` changes the rows of `t` that match a predicate (a page range, or a
    list of keys) and still need it; `pending` selects the keys (t.<key>) of the rows that still need it, read only."""

    table: str
    statement: Callable[[str], str]
    pending: str
    params: dict[str, Any] = field(default_factory=dict)
    tally: Tally | None = None
    expected_rows: int = 0
    key: str = "id"


@dataclass
class Workers:
    """How many connections change pages at once; `connect` opens one more (None: only the caller's connection)."""

    count: int = 1
    connect: Callable[[], Any] | None = None


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


def page_ranges(connection: Any, change: PagedChange, batch_rows: int) -> list[str]:
    """Predicates over ranges of ctid pages, each holding about `batch_rows` rows to change (`expected_rows`, when
    counted beforehand, sizes them when only some rows change: each batch still changes about `batch_rows`)."""
    with connection.cursor() as cursor:
        pages, density = relation_pages(cursor, change.table)
    connection.commit()
    per_page = min(density, change.expected_rows / max(pages, 1)) if change.expected_rows > 0 else density
    step = max(1, int(batch_rows / per_page))
    return [f"t.ctid >= '({start},0)'::tid AND t.ctid < '({start + step},0)'::tid" for start in range(0, pages, step)]


class _Shared:
    """What the workers share: the next range to take, the tally (one at a time), the first error."""

    def __init__(self, predicates: list[str], tally: Tally | None) -> None:
        self._predicates = iter(predicates)
        self._lock = threading.Lock()
        self._tally = tally
        self.failure: BaseException | None = None

    def next_predicate(self) -> str | None:
        with self._lock:
            if self.failure is not None:
                return None
            return next(self._predicates, None)

    def tally(self, rows: list[tuple[Any, ...]]) -> int:
        with self._lock:
            return self._tally(rows) if self._tally is not None else len(rows)

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = exc


def _work(
    connection: Any, shared: _Shared, change: PagedChange, limits: Limits, stats: BatchStats, progress: Any
) -> None:
    tally = shared.tally if change.tally is not None else None
    while (predicate := shared.next_predicate()) is not None:
        try:
            execute_with_retries(connection, change.statement(predicate), change.params, limits, stats, tally=tally)
        except BaseException as exc:
            shared.fail(exc)
            return
        if progress:
            progress(stats)
        if limits.pause_s:
            time.sleep(limits.pause_s)


def _in_parallel(
    change: PagedChange, predicates: list[str], limits: Limits, workers: Workers, progress: Any
) -> list[BatchStats]:
    """The ranges shared out to `workers.count` connections of their own; the first failure stops every worker
    after its current batch, and is raised once they all stopped."""
    shared = _Shared(predicates, change.tally)
    per_worker = [BatchStats() for _ in range(min(workers.count, len(predicates)))]
    connections: list[Any] = []

    def run(stats: BatchStats) -> None:
        try:
            connection = workers.connect()  # type: ignore[misc]
        except BaseException as exc:
            shared.fail(exc)
            return
        connections.append(connection)
        connection.autocommit = False
        _work(connection, shared, change, limits, stats, progress)

    threads = [threading.Thread(target=run, args=(stats,), daemon=True) for stats in per_worker]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for connection in connections:
            connection.close()
    if shared.failure is not None:
        raise shared.failure
    return per_worker


def _merge(into: BatchStats, parts: list[BatchStats]) -> None:
    for part in parts:
        into.rows += part.rows
        into.batches += part.batches
        into.retries += part.retries
        into.max_batch_ms = max(into.max_batch_ms, part.max_batch_ms)


def _key_type(connection: Any, change: PagedChange) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
            " WHERE a.attrelid = %s::regclass AND a.attname = %s",
            (quote_ident(change.table), change.key),
        )
        found = cursor.fetchone()
    connection.commit()
    if found is None:
        raise AssertionError(f"{change.table} has no column {change.key}")
    return str(found[0])


def catch_up(connection: Any, change: PagedChange, batch_rows: int, limits: Limits, stats: BatchStats) -> None:
    """The rows the batches did not reach (a concurrent write moved them behind the cursor, or added them): found by
    one read-only scan, which takes no row locks however big the table, then changed by key in batches. Another
    round runs while the last one changed fewer rows than it found."""
    key_type = _key_type(connection, change)
    predicate = f"t.{quote_ident(change.key)} = ANY(%(wfops_keys)s::{key_type}[])"
    for _ in range(CATCH_UP_ROUNDS):
        with connection.cursor() as cursor:
            cursor.execute(change.pending, change.params)
            keys = [str(row[0]) for row in cursor.fetchall()]
        connection.commit()
        changed = 0
        for start in range(0, len(keys), max(batch_rows, 1)):
            params = {**change.params, "wfops_keys": keys[start : start + max(batch_rows, 1)]}
            changed += execute_with_retries(
                connection, change.statement(predicate), params, limits, stats, tally=change.tally
            )
        if changed >= len(keys):
            return


def paged_change(
    connection: Any,
    change: PagedChange,
    *,
    batch_rows: int,
    limits: Limits,
    workers: Workers | None = None,
    progress: Callable[[str], None] | None = None,
) -> BatchStats:
    """The change over the table's page ranges in batches of about `batch_rows` rows (on `workers`' connections when
    there are several), then the catch-up on the caller's connection. `batch_rows` 0: one statement, one transaction.

    Page ranges touch each page once (random UUID keys would touch most pages in every batch), and batches of
    different ranges never wait for each other's rows, so the workers run side by side.
    """
    stats = BatchStats()
    connection.autocommit = False
    if batch_rows <= 0:
        execute_with_retries(connection, change.statement("TRUE"), change.params, limits, stats, tally=change.tally)
        return stats
    predicates = page_ranges(connection, change, batch_rows)
    last_report = [time.monotonic()]

    def report(part: BatchStats) -> None:
        if progress and time.monotonic() - last_report[0] >= 5:
            last_report[0] = time.monotonic()
            progress(f"{change.table}: {len(predicates)} page ranges, {part.rows} rows changed by one worker")

    workers = workers or Workers()
    if workers.count > 1 and workers.connect is not None and len(predicates) > 1:
        _merge(stats, _in_parallel(change, predicates, limits, workers, report))
    else:
        shared = _Shared(predicates, change.tally)
        _work(connection, shared, change, limits, stats, report)
        if shared.failure is not None:
            raise shared.failure
    catch_up(connection, change, batch_rows, limits, stats)
    return stats
