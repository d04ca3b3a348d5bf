"""Deploying through Dokploy's API, and waiting until the app is really healthy (runbook phase 5).

Dokploy (v0.30): `<api>/api/<router>.<procedure>`, queries GET with query parameters, mutations POST with JSON;
only `x-api-key` authenticates. application.deploy / compose.deploy only queue the job and return no id, so a
deploy carries a unique title and is found again in deployment.all (newest first) once the worker starts it;
`done` only means the swarm service was updated, so the app's health URL is polled afterwards.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.wfops_http import HttpError, Response, request, request_with_retries

FINAL_STATUSES = ("done", "error", "cancelled")


class DeployError(Exception):
    """A failure a person can act on; never carries the API key."""

    def __init__(self, message: str, **facts: Any) -> None:
        super().__init__(message)
        self.facts = facts


@dataclass
class Service:
    api_url: str
    api_key: str
    service_type: str  # application | compose
    service_id: str

    @property
    def id_field(self) -> str:
        return "composeId" if self.service_type == "compose" else "applicationId"


@dataclass
class Timing:
    poll_interval_s: float = 2.0
    appear_timeout_s: float = 120.0
    deploy_timeout_s: float = 1200.0
    health_timeout_s: float = 300.0
    attempts: int = 3


class Dokploy:
    """The few procedures wfops needs, with Dokploy's answers turned into sentences."""

    def __init__(self, service: Service, timing: Timing) -> None:
        self.service = service
        self.timing = timing

    def _url(self, procedure: str, query: dict[str, Any] | None = None) -> str:
        base = self.service.api_url.rstrip("/")
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        return f"{base}/api/{procedure}{suffix}"

    def _check(self, procedure: str, answer: Response) -> Response:
        if answer.status == 401:
            raise DeployError(
                f"Dokploy rejected the API key (401 Unauthorized) on {procedure}: check vault_wfops_dokploy_api_key "
                "(an API key of the organisation owning the service; Dokploy reads it from the x-api-key header)",
                status=401,
            )
        if answer.status == 404:
            raise DeployError(
                f"Dokploy does not know {self.service.service_type} {self.service.service_id}"
                f" ({procedure} answered 404): check deploy_service_id",
                status=404,
            )
        if answer.status >= 400:
            raise DeployError(
                f"Dokploy answered {answer.status} on {procedure}: {answer.text.strip()[:300]}", status=answer.status
            )
        return answer

    def _call(self, method: str, procedure: str, *, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        try:
            answer = request_with_retries(
                method,
                self._url(procedure, query),
                attempts=self.timing.attempts,
                delay_s=min(self.timing.poll_interval_s, 2.0),
                headers={"x-api-key": self.service.api_key},
                body=body,
            )
        except HttpError as exc:
            raise DeployError(f"Dokploy's API failed on {procedure}: {exc}", status=exc.status) from None
        return self._check(procedure, answer)

    def deployments(self) -> list[dict[str, Any]]:
        procedure = "deployment.allByCompose" if self.service.service_type == "compose" else "deployment.all"
        rows = self._call("GET", procedure, query={self.service.id_field: self.service.service_id}).json()
        return rows if isinstance(rows, list) else []

    def read_logs(self, deployment_id: str, tail: int) -> str:
        try:
            answer = self._call("GET", "deployment.readLogs", query={"deploymentId": deployment_id, "tail": tail})
        except DeployError as exc:
            return f"(the logs could not be read: {exc})"
        return answer.text

    def deploy(self, title: str, description: str) -> None:
        router = "compose" if self.service.service_type == "compose" else "application"
        self._call(
            "POST",
            f"{router}.deploy",
            body={self.service.id_field: self.service.service_id, "title": title, "description": description},
        )

    def rollback(self, rollback_id: str) -> None:
        self._call("POST", "rollback.rollback", body={"rollbackId": rollback_id})


def summarize(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    keys = ("deploymentId", "title", "status", "createdAt", "startedAt", "finishedAt", "errorMessage", "rollbackId")
    return {key: row.get(key) for key in keys}


def last_done(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest deployment that finished (what a rollback returns to)."""
    return next((row for row in rows if row.get("status") == "done"), None)


def _poll(until: Callable[[], Any], timeout_s: float, interval_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = until()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval_s)


@dataclass
class Health:
    url: str
    expected_commit: str | None = None
    commit_field: str = "commit"
    last: str = "no answer yet"
    checks: int = 0
    observed_commit: Any = None

    def probe(self) -> bool:
        self.checks += 1
        try:
            answer = request("GET", self.url, timeout=10)
        except HttpError as exc:
            self.last = str(exc)
            return False
        body: Any = None
        try:
            body = answer.json()
        except ValueError:
            body = None
        self.observed_commit = body.get(self.commit_field) if isinstance(body, dict) else None
        self.last = f"{answer.status} {answer.text.strip()[:200]}"
        if answer.status != 200:
            return False
        return self.expected_commit is None or str(self.observed_commit) == str(self.expected_commit)


def wait_healthy(health: Health, timing: Timing) -> float:
    started = time.monotonic()
    if _poll(lambda: True if health.probe() else None, timing.health_timeout_s, timing.poll_interval_s) is None:
        wanted = f" reporting commit {health.expected_commit}" if health.expected_commit else ""
        raise DeployError(
            f"the app never became healthy{wanted} at {health.url} within {timing.health_timeout_s:g}s "
            f"({health.checks} checks; last answer: {health.last})",
            health={"url": health.url, "last": health.last, "checks": health.checks},
        )
    return round(time.monotonic() - started, 3)


@dataclass
class DeployResult:
    previous: dict[str, Any] | None
    deployment: dict[str, Any] | None = None
    title: str = ""
    queue_s: float = 0.0
    build_s: float = 0.0
    health_s: float = 0.0
    health: dict[str, Any] = field(default_factory=dict)
    check_mode: bool = False


def deploy_release(
    client: Dokploy, *, title: str, description: str, health: Health | None, log_tail: int, check_mode: bool
) -> DeployResult:
    """Record the current deployment, queue the release, find it, wait for it, then for the app's health."""
    result = DeployResult(previous=summarize(last_done(client.deployments())), title=title, check_mode=check_mode)
    if check_mode:
        return result
    try:
        return _deploy_and_wait(client, result, description, health, log_tail)
    except DeployError as exc:
        # Whatever failed, the rollback phase needs to know where to return to.
        exc.facts.setdefault("previous", result.previous)
        raise


def _deploy_and_wait(
    client: Dokploy, result: DeployResult, description: str, health: Health | None, log_tail: int
) -> DeployResult:
    timing = client.timing
    title = result.title
    if any(row.get("title") == title for row in client.deployments()):
        raise DeployError(f"a deployment titled {title!r} exists already: titles must be unique per release run")
    started = time.monotonic()
    client.deploy(title, description)

    def appeared() -> dict[str, Any] | None:
        return next((row for row in client.deployments() if row.get("title") == title), None)

    row = _poll(appeared, timing.appear_timeout_s, timing.poll_interval_s)
    if row is None:
        raise DeployError(
            f"Dokploy accepted the deploy but no deployment titled {title!r} appeared within "
            f"{timing.appear_timeout_s:g}s: the queued job was lost (Dokploy's queue is in memory and a restart "
            "drops it); check deployment.queueList in Dokploy, then run the deploy phase again"
        )
    result.queue_s = round(time.monotonic() - started, 3)
    deployment_id = row["deploymentId"]

    def finished() -> dict[str, Any] | None:
        current = next((r for r in client.deployments() if r.get("deploymentId") == deployment_id), None)
        return current if current and current.get("status") in FINAL_STATUSES else None

    final = _poll(finished, timing.deploy_timeout_s, timing.poll_interval_s)
    if final is None:
        raise DeployError(
            f"deployment {deployment_id} ({title}) is still running after {timing.deploy_timeout_s:g}s: see its logs "
            "in Dokploy; the previous deployment is still serving",
            deployment=summarize(row),
        )
    result.deployment = summarize(final)
    result.build_s = round(time.monotonic() - started - result.queue_s, 3)
    if final["status"] != "done":
        logs = client.read_logs(deployment_id, log_tail).strip().splitlines()
        raise DeployError(
            f"deployment {deployment_id} ended {final['status']}: {final.get('errorMessage') or 'no error message'}; "
            f"last log lines: {' | '.join(logs[-10:])}",
            deployment=result.deployment,
            logs=logs,
        )
    if health is not None:
        result.health_s = wait_healthy(health, timing)
        result.health = {"url": health.url, "last": health.last, "commit": health.observed_commit}
    return result


def rollback_to(client: Dokploy, rollback_id: str, health: Health | None) -> DeployResult:
    """Dokploy's rollback (synchronous swarm update to an earlier image), then the app's health."""
    timing = client.timing
    result = DeployResult(previous=summarize(last_done(client.deployments())), title=f"rollback {rollback_id}")
    started = time.monotonic()
    client.rollback(rollback_id)
    result.build_s = round(time.monotonic() - started, 3)
    if health is not None:
        result.health_s = wait_healthy(health, timing)
        result.health = {"url": health.url, "last": health.last, "commit": health.observed_commit}
    return result
