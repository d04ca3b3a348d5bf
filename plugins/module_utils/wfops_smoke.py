"""The runbook's smoke flows that a machine can check honestly (phase 6).

Flow 1 (Better Auth under /api/auth) and flow 8 (the chatbot's SSE stream) over HTTP; flow 7 (tenant isolation)
in the database, inside transactions that are always rolled back. Each check is pass / fail / skip with evidence.
"""

from __future__ import annotations

import socket
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ansible.module_utils.wfops_http import HttpError, request
from ansible.module_utils.wfops_pg import quote_ident

COOKIE_NAMES = ("better-auth.session_token", "__Secure-better-auth.session_token")


@dataclass
class Check:
    flow: str
    check: str
    status: str  # pass | fail | skip
    evidence: str


def _cookie_from(headers: dict[str, str]) -> str | None:
    for key, value in headers.items():
        if key.lower() == "set-cookie":
            for part in value.split(","):
                name, _, rest = part.strip().partition("=")
                if name in COOKIE_NAMES and rest.split(";", 1)[0]:
                    return f"{name}={rest.split(';', 1)[0]}"
    return None


def health_check(base_url: str, path: str) -> Check:
    """Before the flows: the app's health answer, and when it is not healthy, why (a database or TLS failure named
    as such, from the answer's database/error fields, the way the app reports it)."""
    url = f"{base_url.rstrip('/')}{path}"

    def result(passed: bool, evidence: str) -> Check:
        return Check("0 health", "the app is healthy and reaches its database", "pass" if passed else "fail", evidence)

    try:
        answer = request("GET", url, timeout=10)
    except HttpError as exc:
        return result(False, f"the app cannot be reached: {exc}")
    try:
        body = answer.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    if answer.status == 200:
        return result(True, f"GET {path} -> 200")
    database = body.get("database")
    if database not in (None, "ok", "unchecked"):
        reason = body.get("error") or body.get("reason") or f"database {database}"
        return result(False, f"the app cannot reach its database: {reason} (GET {path} -> {answer.status})")
    return result(False, f"GET {path} -> {answer.status}: {answer.text.strip()[:160]}")


def auth_flow(
    base_url: str, email: str, password: str, origin: str, protected_path: str, check_mode: bool = False
) -> tuple[list[Check], str | None]:
    """Flow 1: sign-in page, email sign-in, session, sign-out, Google URL, protected page redirect.

    Returns the checks and the cookie of a second session for the later flows, which the caller signs out
    (sign_out) when it is done; a dry run signs in nowhere and creates no session."""
    base = base_url.rstrip("/")
    auth = f"{base}/api/auth"
    checks: list[Check] = []
    cookie: str | None = None

    def add(check: str, passed: bool, evidence: str) -> None:
        checks.append(Check("1 authentication", check, "pass" if passed else "fail", evidence))

    try:
        page = request("GET", f"{base}/sign-in", headers={"Accept": "text/html"})
        add("the sign-in page answers", page.status == 200, f"GET /sign-in -> {page.status}")
        if check_mode:
            checks.append(
                Check(
                    "1 authentication",
                    "sign in, the session, sign out",
                    "skip",
                    f"would sign in as {email}, read the session and sign out (a dry run creates no session)",
                )
            )
            _read_only_auth_checks(base, auth, origin, protected_path, add)
            return checks, None
        signed_in = request(
            "POST", f"{auth}/sign-in/email", headers={"Origin": origin}, body={"email": email, "password": password}
        )
        cookie = _cookie_from(signed_in.headers)
        add(
            "sign in with email and password returns a session cookie",
            signed_in.status == 200 and cookie is not None,
            f"POST /sign-in/email -> {signed_in.status}"
            + (f", cookie {cookie.split('=')[0]}" if cookie else f", {signed_in.text.strip()[:120]}"),
        )
        if cookie is None:
            return checks, None
        session = request("GET", f"{auth}/get-session", headers={"Cookie": cookie})
        data = session.json() if session.status == 200 else None
        same_user = isinstance(data, dict) and (data.get("user") or {}).get("email", "").lower() == email.lower()
        add(
            "the session persists and belongs to that user",
            same_user,
            f"GET /get-session -> {session.status}, user {((data or {}).get('user') or {}).get('email')}",
        )
        signed_out = request("POST", f"{auth}/sign-out", headers={"Cookie": cookie, "Origin": origin}, body={})
        after = request("GET", f"{auth}/get-session", headers={"Cookie": cookie})
        add(
            "sign out ends the session",
            signed_out.status == 200 and after.status == 200 and after.json() is None,
            f"POST /sign-out -> {signed_out.status}; get-session after it -> {after.text.strip()[:60]}",
        )
        _read_only_auth_checks(base, auth, origin, protected_path, add)
        # A fresh session for the later flows (the first one was signed out); the caller signs it out.
        again = request(
            "POST", f"{auth}/sign-in/email", headers={"Origin": origin}, body={"email": email, "password": password}
        )
        cookie = _cookie_from(again.headers)
    except HttpError as exc:
        add("the app answers", False, str(exc))
        return checks, None
    return checks, cookie


