"""A stand-in for the WeddingFlo app (which cannot run here), on loopback, shaped like the real one.

Health endpoint reporting the running version; the sign-in page; Better Auth's endpoints under /api/auth backed by
the sandbox database (scrypt passwords in accounts, sessions in a table, the signed session cookie, Origin
checks); a protected page; the chatbot's SSE stream. Switches (POST /__standin/app) break health or SSE, and choose
where and how the health answer reports the version: `version_field` (a dotted JSON path, default `commit`) and
`version_format` (full SHA, short SHA, tag, or the ref as built), as real apps differ.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

import psycopg2

from wfops.sandbox.loopback import LoopbackServer
from wfops.sandbox.passwords import verify_password

COOKIE = "better-auth.session_token"
SESSION_DAYS = 7


VERSION_FORMATS = ("full", "short", "tag", "ref")


@dataclass(frozen=True)
class Version:
    """The code the app runs: the ref Dokploy built and, when the push knew them, its commit and tag."""

    ref: str
    commit: str | None = None
    tag: str | None = None

    def formatted(self, style: str) -> str:
        """As the app reports it; a format this version cannot give (no commit known) falls back to the ref."""
        if style == "full" and self.commit:
            return self.commit
        if style == "short" and self.commit:
            return self.commit[:7]
        if style == "tag" and self.tag:
            return self.tag
        return self.ref


def _put(body: dict[str, Any], path: str, value: Any) -> None:
    """body at a dotted path (build.git.sha) = value."""
    *parents, leaf = path.split(".")
    for part in parents:
        body = body.setdefault(part, {})
    body[leaf] = value


@dataclass
class AppState:
    """What the stand-in serves; the Dokploy stand-in changes `version` when it deploys or rolls back."""

    database_url: str
    base_url: str
    cookie_secret: str
    version: Version = field(default_factory=lambda: Version("previous"))
    version_field: str = "commit"
    version_format: str = "full"
    healthy: bool = True
    sse_alive: bool = True
    # The app's log (what `docker service logs` shows in production): one line per request and per error.
    log_path: str | None = None
    started_at: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _sign(secret: str, token: str) -> str:
    digest = hmac.new(secret.encode(), token.encode(), hashlib.sha256).digest()
    return f"{token}.{base64.b64encode(digest).decode()}"


def _unsign(secret: str, value: str) -> str | None:
    token, _, _ = value.rpartition(".")
    if token and hmac.compare_digest(_sign(secret, token), value):
        return token
    return None


class _Handler(BaseHTTPRequestHandler):
    server_version = "WeddingFloSandbox/1"
    state: AppState

    def log_message(self, format: str, *args: Any) -> None:
        return

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = urllib.parse.urlsplit(self.path).path
        if self.state.log_path and not path.startswith("/__standin"):
            stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            with self.state.lock, open(self.state.log_path, "a", encoding="utf-8") as log:  # noqa: PTH123
                log.write(f"{stamp} {self.command} {path} {int(code) if str(code).isdigit() else code}\n")

    # ----------------------------------------------------------------- plumbing
    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        try:
            return json.loads(self.rfile.read(length))
        except json.JSONDecodeError:
            return {}

    def _db(self) -> Any:
        return psycopg2.connect(self.state.database_url, connect_timeout=5)

    def _session_token(self) -> str | None:
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return _unsign(self.state.cookie_secret, urllib.parse.unquote(value))
        return None

    def _origin_error(self) -> tuple[int, dict[str, str]] | None:
        """Better Auth: a non-GET request carrying a cookie must come from a trusted Origin."""
        origin = self.headers.get("Origin") or self.headers.get("Referer")
        if origin is None:
            if self.headers.get("Cookie"):
                return 403, {"code": "MISSING_OR_NULL_ORIGIN", "message": "Missing or null Origin"}
            return None
        if origin.rstrip("/") != self.state.base_url.rstrip("/"):
            return 403, {"code": "INVALID_ORIGIN", "message": "Invalid origin"}
        return None

    def _current_user(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        token = self._session_token()
        if token is None:
            return None
        with self._db() as connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT s.id, s.token, s.expires_at, u.id, u.name, u.email FROM sessions s JOIN users u"
                " ON u.id = s.user_id WHERE s.token = %s AND s.expires_at > now()",
                (token,),
            )
            row = cursor.fetchone()
        connection.close()
        if row is None:
            return None
        session = {"id": row[0], "token": row[1], "expiresAt": row[2].isoformat(), "userId": row[3]}
        return session, {"id": row[3], "name": row[4], "email": row[5]}

    def _log_line(self, text: str) -> None:
        if self.state.log_path:
            stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            with self.state.lock, open(self.state.log_path, "a", encoding="utf-8") as log:  # noqa: PTH123
                log.write(f"{stamp} {text}\n")

    # ----------------------------------------------------------------- routes
    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/api/health":
            self._health()
        elif path == "/sign-in":
            page = b"<!doctype html><title>Sign in - WeddingFlo</title><form method=post><input name=email></form>"
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
        elif path == "/api/auth/get-session":
            current = self._current_user()
            body = {"session": current[0], "user": current[1]} if current else None
            self._json(HTTPStatus.OK, body, {"Cache-Control": "no-store"})
        elif path in ("/dashboard", "/clients"):
            if self._current_user() is None:
                self.send_response(HTTPStatus.FOUND)
                self.send_header("Location", "/sign-in")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._json(HTTPStatus.OK, {"page": path})
        elif path == "/api/chatbot/stream":
            self._stream()
        else:
            self._json(HTTPStatus.NOT_FOUND, {"message": "Not found"})

    def do_POST(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/__standin/app":
            body = self._body()
            if body.get("version_format", "full") not in VERSION_FORMATS:
                self._json(HTTPStatus.BAD_REQUEST, {"message": f"version_format is one of {VERSION_FORMATS}"})
                return
            with self.state.lock:
                self.state.healthy = bool(body.get("healthy", self.state.healthy))
                self.state.sse_alive = bool(body.get("sse", self.state.sse_alive))
                self.state.version_field = str(body.get("version_field", self.state.version_field))
                self.state.version_format = str(body.get("version_format", self.state.version_format))
            self._json(HTTPStatus.OK, {"healthy": self.state.healthy, "sse": self.state.sse_alive})
            return
        if path.startswith("/api/auth/"):
            problem = self._origin_error()
            if problem:
                self._json(problem[0], problem[1])
                return
        if path == "/api/auth/sign-in/email":
            self._sign_in(self._body())
        elif path == "/api/auth/sign-out":
            self._sign_out()
        elif path == "/api/auth/sign-in/social":
            self._social(self._body())
        else:
            self._json(HTTPStatus.NOT_FOUND, {"message": "Not found"})

    def _health(self) -> None:
        with self.state.lock:
            healthy, field_path = self.state.healthy, self.state.version_field
            version = self.state.version.formatted(self.state.version_format)
        database = "unchecked"
        if healthy:
            try:
                with self._db() as connection, connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
                connection.close()
                database = "ok"
            except psycopg2.Error:
                database = "unreachable"
        ok = healthy and database == "ok"
        body: dict[str, Any] = {"status": "ok" if ok else "error", "database": database}
        _put(body, field_path, version)
        self._json(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, body)

    def _sign_in(self, body: dict[str, Any]) -> None:
        email, password = str(body.get("email", "")), str(body.get("password", ""))
        with self._db() as connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT u.id, u.name, u.email, a.password FROM users u JOIN accounts a ON a.user_id = u.id"
                " AND a.provider_id = 'credential' WHERE lower(u.email) = lower(%s)",
                (email,),
            )
            row = cursor.fetchone()
            if row is None or not row[3] or not verify_password(row[3], password):
                connection.close()
                self._log_line("WARN [auth] sign-in failed: INVALID_EMAIL_OR_PASSWORD")
                self._json(
                    HTTPStatus.UNAUTHORIZED,
                    {"code": "INVALID_EMAIL_OR_PASSWORD", "message": "Invalid email or password"},
                )
                return
            token = secrets.token_urlsafe(24)
            expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=SESSION_DAYS)
            cursor.execute(
                "INSERT INTO sessions (id, token, expires_at, user_id, ip_address, user_agent)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    secrets.token_hex(16),
                    token,
                    expires,
                    row[0],
                    self.client_address[0],
                    self.headers.get("User-Agent", ""),
                ),
            )
        connection.close()
        cookie = (
            f"{COOKIE}={urllib.parse.quote(_sign(self.state.cookie_secret, token))}; Path=/; HttpOnly;"
            f" SameSite=Lax; Max-Age={SESSION_DAYS * 86400}"
        )
        user = {"id": row[0], "name": row[1], "email": row[2]}
        self._json(
            HTTPStatus.OK, {"redirect": False, "token": token, "url": None, "user": user}, {"Set-Cookie": cookie}
        )

    def _sign_out(self) -> None:
        token = self._session_token()
        if token:
            with self._db() as connection, connection.cursor() as cursor:
                cursor.execute("DELETE FROM sessions WHERE token = %s", (token,))
            connection.close()
        self._json(
            HTTPStatus.OK, {"success": True}, {"Set-Cookie": f"{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"}
        )

    def _social(self, body: dict[str, Any]) -> None:
        if body.get("provider") != "google":
            self._json(HTTPStatus.NOT_FOUND, {"code": "PROVIDER_NOT_FOUND", "message": "Provider not found"})
            return
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": "sandbox.apps.googleusercontent.com",
                "redirect_uri": f"{self.state.base_url}/api/auth/callback/google",
                "scope": "openid email profile",
                "state": secrets.token_urlsafe(16),
            }
        )
        self._json(HTTPStatus.OK, {"url": f"https://accounts.google.com/o/oauth2/v2/auth?{query}", "redirect": False})

    def _stream(self) -> None:
        if not self.state.sse_alive:
            # A dead stream: the connection is accepted and nothing ever arrives.
            time.sleep(30)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "keep-alive")
        self.end_headers()
        try:
            self.wfile.write(b'event: ready\ndata: {"status":"connected"}\n\n')
            self.wfile.flush()
            for _ in range(30):
                time.sleep(1)
                self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return


class AppServer(LoopbackServer):
    """The stand-in app on a loopback port, in a thread."""

    def __init__(self, state: AppState, port: int) -> None:
        super().__init__(_Handler, state, port)
