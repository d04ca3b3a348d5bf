"""`wfops sandbox up|down|status`: the local stand-in for WeddingFlo's production database."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg2

from wfops.drizzle import migrate, read_migrations
from wfops.pgcluster import PostgresCluster, free_port
from wfops.project import project_root
from wfops.sandbox.inspect import LegacyCounts, legacy_counts, migration_state
from wfops.sandbox.passwords import hash_password
from wfops.sandbox.services import settings_fingerprint

DATABASE = "weddingflo"
OPS_ROLE = "postgres"
APP_ROLE = "weddingflo_app"
# The previous release's state: migrations 0000-0022 applied (the journal's first 23 entries).
PREVIOUS_RELEASE_MIGRATIONS = 23
DEFAULT_GUESTS = 3000
_CLUSTER_SETTINGS = {
    # A throwaway cluster: durability off for speed; the slow-query log the monitor phase reads.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "'256MB'",
    "max_connections": "60",
    "log_min_duration_statement": "5000",
    "shared_preload_libraries": "'pg_stat_statements'",
}


class SandboxError(RuntimeError):
    """Something about the sandbox a person can fix (not up, already up, app missing)."""


@dataclass
class SandboxStatus:
    state: str
    sandbox_dir: str
    database_url: str | None = None
    database_url_file: str | None = None
    server_version: str | None = None
    guests: int | None = None
    migrations_applied: int | None = None
    migration_head: str | None = None
    migrations_pending: int | None = None
    legacy: dict[str, Any] | None = None
    app_url: str | None = None
    app_commit: str | None = None
    dokploy_url: str | None = None


def sandbox_dir() -> Path:
    override = os.environ.get("WFOPS_SANDBOX_DIR")
    return Path(override) if override else project_root() / ".sandbox"


def app_dir() -> Path:
    return project_root() / "sandbox-app"


def _state_file(base: Path) -> Path:
    return base / "state.json"


def _cluster(base: Path, port: int) -> PostgresCluster:
    return PostgresCluster(base_dir=base / "pg", port=port, settings=dict(_CLUSTER_SETTINGS))


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    path.chmod(0o600)


def _database_url(role: str, password: str, port: int) -> str:
    return f"postgresql://{role}:{password}@127.0.0.1:{port}/{DATABASE}"


def masked_url(url: str) -> str:
    """The URL with its password replaced by *** (safe to print)."""
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def _load_state(base: Path) -> dict[str, Any] | None:
    path = _state_file(base)
    return json.loads(path.read_text()) if path.is_file() else None


def _sql_resource(name: str) -> str:
    return resources.files("wfops.sandbox").joinpath(name).read_text(encoding="utf-8")


def _bootstrap(cluster: PostgresCluster, ops_password: str, app_password: str) -> None:
    admin = psycopg2.connect(cluster.admin_dsn())
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(_sql_resource("bootstrap.sql"), {"ops_password": ops_password, "app_password": app_password})
        cursor.execute(f'CREATE DATABASE {DATABASE} OWNER "{OPS_ROLE}"')
    admin.close()
    # Like Supabase: pg_stat_statements in an `extensions` schema (the monitor phase reads it).
    database = psycopg2.connect(cluster.admin_dsn(DATABASE))
    database.autocommit = True
    with database.cursor() as cursor:
        cursor.execute("CREATE SCHEMA extensions")
        cursor.execute("CREATE EXTENSION pg_stat_statements SCHEMA extensions")
        cursor.execute(f'GRANT USAGE ON SCHEMA extensions TO "{OPS_ROLE}"')
        cursor.execute(f'GRANT pg_read_all_stats TO "{OPS_ROLE}"')
    database.close()


@dataclass
class SeedStep:
    """One `--> table NAME` step of seed.sql: the table it fills and its SQL."""

    table: str
    sql: str


def seed_steps(script: str) -> list[SeedStep]:
    """seed.sql cut at its `--> table NAME` lines (whatever comes before the first one is its header)."""
    steps: list[SeedStep] = []
    for chunk in script.split("\n--> table ")[1:]:
        name, _, body = chunk.partition("\n")
        steps.append(SeedStep(name.strip(), body))
    return steps


def seed(connection: Any, params: dict[str, Any], log: Any) -> None:
    """seed.sql in one transaction, step by step, with a progress line per table (rows and seconds)."""
    started = time.monotonic()
    with connection, connection.cursor() as cursor:
        for step in seed_steps(_sql_resource("seed.sql")):
            step_started = time.monotonic()
            cursor.execute(step.sql, params)
            rows = f"{cursor.rowcount:,} rows" if cursor.rowcount >= 0 else "done"
            log(f"sandbox: seeded {step.table}: {rows} in {time.monotonic() - step_started:.1f}s")
    log(f"sandbox: seed committed in {time.monotonic() - started:.1f}s")


def _seed_sizes(guests: int) -> dict[str, int]:
    clients = max(10, guests // 50)
    return {"guests": guests, "clients": clients, "companies": max(3, clients // 400)}


def up(guests: int = DEFAULT_GUESTS, log: Any = print) -> SandboxStatus:
    """Create, start, migrate to 0022 and seed the sandbox; a running sandbox is left as it is."""
    if guests < 100:
        raise SandboxError("--guests must be at least 100")
    base = sandbox_dir()
    state = _load_state(base)
    if state is not None:
        cluster = _cluster(base, int(state["port"]))
        if not cluster.running():
            cluster.start()
        _restart_services_on_changed_settings(base, log)
        start_services(base, log)
        log(f"sandbox already up with {state['guests']} guests; `wfops sandbox down` first to rebuild it")
        return status()
    migrations_dir = app_dir() / "drizzle"
    migrations = read_migrations(migrations_dir)[:PREVIOUS_RELEASE_MIGRATIONS]
    if len(migrations) < PREVIOUS_RELEASE_MIGRATIONS:
        raise SandboxError(f"{migrations_dir} holds fewer than {PREVIOUS_RELEASE_MIGRATIONS} migrations")

    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    port = free_port()
    cluster = _cluster(base, port)
    started = time.monotonic()
    log(f"sandbox: initdb + start PostgreSQL on 127.0.0.1:{port} in {cluster.base_dir}")
    cluster.init()
    cluster.start()
    ops_password = os.environ.get("WFOPS_SANDBOX_OPS_PASSWORD") or secrets.token_urlsafe(24)
    app_password = os.environ.get("WFOPS_SANDBOX_APP_PASSWORD") or secrets.token_urlsafe(24)
    _bootstrap(cluster, ops_password, app_password)
    ops_url = _database_url(OPS_ROLE, ops_password, port)
    connection = psycopg2.connect(ops_url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(_sql_resource("database.sql"))
        log(f"sandbox: applying migrations {migrations[0].tag} .. {migrations[-1].tag} as Drizzle does")
        migrate(connection, migrations)
        connection.autocommit = False
        sizes = _seed_sizes(guests)
        log(
            f"sandbox: seeding legacy data ({sizes['guests']} guests, {sizes['clients']} clients, "
            f"{sizes['companies']} companies)"
        )
        smoke_password = os.environ.get("WFOPS_SANDBOX_SMOKE_PASSWORD") or secrets.token_urlsafe(18)
        seed(connection, {**sizes, "smoke_password_hash": hash_password(smoke_password)}, log)
        connection.autocommit = True
        with connection.cursor() as cursor:
            analyzed = time.monotonic()
            cursor.execute("ANALYZE")
            log(f"sandbox: ANALYZE in {time.monotonic() - analyzed:.1f}s")
    finally:
        connection.close()
    _write_private(base / "database_url", ops_url)
    _write_private(base / "app_database_url", _database_url(APP_ROLE, app_password, port))
    _write_private(base / "smoke_password", smoke_password)
    _write_private(base / "dokploy_api_key", os.environ.get("WFOPS_SANDBOX_DOKPLOY_KEY") or secrets.token_urlsafe(32))
    _write_private(base / "app_secret", secrets.token_urlsafe(32))
    _write_private(_state_file(base), json.dumps({"port": port, "guests": guests, "database": DATABASE}))
    start_services(base, log)
    log(f"sandbox: up in {time.monotonic() - started:.1f}s")
    return status()


def start_services(base: Path, log: Any) -> dict[str, Any]:
    """Start the app and Dokploy stand-ins (one background process) unless they run already."""
    running = services(base)
    if running is not None:
        return running
    (base / "services.json").unlink(missing_ok=True)
    log_file = (base / "services.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "wfops.sandbox.services", str(base)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        described = services(base)
        if described is not None:
            log(
                f"sandbox: WeddingFlo app stand-in on {described['app_url']}, Dokploy API stand-in on "
                f"{described['dokploy_url']}"
            )
            return described
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise SandboxError(f"the sandbox's app and Dokploy stand-ins did not start; see {base / 'services.log'}")


def _restart_services_on_changed_settings(base: Path, log: Any) -> None:
    """Stand-ins read their settings once: stop them when a settings file changed since, so they start anew."""
    running = services(base)
    if running is None:
        return
    started_with = running.get("settings") or {}
    changed = [name for name, digest in settings_fingerprint(base).items() if started_with.get(name) != digest]
    if changed:
        log(f"sandbox: restarting the app and Dokploy stand-ins to pick up the changed {', '.join(changed)}")
        _stop_services(base)


def services(base: Path | None = None) -> dict[str, Any] | None:
    """The running stand-ins (urls, ids, pid), or None."""
    path = (base or sandbox_dir()) / "services.json"
    if not path.is_file():
        return None
    described = json.loads(path.read_text())
    try:
        os.kill(int(described["pid"]), 0)
    except ProcessLookupError:
        return None
    return described


def _stop_services(base: Path) -> None:
    described = services(base)
    if described is None:
        return
    pid = int(described["pid"])
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        # Started by this very process (a test's in-process `up`): reap it, or it lingers as a zombie that
        # kill(pid, 0) still finds, and the restarted stand-ins would never start.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def down(log: Any = print) -> None:
    """Stop the sandbox's server and stand-ins and delete its data."""
    base = sandbox_dir()
    _stop_services(base)
    state = _load_state(base)
    if state is not None:
        _cluster(base, int(state["port"])).destroy()
    elif (base / "pg").exists():
        # A half-built sandbox (up interrupted before state.json): stop whatever runs there.
        _cluster(base, 0).stop("immediate")
    shutil.rmtree(base, ignore_errors=True)
    log("sandbox: down")


