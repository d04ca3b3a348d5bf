"""What the migrate tests read from a database and do to a migrations folder, once for all of them."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path

import psycopg2

from wfops.drizzle import BREAKPOINT, Migration, MigrationError, Settings, migrate

FAILING_STATEMENT = 'INSERT INTO "no_such_table" ("id") VALUES (1);'


def bookkeeping_rows(dsn: str) -> list[tuple]:
    """Drizzle's bookkeeping rows (id, hash, created_at) in id order; none when the table does not exist."""
    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('drizzle.__drizzle_migrations') IS NOT NULL")
            if not cursor.fetchone()[0]:
                return []
            cursor.execute("SELECT id, hash, created_at FROM drizzle.__drizzle_migrations ORDER BY id")
            return cursor.fetchall()
    finally:
        connection.close()


def schema_dump(dsn: str) -> str:
    """`pg_dump --schema-only --no-owner`, without the random \\restrict key pg_dump 15.14+ brackets it with."""
    dump = subprocess.run(
        ["pg_dump", "--schema-only", "--no-owner", dsn], capture_output=True, text=True, check=True
    ).stdout
    return "\n".join(line for line in dump.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def tags_of(folder: Path) -> list[str]:
    return [entry["tag"] for entry in json.loads((folder / "meta" / "_journal.json").read_text())["entries"]]


def truncated(folder: Path, count: int, out: Path) -> Path:
    """The folder as it stood when it had its first `count` migrations."""
    shutil.copytree(folder, out)
    journal = json.loads((out / "meta" / "_journal.json").read_text())
    journal["entries"] = journal["entries"][:count]
    (out / "meta" / "_journal.json").write_text(json.dumps(journal, indent=2))
    return out


def failing(folder: Path, tag: str, after_statement: int, out: Path) -> Path:
    """The folder with a failing statement put after statement `after_statement` of `tag` (0 = first)."""
    shutil.copytree(folder, out)
    path = out / f"{tag}.sql"
    chunks = path.read_text().split(BREAKPOINT)
    chunks.insert(after_statement, f"\n{FAILING_STATEMENT}\n")
    path.write_text(BREAKPOINT.join(chunks))
    return out


def concurrent_runs(dsn: str, migrations: list[Migration], settings: Settings, count: int = 2) -> list[object]:
    """`count` migrate() runs started together, each on its own connection: their Outcomes or MigrationErrors."""
    outcomes: list[object] = []

    def run() -> None:
        connection = psycopg2.connect(dsn)
        try:
            outcomes.append(migrate(connection, migrations, settings=settings))
        except MigrationError as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