def _read_only_auth_checks(
    base: str, auth: str, origin: str, protected_path: str, add: Callable[[str, bool, str], None]
) -> None:
    """The checks of flow 1 that create no session: the Google URL, the protected page's redirect."""
    social = request(
        "POST",
        f"{auth}/sign-in/social",
        headers={"Origin": origin},
        body={"provider": "google", "disableRedirect": True},
    )
    url = (social.json() or {}).get("url", "") if social.status == 200 else ""
    add(
        "Google sign-in offers an accounts.google.com URL",
        urllib.parse.urlsplit(url).netloc == "accounts.google.com",
        f"POST /sign-in/social -> {social.status}, {urllib.parse.urlsplit(url).netloc or social.text[:80]}",
    )
    protected = request("GET", f"{base}{protected_path}")
    location = protected.headers.get("Location") or protected.headers.get("location") or ""
    add(
        "a protected page without a session redirects to /sign-in",
        protected.status in (302, 303, 307) and location.rstrip("/").endswith("/sign-in"),
        f"GET {protected_path} -> {protected.status} {location}",
    )


def sign_out(base_url: str, cookie: str, origin: str) -> Check:
    """End the session the later flows used: smoke leaves no session of the smoke account behind."""
    auth = f"{base_url.rstrip('/')}/api/auth"
    try:
        signed_out = request("POST", f"{auth}/sign-out", headers={"Cookie": cookie, "Origin": origin}, body={})
        after = request("GET", f"{auth}/get-session", headers={"Cookie": cookie})
        passed = signed_out.status == 200 and after.status == 200 and after.json() is None
        evidence = f"POST /sign-out -> {signed_out.status}; get-session after it -> {after.text.strip()[:60]}"
    except HttpError as exc:
        passed, evidence = False, str(exc)
    status = "pass" if passed else "fail"
    return Check("1 authentication", "the smoke run's last session is signed out", status, evidence)


def sse_flow(base_url: str, path: str, cookie: str | None, timeout_s: float) -> list[Check]:
    """Flow 8: the stream answers text/event-stream and delivers a first event within the timeout."""
    parsed = urllib.parse.urlsplit(base_url.rstrip("/") + path)
    started = time.monotonic()
    status = "no answer"
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 80), timeout=timeout_s) as sock:
            sock.settimeout(max(timeout_s - (time.monotonic() - started), 0.1))
            headers = [f"GET {parsed.path} HTTP/1.1", f"Host: {parsed.netloc}", "Accept: text/event-stream"]
            if cookie:
                headers.append(f"Cookie: {cookie}")
            sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
            received = b""
            while True:
                _, separator, body = received.partition(b"\r\n\r\n")
                if separator and b"\n\n" in body:
                    break
                remaining = timeout_s - (time.monotonic() - started)
                if remaining <= 0:
                    raise TimeoutError
                sock.settimeout(remaining)
                chunk = sock.recv(4096)
                if not chunk:
                    break
                received += chunk
        head, _, stream = received.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        status = lines[0] if lines else "no answer"
        content_type = next((x.split(":", 1)[1].strip() for x in lines if x.lower().startswith("content-type")), "")
        first = stream.split(b"\n\n", 1)[0].decode(errors="replace").strip()
        elapsed = time.monotonic() - started
        passed = " 200 " in f"{status} " and content_type.startswith("text/event-stream") and bool(first)
        evidence = f"{status}, {content_type or 'no content type'}, first event after {elapsed:.2f}s: {first[:60]}"
    except (OSError, TimeoutError) as exc:
        passed, evidence = False, f"no event within {timeout_s:g}s ({status}; {type(exc).__name__})"
    return [
        Check("8 real-time sync", "the chatbot stream delivers a first event", "pass" if passed else "fail", evidence)
    ]


@dataclass
class TenantProbe:
    table: str
    columns: dict[str, str]  # column -> SQL expression; %(company)s / %(client)s refer to tenant B


def tenant_tables(cursor: Any, excluded: list[str]) -> list[str]:
    """Tables of public with a company_id column, but for those the auth layer reads across tenants."""
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind = 'r' AND EXISTS (SELECT 1 FROM pg_attribute a"
        " WHERE a.attrelid = c.oid AND a.attname = 'company_id' AND NOT a.attisdropped) ORDER BY 1"
    )
    return [row[0] for row in cursor.fetchall() if row[0] not in excluded]