def require_up() -> None:
    """SandboxError unless the sandbox's server and stand-ins run (cheap: process checks, no query)."""
    base = sandbox_dir()
    state = _load_state(base)
    if state is None:
        raise SandboxError(f"the sandbox is not up ({base}): start it with `wfops sandbox up`")
    pid_file = base / "pg" / "data" / "postmaster.pid"
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except (OSError, ValueError, IndexError):
        raise SandboxError(f"the sandbox's PostgreSQL is stopped ({base}): `wfops sandbox up` restarts it") from None
    if services(base) is None:
        raise SandboxError(
            f"the sandbox's app and Dokploy stand-ins are stopped ({base}): `wfops sandbox up` restarts them"
        )


def status() -> SandboxStatus:
    """What the sandbox holds now."""
    base = sandbox_dir()
    state = _load_state(base)
    if state is None:
        return SandboxStatus(state="down", sandbox_dir=str(base))
    cluster = _cluster(base, int(state["port"]))
    url_file = base / "database_url"
    if not cluster.running():
        return SandboxStatus(state="stopped", sandbox_dir=str(base), database_url_file=str(url_file))
    url = url_file.read_text().strip()
    all_migrations = read_migrations(app_dir() / "drizzle")
    try:
        connection = psycopg2.connect(url)
    except psycopg2.OperationalError as exc:
        reason = " ".join(str(exc).split())
        raise SandboxError(
            f"the sandbox's cluster runs, but its database cannot be reached with {masked_url(url)} "
            f"({url_file}): {reason}"
        ) from None
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0]
            migration = migration_state(cursor, all_migrations)
            counts: LegacyCounts = legacy_counts(cursor)
    finally:
        connection.close()
    pending = sum(1 for m in all_migrations if migration.head_created_at is None or m.when > migration.head_created_at)
    return SandboxStatus(
        state="up",
        sandbox_dir=str(base),
        database_url=masked_url(url),
        database_url_file=str(url_file),
        server_version=version,
        guests=int(state["guests"]),
        migrations_applied=migration.applied,
        migration_head=migration.head_tag,
        migrations_pending=pending,
        legacy=asdict(counts),
        **_services_status(base),
    )


