"""Deploying through Dokploy's API, and waiting until the app is really healthy (runbook phase 5).

Dokploy (v0.30): `<api>/api/<router>.<procedure>`, queries GET with query parameters, mutations POST with JSON;
only `x-api-key` authenticates. application.deploy / compose.deploy only queue the job and return no id, so a
deploy carries a unique title and is found again in deployment.all (newest first) once the worker starts it;
`done` only means the swarm service was updated, so the app's health URL is polled afterwards.

One health check serves deploy and rollback: the version is read from a JSON path of the health answer and matches
the expected code when it equals its ref, its commit (resolved in the app checkout), or another name it was seen
with, or is the same commit as a SHA prefix of at least 7 characters either way; a mismatch names both values.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ansible.module_utils.wfops_http import HttpError, Response, request, request_with_retries
from ansible.module_utils.wfops_ledger import BEFORE_LEDGER, Serving, is_sha, same_commit

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
        try:
            self._call("POST", "rollback.rollback", body={"rollbackId": rollback_id})
        except DeployError as exc:
            if exc.facts.get("status") != 404:
                raise
            raise DeployError(
                f"Dokploy has no rollback {rollback_id} (it keeps those of the last 10 deployments only): "
                "return by redeploying the ref instead (-e rollback_method=redeploy)",
                status=404,
            ) from None


def summarize(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    keys = ("deploymentId", "title", "status", "createdAt", "startedAt", "finishedAt", "errorMessage", "rollbackId")
    return {key: row.get(key) for key in keys}


def last_done(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest deployment row that finished (rollback.rollback adds none: not necessarily what serves)."""
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


def json_path(body: Any, path: str) -> Any:
    """The value at a dotted path of a JSON answer (`commit`, `version.sha`, `$.build.git.commit`, `items.0`)."""
    current = body
    for part in path[1:].strip(".").split(".") if path.startswith("$") else path.strip(".").split("."):
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


@dataclass
class Expected:
    """The code the app must report: a ref, the commit it resolved to, and other names it was seen with."""

    ref: str | None = None
    commit: str | None = None
    also: list[str] = field(default_factory=list)

    def candidates(self) -> list[str]:
        return [str(value) for value in (self.ref, self.commit, *self.also) if value]

    def matches(self, reported: Any) -> bool:
        """Equal to one of them, or the same commit (a SHA prefix of 7 characters at least, either way)."""
        return reported is not None and any(same_commit(str(reported), wanted) for wanted in self.candidates())

    def describe(self) -> str:
        name = self.ref or self.commit or " or ".join(self.also) or "?"
        return f"{name} (commit {self.commit})" if self.commit and self.commit != name else name


@dataclass
class Health:
    """The app's health URL: 200, and (when expected is set) the version in `field` names the expected code."""

    url: str
    expected: Expected | None = None
    field: str = "commit"
    last: str = "no answer yet"
    checks: int = 0
    # Whether the last answer was a 200 (then a failure is the version's, not the app's health).
    last_ok: bool = False
    reported: Any = None

    def probe(self) -> bool:
        self.checks += 1
        self.last_ok = False
        try:
            answer = request("GET", self.url, timeout=10)
        except HttpError as exc:
            self.last = str(exc)
            return False
        try:
            body: Any = answer.json()
        except ValueError:
            body = None
        self.reported = json_path(body, self.field)
        self.last = f"{answer.status} {answer.text.strip()[:200]}"
        if answer.status != 200:
            return False
        self.last_ok = True
        return self.expected is None or self.expected.matches(self.reported)

    def report(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "last": self.last,
            "checks": self.checks,
            "field": self.field,
            "reported": self.reported,
        }


def wait_healthy(health: Health, timing: Timing) -> float:
    started = time.monotonic()
    if _poll(lambda: True if health.probe() else None, timing.health_timeout_s, timing.poll_interval_s) is None:
        limit = f"{timing.health_timeout_s:g}s"
        if health.last_ok and health.expected is not None:
            message = (
                f"the app at {health.url} answers but never reported the expected version within {limit}: "
                f"{health.field} is {health.reported!r}, expected {health.expected.describe()} ({health.checks} checks)"
            )
        else:
            wanted = f" reporting {health.expected.describe()}" if health.expected else ""
            message = (
                f"the app never became healthy{wanted} at {health.url} within {limit} "
                f"({health.checks} checks; last answer: {health.last})"
            )
        raise DeployError(message, health=health.report())
    return round(time.monotonic() - started, 3)


