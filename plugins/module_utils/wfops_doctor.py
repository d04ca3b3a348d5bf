"""What `wfops doctor` checks from the host, read-only: each finding one line, ok or not, with one sentence.

The database is reached the way every phase reaches it (wfops_pg.connect, psycopg2's libpq); what the host's
own PostgreSQL tools see is reported by the backup tool itself. Nothing here writes: the lock probe takes and
releases a session advisory lock, and the schema checks only read privileges.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field
from typing import Any

from ansible.module_utils.wfops_http import HttpError, request
from ansible.module_utils.wfops_pg import DatabaseError, connect

# The sslmodes under which libpq checks who the server is.
VERIFYING_MODES = ("verify-ca", "verify-full")
# A probe key of its own: taking it never collides with a phase's lock.
PROBE_LOCK_KEY = 7_206_901_337


@dataclass
class Finding:
    """One line of the doctor's report."""

    check: str
    ok: bool
    detail: str
    facts: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _libpq_version(number: int) -> str:
    return f"{number // 10000}.{number % 10000}" if number >= 100000 else str(number)


def _is_loopback(host: str) -> bool:
    if not host or host.startswith("/"):
        return True  # a unix socket never leaves the machine
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tls_findings(cursor: Any, parameters: dict[str, str]) -> list[Finding]:
    cursor.execute("SELECT ssl, version, cipher, bits FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    ssl, version, cipher, bits = cursor.fetchone()
    host = parameters.get("host", "")
    sslmode = parameters.get("sslmode") or "prefer"
    local = _is_loopback(host)
    if ssl:
        tls = Finding("tls", True, f"encrypted with {version}, {cipher} ({bits} bits)", {"version": version})
    elif local:
        tls = Finding("tls", True, f"not encrypted, but {host or 'the socket'} never leaves this host")
    else:
        tls = Finding(
            "tls",
            False,
            f"the connection to {host} is not encrypted: add sslmode=verify-full and sslrootcert to the URL",
        )
    root = parameters.get("sslrootcert") or "the default root"
    crl = f", revocations from {parameters['sslcrl']}" if parameters.get("sslcrl") else ""
    if sslmode == "verify-full":
        verify = Finding("certificate", True, f"verify-full: the certificate is checked against {root}{crl}, its name")
        verify.detail += f" against {host}"
    elif sslmode == "verify-ca":
        verify = Finding(
            "certificate", True, f"verify-ca: the certificate is checked against {root}{crl}, not its name"
        )
    else:
        advice = "fine on this host's loopback" if local else "use sslmode=verify-full with the provider's CA"
        verify = Finding("certificate", local, f"sslmode {sslmode}: who the server is, is not checked; {advice}")
    return [tls, verify]


def _rights_findings(cursor: Any) -> list[Finding]:
    cursor.execute(
        "SELECT current_user, r.rolsuper, r.rolbypassrls,"
        " pg_catalog.pg_get_userbyid(d.datdba) = current_user OR r.rolsuper,"
        " has_database_privilege(current_database(), 'CREATE'),"
        " (SELECT count(*) FROM pg_tables t WHERE t.schemaname = 'public'"
        "   AND NOT pg_has_role(current_user, t.tableowner, 'USAGE'))"
        " FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = current_database()"
    )
    role, superuser, bypassrls, owns_database, can_create, foreign_tables = cursor.fetchone()
    findings = [
        Finding(
            "owner",
            foreign_tables == 0,
            f"{role} owns every table in public"
            if foreign_tables == 0
            else f"{role} does not own {foreign_tables} table(s) in public: migrations that alter them will fail",
            {"role": role, "superuser": superuser, "owns_database": owns_database},
        ),
        Finding(
            "bypassrls",
            bool(superuser or bypassrls),
            f"{role} bypasses row-level security, so normalize and stats-repair see every tenant's rows"
            if superuser or bypassrls
            else f"{role} is subject to row-level security: normalize would match only one tenant's rows; "
            "connect as a role with BYPASSRLS (on Supabase: postgres)",
        ),
    ]
    cursor.execute("SELECT pg_try_advisory_lock(%s)", (PROBE_LOCK_KEY,))
    locked = cursor.fetchone()[0]
    if locked:
        cursor.execute("SELECT pg_advisory_unlock(%s)", (PROBE_LOCK_KEY,))
    cursor.execute(
        "SELECT n.oid IS NOT NULL, coalesce(has_schema_privilege(n.oid, 'CREATE'), false)"
        " FROM (SELECT 1) one LEFT JOIN pg_namespace n ON n.nspname = 'drizzle'"
    )
    schema_exists, schema_create = cursor.fetchone()
    findings.append(
        Finding(
            "locks",
            bool(locked),
            "a session advisory lock can be taken (the migration and write locks work)"
            if locked
            else "the probe's advisory lock is held by another session, or locks do not work here (a pooler?)",
        )
    )
    if schema_exists:
        bookkeeping = bool(schema_create)
        detail = "the drizzle schema exists and " + (
            "takes new tables" if bookkeeping else "is not writable by " + role
        )
    else:
        bookkeeping = bool(can_create)
        detail = "the drizzle schema " + ("can be created" if bookkeeping else f"cannot be created by {role}")
    if not bookkeeping:
        detail += ": migrations could not record themselves; grant CREATE or migrate as the owner"
    findings.append(Finding("bookkeeping", bookkeeping, detail))
    return findings


def database_findings(database_url: str) -> list[Finding]:
    """Connect as the phases do and report libpq, TLS, verification, server version and the role's rights."""
    import psycopg2.extensions

    libpq = _libpq_version(psycopg2.extensions.libpq_version())
    try:
        connection = connect(database_url, "wfops-doctor")
    except DatabaseError as exc:
        return [Finding("database", False, f"psycopg2 (libpq {libpq}) {exc}", {"libpq": libpq})]
    try:
        connection.set_session(readonly=True, autocommit=True)
        parameters = connection.get_dsn_parameters()
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            server = cursor.fetchone()[0]
            findings = [
                Finding(
                    "database",
                    True,
                    f"psycopg2 (libpq {libpq}) reached {parameters.get('dbname')} at "
                    f"{parameters.get('host')}:{parameters.get('port')} as {parameters.get('user')}; "
                    f"PostgreSQL {server}",
                    {"libpq": libpq, "server_version": server},
                )
            ]
            findings += _tls_findings(cursor, parameters)
            findings += _rights_findings(cursor)
    finally:
        connection.close()
    return findings


def http_finding(check: str, url: str, headers: dict[str, str] | None, what: str) -> Finding:
    """One GET: reachable and answering 2xx, or why not (the headers, which may hold a key, are never shown)."""
    try:
        answer = request("GET", url, headers=headers, timeout=10)
    except HttpError as exc:
        return Finding(check, False, f"{what} cannot be reached: {exc}")
    if answer.status == 401:
        return Finding(check, False, f"{what} refused the API key (401): check vault_wfops_dokploy_api_key")
    if answer.status >= 300:
        return Finding(check, False, f"{what} answered {answer.status}: {answer.text.strip()[:160]}")
    return Finding(check, True, f"{what} answered {answer.status}", {"status": answer.status})
