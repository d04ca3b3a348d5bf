"""The runbook's bare commands: pg_dump -Fc, the pending migrations through psql in one transaction, the four
plain normalisation UPDATEs, pg_restore --clean --if-exists. Passwords travel in libpq's environment only."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from bench.sandbox import DATABASE, REPO, Sandbox
from wfops.drizzle import read_migrations
from wfops.pgcluster import server_bindir

MIGRATIONS_DIR = REPO / "sandbox-app" / "drizzle"

# Runbook phase 4, sections 1-3 (guests only), and phase 9 verbatim: each statement its own transaction, as
# `psql -f normalize-existing-data.sql` runs them. updated_at is touched as wfops does (normalize_touch_updated_at).
RSVP_TARGET = (
    "CASE lower(btrim(rsvp_status))"
    " WHEN 'attending' THEN 'confirmed' WHEN 'accepted' THEN 'confirmed' WHEN 'yes' THEN 'confirmed'"
    " WHEN 'not_attending' THEN 'declined' WHEN 'no' THEN 'declined' WHEN 'tentative' THEN 'maybe'"
    " WHEN 'confirmed' THEN 'confirmed' WHEN 'declined' THEN 'declined' WHEN 'maybe' THEN 'maybe'"
    " WHEN 'pending' THEN 'pending' ELSE 'pending' END"
)
SIDE_TARGET = (
    "CASE lower(btrim(guest_side))"
    " WHEN 'bride' THEN 'partner1' WHEN 'bride_side' THEN 'partner1'"
    " WHEN 'groom' THEN 'partner2' WHEN 'groom_side' THEN 'partner2'"
    " WHEN 'both' THEN 'mutual' WHEN 'common' THEN 'mutual' WHEN 'shared' THEN 'mutual'"
    " WHEN 'partner1' THEN 'partner1' WHEN 'partner2' THEN 'partner2' WHEN 'mutual' THEN 'mutual'"
    " ELSE guest_side END"
)
NORMALIZE_SQL = f"""\\set ON_ERROR_STOP on
UPDATE guests SET rsvp_status = {RSVP_TARGET}, updated_at = now() WHERE rsvp_status IS DISTINCT FROM {RSVP_TARGET};
UPDATE guests SET guest_side = {SIDE_TARGET}, updated_at = now() WHERE guest_side IS DISTINCT FROM {SIDE_TARGET};
UPDATE guests AS g SET company_id = c.company_id, updated_at = now() FROM clients AS c
 WHERE g.client_id = c.id AND g.company_id IS NULL AND c.company_id IS NOT NULL;
UPDATE clients SET
  guest_count = COALESCE(sub.cnt, 0),
  budget = COALESCE(sub.total, '0'),
  updated_at = NOW()
FROM (
  SELECT
    c.id AS client_id,
    (SELECT COUNT(*)::INTEGER FROM guests g WHERE g.client_id = c.id) AS cnt,
    (SELECT COALESCE(SUM(CAST(b.estimated_cost AS NUMERIC)), 0)::TEXT
     FROM budget b WHERE b.client_id = c.id) AS total
  FROM clients c
  WHERE c.deleted_at IS NULL
) sub
WHERE clients.id = sub.client_id
  AND clients.deleted_at IS NULL;
"""


@dataclass
class Timed:
    """Wall time of each bare step, in order."""

    steps: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def total_s(self) -> float:
        return round(sum(self.steps.values()), 3)


def _tool(name: str) -> str:
    return str(server_bindir() / name)


def _run(sandbox: Sandbox, argv: list[str], *, allow_fail: bool = False) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, env=sandbox.libpq_env(), check=False)
    if done.returncode != 0 and not allow_fail:
        raise RuntimeError(f"{' '.join(argv[:3])} failed ({done.returncode}): {done.stderr[-1500:]}")
    return done


def _step(timed: Timed, name: str, sandbox: Sandbox, argv: list[str], *, allow_fail: bool = False) -> None:
    started = time.perf_counter()
    done = _run(sandbox, argv, allow_fail=allow_fail)
    timed.steps[name] = round(time.perf_counter() - started, 3)
    if done.returncode != 0:
        errors = sum(1 for line in done.stderr.splitlines() if "error" in line.lower())
        timed.notes.append(
            f"{name} exited {done.returncode} ({errors} error lines, e.g. {done.stderr.strip()[:160]!r})"
        )


def migrations_script(sandbox: Sandbox, path: Path) -> list[str]:
    """The pending migrations (Drizzle's rule: `when` > the newest applied created_at) as one psql file, each
    followed by the bookkeeping row drizzle-orm writes (hash = sha256 of the file, created_at = `when`)."""
    connection = psycopg2.connect(sandbox.ops_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT max(created_at) FROM drizzle.__drizzle_migrations")
            head = cursor.fetchone()[0]
    finally:
        connection.close()
    pending = [m for m in read_migrations(MIGRATIONS_DIR) if head is None or m.when > int(head)]
    parts = ["\\set ON_ERROR_STOP on"]
    for migration in pending:
        parts.append(f"-- {migration.tag}")
        parts.extend(statement.rstrip().rstrip(";") + ";" for statement in migration.statements)
        parts.append(
            "INSERT INTO drizzle.__drizzle_migrations (hash, created_at)"
            f" VALUES ('{migration.hash}', {migration.when});"
        )
    path.write_text("\n".join(parts) + "\n")
    return [m.tag for m in pending]


def pg_dump(timed: Timed, sandbox: Sandbox, file: Path, name: str = "pg_dump -Fc") -> None:
    _step(timed, name, sandbox, [_tool("pg_dump"), "--format=custom", f"--file={file}"])


def migrate(timed: Timed, sandbox: Sandbox, script: Path) -> None:
    _step(timed, "psql -1 migrations", sandbox, ["psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f", str(script)])


def normalize(timed: Timed, sandbox: Sandbox, work: Path) -> None:
    script = work / "normalize.sql"
    script.write_text(NORMALIZE_SQL)
    _step(timed, "psql 4 UPDATEs", sandbox, ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script)])


def release(sandbox: Sandbox, work: Path, migrations: Path) -> Timed:
    timed = Timed()
    pg_dump(timed, sandbox, work / "bare-release.dump")
    migrate(timed, sandbox, migrations)
    normalize(timed, sandbox, work)
    return timed


def restore(timed: Timed, sandbox: Sandbox, archive: Path) -> None:
    # As the runbook: into the live database, no --single-transaction. The sandbox's `extensions` schema belongs
    # to the superuser, so the ops role's --clean reports errors it ignores (pg_restore exits 1); counted in notes.
    _step(
        timed,
        "pg_restore --clean --if-exists",
        sandbox,
        [_tool("pg_restore"), f"--dbname={DATABASE}", "--clean", "--if-exists", str(archive)],
        allow_fail=True,
    )
