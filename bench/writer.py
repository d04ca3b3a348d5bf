"""The concurrent writer: single-row UPDATEs of guests by random id every ~50 ms, each latency recorded."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import psycopg2

INTERVAL_S = 0.05
STATEMENT = "UPDATE guests SET updated_at = now() WHERE id = %s"


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


@dataclass
class WriterStats:
    writes: int
    errors: int
    max_ms: float
    p99_ms: float
    p50_ms: float
    first_error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class Writer:
    """A thread with its own connection (autocommit), started around one measured command."""

    url: str
    ids: list[str]
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _connect(self) -> psycopg2.extensions.connection:
        connection = psycopg2.connect(self.url, application_name="wfops-bench-writer")
        connection.autocommit = True
        return connection

    def _run(self) -> None:
        chooser = random.Random(9)  # the writer's ids: no security relevance
        connection: psycopg2.extensions.connection | None = None
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                if connection is None or connection.closed:
                    connection = self._connect()
                with connection.cursor() as cursor:
                    cursor.execute(STATEMENT, (chooser.choice(self.ids),))
                self.latencies_ms.append((time.perf_counter() - started) * 1000)
            except psycopg2.Error as exc:
                # A restore drops the table under us, a reset ends the session: count it, time it, reconnect.
                self.latencies_ms.append((time.perf_counter() - started) * 1000)
                self.errors.append(" ".join(str(exc).split())[:200])
                if connection is not None:
                    connection.close()
                connection = None
            self._stop.wait(INTERVAL_S)
        if connection is not None:
            connection.close()

    def __enter__(self) -> Writer:
        self._thread = threading.Thread(target=self._run, name="bench-writer", daemon=True)
        self._thread.start()
        time.sleep(INTERVAL_S * 2)  # the writer is writing before the measured command starts
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)

    def stats(self) -> WriterStats:
        values = self.latencies_ms
        return WriterStats(
            writes=len(values),
            errors=len(self.errors),
            max_ms=round(max(values, default=0.0), 1),
            p99_ms=round(percentile(values, 0.99), 1),
            p50_ms=round(percentile(values, 0.50), 1),
            first_error=self.errors[0] if self.errors else None,
        )