def isolation_flow(
    connection: Any, tenant_role: str, login_roles: list[str], probes: list[TenantProbe], excluded: list[str]
) -> list[Check]:
    """Flow 7 in the database: as the app's role with tenant A set, nothing of B is visible or writable."""
    checks: list[Check] = []

    def add(check: str, passed: bool, evidence: str, status: str | None = None) -> None:
        checks.append(Check("7 multi-tenant isolation", check, status or ("pass" if passed else "fail"), evidence))

    with connection.cursor() as cursor:
        tables = tenant_tables(cursor, excluded)
        cursor.execute(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = ANY(%s)"
            " AND relnamespace = 'public'::regnamespace",
            ([*tables, "companies"],),
        )
        flags = {name: (enabled, forced) for name, enabled, forced in cursor.fetchall()}
        weak = sorted(name for name, (enabled, forced) in flags.items() if not (enabled and forced))
        add(
            "RLS is enabled and forced on every tenant table",
            not weak,
            f"{len(flags)} tables checked" + (f"; not enabled+forced: {', '.join(weak)}" if weak else ""),
        )
        cursor.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) AND (rolbypassrls OR rolsuper)", (login_roles,)
        )
        bypassing = [row[0] for row in cursor.fetchall()]
        add(
            "no login role the app uses bypasses RLS",
            not bypassing,
            f"roles checked: {', '.join(login_roles) or 'none'}"
            + (f"; BYPASSRLS: {', '.join(bypassing)}" if bypassing else ""),
        )
        cursor.execute(
            "SELECT c.company_id, (array_agg(c.id ORDER BY c.id))[1] FROM clients c GROUP BY c.company_id"
            " ORDER BY count(*) DESC, c.company_id LIMIT 2"
        )
        companies = cursor.fetchall()
    connection.rollback()
    if len(companies) < 2:
        add("tenant A sees none of tenant B's rows", False, "fewer than two companies with clients", status="skip")
        return checks
    (company_a, _), (company_b, client_b) = companies
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL ROLE {quote_ident(tenant_role)}")
            cursor.execute("SELECT set_config('app.current_company_id', %s, true)", (str(company_a),))
            leaks, own = [], 0
            for table in tables:
                cursor.execute(
                    f"SELECT count(*) FILTER (WHERE company_id = %s), count(*) FROM {quote_ident(table)}", (company_b,)
                )
                other, total = cursor.fetchone()
                own += total
                if other:
                    leaks.append(f"{table} ({other})")
            add(
                "as the app with tenant A set, no row of tenant B is visible",
                not leaks and own > 0,
                f"{len(tables)} tables, {own} rows visible to A"
                + (f"; B's rows visible in {', '.join(leaks)}" if leaks else ""),
            )
            updated = []
            for table in tables:
                cursor.execute(
                    f"UPDATE {quote_ident(table)} SET company_id = company_id WHERE company_id = %s", (company_b,)
                )
                if cursor.rowcount:
                    updated.append(f"{table} ({cursor.rowcount})")
            add(
                "an UPDATE of tenant B's rows matches 0 rows",
                not updated,
                "UPDATE ... WHERE company_id = B"
                + (f" matched {', '.join(updated)}" if updated else " matched 0 in every table"),
            )
            refused, accepted = [], []
            for probe in probes:
                columns = ", ".join(quote_ident(c) for c in probe.columns)
                values = ", ".join(probe.columns.values())
                cursor.execute("SAVEPOINT probe")
                try:
                    cursor.execute(
                        f"INSERT INTO {quote_ident(probe.table)} ({columns}) VALUES ({values})",
                        {"company": str(company_b), "client": str(client_b)},
                    )
                    accepted.append(probe.table)
                except Exception as exc:  # the SQLSTATE is the evidence
                    code = getattr(exc, "pgcode", None)
                    (refused if code == "42501" else accepted).append(
                        f"{probe.table}" + ("" if code == "42501" else f" ({code})")
                    )
                cursor.execute("ROLLBACK TO SAVEPOINT probe")
            add(
                "an INSERT with tenant B's company_id is refused (42501)",
                bool(probes) and not accepted,
                f"refused: {', '.join(refused) or 'none'}"
                + (f"; not refused by RLS: {', '.join(accepted)}" if accepted else ""),
            )
    finally:
        connection.rollback()
    return checks


def invariant_checks(results: list[Any], flows: dict[str, str]) -> list[Check]:
    """Flows 2-4 as the data invariants: each invariant reported under the runbook flow it stands for."""
    return [
        Check(
            flows.get(result.name, "2-4 data"),
            result.description or result.name,
            "pass" if result.passed else "fail",
            "ok"
            if result.passed
            else f"{result.value}; e.g. {', '.join(map(str, result.examples[:3]))}; {result.action}",
        )
        for result in results
    ]


def as_dicts(checks: list[Check]) -> list[dict[str, str]]:
    return [asdict(check) for check in checks]