def _services_status(base: Path) -> dict[str, Any]:
    described = services(base)
    if described is None:
        return {}
    commit = None
    try:
        with urllib.request.urlopen(described["app_url"] + "/api/health", timeout=2) as response:  # noqa: S310
            commit = json.loads(response.read()).get("commit")
    except (OSError, ValueError):
        commit = None
    return {"app_url": described["app_url"], "app_commit": commit, "dokploy_url": described["dokploy_url"]}


def render_status(current: SandboxStatus) -> str:
    if current.state != "up":
        hint = "`wfops sandbox up`" if current.state == "down" else "`wfops sandbox up` (it restarts it)"
        return f"sandbox: {current.state} ({current.sandbox_dir}); start it with {hint}"
    legacy = current.legacy or {}
    nulls = ", ".join(f"{table} {count}" for table, count in legacy.get("null_company_id", {}).items())
    return "\n".join(
        [
            f"sandbox: up, PostgreSQL {current.server_version}, {current.guests} guests",
            f"database: {current.database_url}  (full URL, 0600: {current.database_url_file})",
            f"migrations: {current.migrations_applied} applied, head {current.migration_head}, "
            f"{current.migrations_pending} pending in sandbox-app/drizzle",
            f"legacy rows: rsvp_status {legacy.get('legacy_rsvp')}, "
            f"guest_side {legacy.get('legacy_guest_side')}, "
            f"clients with drifted stats {legacy.get('clients_with_stats_drift')}",
            f"NULL company_id: {nulls}",
            f"app stand-in: {current.app_url or 'not running'} (commit {current.app_commit}); "
            f"Dokploy stand-in: {current.dokploy_url or 'not running'}",
        ]
    )