def observe(client: Dokploy, health: Health | None) -> Serving:
    """What serves, when the ledger does not know yet: the newest finished deployment, and what the app reports."""
    row = last_done(client.deployments()) or {}
    reported, healthy = None, False
    if health is not None:
        probe = Health(health.url, None, health.field)
        healthy = probe.probe()
        reported = probe.reported
    return Serving(
        release_run=BEFORE_LEDGER,
        commit=str(reported) if reported is not None and is_sha(str(reported)) else None,
        deployment_id=row.get("deploymentId"),
        rollback_id=row.get("rollbackId"),
        reported=None if reported is None else str(reported),
        healthy=healthy,
    )


@dataclass
class DeployResult:
    # What served before (from the ledger, else observed) and what this deploy put in place.
    previous: dict[str, Any] | None
    deployed: dict[str, Any] | None = None
    deployment: dict[str, Any] | None = None
    title: str = ""
    queue_s: float = 0.0
    build_s: float = 0.0
    health_s: float = 0.0
    health: dict[str, Any] = field(default_factory=dict)
    check_mode: bool = False


def _serving_after(code: Serving, row: dict[str, Any] | None, health: Health | None, healthy: bool) -> dict[str, Any]:
    """The code now in place, with Dokploy's ids and what the health endpoint reported."""
    reported = health.reported if health is not None else None
    return replace(
        code,
        deployment_id=(row or {}).get("deploymentId") or code.deployment_id,
        rollback_id=(row or {}).get("rollbackId") or (None if row else code.rollback_id),
        reported=None if reported is None else str(reported),
        healthy=healthy,
    ).to_dict()


def deploy_release(
    client: Dokploy,
    *,
    code: Serving,
    previous: Serving | None,
    title: str,
    description: str,
    health: Health | None,
    log_tail: int,
    check_mode: bool,
) -> DeployResult:
    """Queue the release, find it, wait for it, then for the app's health; `previous` is what served before."""
    before = previous or observe(client, health)
    result = DeployResult(previous=before.to_dict(), title=title, check_mode=check_mode)
    if check_mode:
        return result
    try:
        return _deploy_and_wait(client, result, code, description, health, log_tail)
    except DeployError as exc:
        # Whatever failed, the rollback phase needs to know where to return to.
        exc.facts.setdefault("previous", result.previous)
        raise


def _deploy_and_wait(
    client: Dokploy, result: DeployResult, code: Serving, description: str, health: Health | None, log_tail: int
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
    _wait_for_code(result, code, final, health, timing)
    return result


def _wait_for_code(
    result: DeployResult, code: Serving, row: dict[str, Any] | None, health: Health | None, timing: Timing
) -> None:
    """The app's health; the code is in place either way, healthy or not (the ledger records which)."""
    try:
        if health is not None:
            result.health_s = wait_healthy(health, timing)
            result.health = health.report()
    except DeployError as exc:
        exc.facts["deployed"] = _serving_after(code, row, health, healthy=False)
        exc.facts.setdefault("deployment", result.deployment)
        raise
    result.deployed = _serving_after(code, row, health, healthy=True)


def rollback_to(
    client: Dokploy, rollback_id: str, code: Serving, previous: Serving | None, health: Health | None
) -> DeployResult:
    """Dokploy's rollback (a synchronous swarm update to an earlier image; no deployment row), then the app's health."""
    before = previous or observe(client, health)
    result = DeployResult(previous=before.to_dict(), title=f"rollback {rollback_id}")
    started = time.monotonic()
    try:
        client.rollback(rollback_id)
    except DeployError as exc:
        exc.facts.setdefault("previous", result.previous)
        raise
    result.build_s = round(time.monotonic() - started, 3)
    _wait_for_code(result, replace(code, rollback_id=rollback_id), None, health, client.timing)
    return result
