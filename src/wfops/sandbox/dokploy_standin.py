"""A stand-in for Dokploy's API (which cannot run here), following its real paths, header, queue and statuses.

`https://<dokploy>/api/<router>.<procedure>`: queries are GET with query parameters, mutations POST with a JSON
body; only the `x-api-key` header authenticates (401 {"message": "Unauthorized"} otherwise). application.deploy
and compose.deploy only queue the job (no deployment id returned); the deployment row appears when the worker
starts it, newest first in deployment.all, with status running | done | error | cancelled; `done` is set when
the service was updated, before the new app is healthy. "Deploying" switches the stand-in app to the source
ref (what a `git push` put on the deploy branch, with the commit and tag it resolved to: POST /__standin/source).
rollback.rollback is synchronous and, as in Dokploy, adds no deployment row: the newest `done` row is then not what
serves.

Switches for tests (POST /__standin/mode): deploy normal | fail | hang | vanish, auth normal | unauthorized,
errors_500 (answer the next N API calls with 500), health_after_deploy ok | fail.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

from wfops.sandbox.app_server import AppState, Version
from wfops.sandbox.loopback import LoopbackServer

KEEP_DEPLOYMENTS = 10


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class DokployState:
    api_key: str
    application_id: str
    compose_id: str
    app: AppState
    source: Version = field(default_factory=lambda: Version("previous"))
    deploy_mode: str = "normal"
    auth_mode: str = "normal"
    errors_500: int = 0
    health_after_deploy: str = "ok"
    rollback_active: bool = True
    queue_delay_s: float = 0.3
    build_s: float = 0.6
    boot_s: float = 0.6
    deployments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    logs: dict[str, list[str]] = field(default_factory=dict)
    rollbacks: dict[str, dict[str, Any]] = field(default_factory=dict)
    queue: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def rows(self, service_id: str) -> list[dict[str, Any]]:
        return self.deployments.setdefault(service_id, [])

    def seed_running_release(self) -> None:
        """The app already runs a deployment (the previous release) when the sandbox comes up."""
        deployment_id = secrets.token_urlsafe(12)
        rollback_id = secrets.token_urlsafe(10) if self.rollback_active else None
        if rollback_id is not None:
            rollback = {"rollbackId": rollback_id, "deploymentId": deployment_id, "source": self.source}
            self.rollbacks[rollback_id] = rollback
        self.logs[deployment_id] = [f"Cloning source at {self.source.ref}", "Build succeeded"]
        self.rows(self.application_id).append(
            {
                "deploymentId": deployment_id,
                "title": "Manual deployment",
                "description": "",
                "status": "done",
                "logPath": "",
                "pid": None,
                "applicationId": self.application_id,
                "composeId": None,
                "serverId": None,
                "createdAt": _now(),
                "startedAt": _now(),
                "finishedAt": _now(),
                "errorMessage": None,
                "rollbackId": rollback_id,
                "isPreviewDeployment": False,
            }
        )


class _Worker:
    """Dokploy's in-memory queue worker: one job at a time per service."""

    def __init__(self, state: DokployState) -> None:
        self.state = state

    def run(self, job: dict[str, Any]) -> None:
        state = self.state
        time.sleep(state.queue_delay_s)
        with state.lock:
            mode = state.deploy_mode
            if job in state.queue:
                state.queue.remove(job)
            if mode == "vanish":
                return  # lost with the in-memory queue: no row ever appears
            deployment_id = secrets.token_urlsafe(12)
            row = {
                "deploymentId": deployment_id,
                "title": job["title"],
                "description": job["description"],
                "status": "running",
                "logPath": f"/etc/dokploy/logs/{job['service_id']}/{deployment_id}.log",
                "pid": None,
                "applicationId": job["application_id"],
                "composeId": job["compose_id"],
                "serverId": None,
                "createdAt": _now(),
                "startedAt": _now(),
                "finishedAt": None,
                "errorMessage": None,
                "rollbackId": None,
                "isPreviewDeployment": False,
            }
            rows = state.rows(job["service_id"])
            rows.insert(0, row)
            del rows[KEEP_DEPLOYMENTS:]
            source = state.source
            state.logs[deployment_id] = [f"Cloning source at {source.ref}", "Running npm ci", "Running npm run build"]
        if mode == "hang":
            return
        time.sleep(state.build_s)
        with state.lock:
            if mode == "fail":
                state.logs[deployment_id] += [
                    "src/app/page.tsx:12: Type error: Property 'guestCount' is missing",
                    "Error: Command failed: npm run build (exit 1)",
                ]
                row.update(status="error", finishedAt=_now(), errorMessage="Error: Command failed: npm run build")
                return
            state.logs[deployment_id] += ["Build succeeded", "Updating swarm service weddingflo"]
            if state.rollback_active and job["application_id"]:
                rollback_id = secrets.token_urlsafe(10)
                rollback = {"rollbackId": rollback_id, "deploymentId": deployment_id, "source": source}
                state.rollbacks[rollback_id] = rollback
                row["rollbackId"] = rollback_id
            row.update(status="done", finishedAt=_now())
        # Start-first: the old task keeps serving until the new one has booted.
        time.sleep(state.boot_s)
        with state.app.lock:
            state.app.version = source
            state.app.healthy = state.health_after_deploy == "ok"


class _Handler(BaseHTTPRequestHandler):
    server_version = "DokployStandIn/0.30"
    state: DokployState

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _reply(self, status: int, body: Any, content_type: str = "application/json") -> None:
        payload = (
            body.encode()
            if isinstance(body, str) and content_type != "application/json"
            else (b"" if body is None else json.dumps(body).encode())
        )
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            return json.loads(self.rfile.read(length)) if length else {}
        except json.JSONDecodeError:
            return {}

    def _denied(self) -> bool:
        """Dokploy's checks before any procedure: the API key, then (for tests) forced 500s."""
        key = self.headers.get("x-api-key") or ""
        if self.state.auth_mode == "unauthorized" or not hmac.compare_digest(key, self.state.api_key):
            self._reply(HTTPStatus.UNAUTHORIZED, {"message": "Unauthorized"})
            return True
        with self.state.lock:
            if self.state.errors_500 > 0:
                self.state.errors_500 -= 1
                self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"message": "Internal server error"})
                return True
        return False

    def _route(self) -> tuple[str, dict[str, str]]:
        parsed = urllib.parse.urlsplit(self.path)
        return parsed.path, dict(urllib.parse.parse_qsl(parsed.query))

    def do_GET(self) -> None:
        path, query = self._route()
        if path == "/__standin/state":
            with self.state.lock:
                self._reply(
                    HTTPStatus.OK,
                    {
                        "source": asdict(self.state.source),
                        "serving": asdict(self.state.app.version),
                        "queue": len(self.state.queue),
                        "deploy_mode": self.state.deploy_mode,
                    },
                )
            return
        if self._denied():
            return
        state = self.state
        if path == "/api/application.one":
            if query.get("applicationId") != state.application_id:
                self._reply(HTTPStatus.NOT_FOUND, {"message": "Application not found"})
                return
            rows = state.rows(state.application_id)
            status = rows[0]["status"] if rows else "idle"
            self._reply(
                HTTPStatus.OK,
                {
                    "applicationId": state.application_id,
                    "name": "weddingflo",
                    "appName": "weddingflo",
                    "applicationStatus": {"running": "running", "done": "done", "error": "error"}.get(status, "idle"),
                    "rollbackActive": state.rollback_active,
                    "rollbackRegistryId": "registry-1",
                },
            )
        elif path in ("/api/deployment.all", "/api/deployment.allByCompose"):
            key = "applicationId" if path.endswith(".all") else "composeId"
            service_id = query.get(key, "")
            if service_id not in (state.application_id, state.compose_id):
                self._reply(HTTPStatus.NOT_FOUND, {"message": f"{key} not found"})
                return
            with state.lock:
                self._reply(HTTPStatus.OK, [dict(row) for row in state.rows(service_id)])
        elif path == "/api/deployment.readLogs":
            lines = state.logs.get(query.get("deploymentId", ""))
            if lines is None:
                self._reply(HTTPStatus.NOT_FOUND, {"message": "Deployment not found"})
                return
            tail = max(1, min(int(query.get("tail", "100") or 100), 10000))
            self._reply(HTTPStatus.OK, "\n".join(lines[-tail:]) + "\n", "text/plain; charset=utf-8")
        elif path == "/api/deployment.queueList":
            with state.lock:
                self._reply(HTTPStatus.OK, [dict(job) for job in state.queue])
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"message": "Not found"})

    def do_POST(self) -> None:
        path, _ = self._route()
        body = self._body()
        state = self.state
        if path == "/__standin/mode":
            with state.lock:
                state.deploy_mode = body.get("deploy", state.deploy_mode)
                state.auth_mode = body.get("auth", state.auth_mode)
                state.errors_500 = int(body.get("errors_500", state.errors_500))
                state.health_after_deploy = body.get("health_after_deploy", state.health_after_deploy)
                state.rollback_active = bool(body.get("rollback_active", state.rollback_active))
            self._reply(HTTPStatus.OK, {"ok": True})
            return
        if path == "/__standin/source":
            with state.lock:
                state.source = Version(str(body["ref"]), body.get("commit") or None, body.get("tag") or None)
            self._reply(HTTPStatus.OK, {"source": asdict(state.source)})
            return
        if self._denied():
            return
        if path in ("/api/application.deploy", "/api/application.redeploy", "/api/compose.deploy"):
            self._queue(path, body)
        elif path == "/api/rollback.rollback":
            rollback = state.rollbacks.get(str(body.get("rollbackId", "")))
            if rollback is None:
                self._reply(HTTPStatus.NOT_FOUND, {"message": "Rollback not found"})
                return
            # Synchronous swarm update to the old image; no deployment row, applicationStatus unchanged.
            time.sleep(state.boot_s)
            with state.app.lock:
                state.app.version = rollback["source"]
                state.app.healthy = True
            self._reply(HTTPStatus.OK, None)
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"message": "Not found"})

    def _queue(self, path: str, body: dict[str, Any]) -> None:
        state = self.state
        compose = path.startswith("/api/compose.")
        service_id = str(body.get("composeId" if compose else "applicationId", ""))
        if service_id != (state.compose_id if compose else state.application_id):
            self._reply(HTTPStatus.NOT_FOUND, {"message": "Compose not found" if compose else "Application not found"})
            return
        job = {
            "service_id": service_id,
            "application_id": None if compose else service_id,
            "compose_id": service_id if compose else None,
            "title": body.get("title") or "Manual deployment",
            "description": body.get("description") or "",
        }
        with state.lock:
            state.queue.append(job)
        threading.Thread(target=_Worker(state).run, args=(job,), daemon=True).start()
        if compose:
            self._reply(HTTPStatus.OK, {"success": True, "message": "Deployment queued", "composeId": service_id})
        else:
            self._reply(HTTPStatus.OK, None)  # self-hosted Dokploy answers an empty body, and no id


class DokployServer(LoopbackServer):
    """The stand-in API on a loopback port, in a thread."""

    def __init__(self, state: DokployState, port: int) -> None:
        super().__init__(_Handler, state, port)
