"""Rollback you can bet production on: release A, release B, roll back, release C, roll back, roll back — after
each step the app's health endpoint and `wfops history` must agree on what serves. Once with Dokploy's rollbacks
(rollback.rollback, which adds no deployment row) and once on an app without them (the redeploy fallback, which
pushes the previous release's ref before it redeploys)."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import SandboxHandle, start_sandbox, stop_sandbox

# The sandbox is never migrated here: releases start at deploy and check the app's own flows.
APP_FLOWS = ("-e", 'smoke_flows=["auth", "sse"]')


@pytest.fixture(params=["dokploy rollback", "redeploy"])
def box(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SandboxHandle]:
    """A sandbox whose Dokploy application has rollbacks enabled, or not (then no deployment ever gets a rollbackId)."""
    os.environ["WFOPS_SANDBOX_DOKPLOY_ROLLBACKS"] = "1" if request.param == "dokploy rollback" else "0"
    try:
        handle = start_sandbox(tmp_path / "box", guests=200)
    finally:
        os.environ.pop("WFOPS_SANDBOX_DOKPLOY_ROLLBACKS", None)
    handle.method = request.param  # type: ignore[attr-defined]
    yield handle
    stop_sandbox(handle)


def _services(box: SandboxHandle) -> dict:
    return json.loads((box.directory / "services.json").read_text())


def _serving(box: SandboxHandle) -> str:
    """What the app itself says it runs."""
    with urllib.request.urlopen(_services(box)["app_url"] + "/api/health", timeout=5) as answer:
        return json.loads(answer.read())["commit"]


def _deployment_rows(box: SandboxHandle) -> int:
    services = _services(box)
    request = urllib.request.Request(
        f"{services['dokploy_url']}/api/deployment.all?applicationId={services['application_id']}",
        headers={"x-api-key": (box.directory / "dokploy_api_key").read_text().strip()},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return len(json.loads(answer.read()))


def _history_serving(box: SandboxHandle) -> str | None:
    """What `wfops history` says serves (its closing line), checked against the row it marks; None before any."""
    history = box.wfops("history", "--env", "local")
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    footer = next((line for line in lines if line.startswith("* serving now: ")), None)
    if footer is None:
        return None
    serving = footer.removeprefix("* serving now: ").split(" ", 1)[0]
    marked = [line.split()[2] for line in lines if line.split()[3:4] == ["*"]]
    # The row of the release whose code serves; none when what serves predates the ledger.
    assert marked == ([] if serving == "previous" else [serving]), history.stdout
    return serving


def _release(box: SandboxHandle, ref: str) -> None:
    result = box.wfops("release", "--env", "local", "--ref", ref, "--from", "deploy", "--json", *APP_FLOWS)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def _rollback(box: SandboxHandle, *extra: str) -> dict:
    result = box.wfops("rollback", "--env", "local", "--json", *APP_FLOWS, *extra)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return next(p for p in json.loads(result.stdout)["phases"] if p["name"] == "rollback")["result"]


def _step(box: SandboxHandle, expected: str) -> None:
    assert (_serving(box), _history_serving(box)) == (expected, expected)


def test_release_release_rollback_release_rollback_rollback_walks_back_healthy_releases(box: SandboxHandle) -> None:
    method = box.method  # type: ignore[attr-defined]
    assert (_serving(box), _history_serving(box)) == ("previous", None)
    _release(box, "A")
    _step(box, "A")
    _release(box, "B")
    _step(box, "B")
    rows = _deployment_rows(box)

    first = _rollback(box)
    assert (first["code"]["method"], first["code"]["ref"]) == (method, "A")
    _step(box, "A")
    _release(box, "C")
    _step(box, "C")

    second = _rollback(box)
    assert (second["code"]["method"], second["code"]["ref"]) == (method, "A"), "B was rolled back from: never again"
    _step(box, "A")

    third = _rollback(box)
    assert (third["code"]["method"], third["code"]["ref"]) == (method, "previous"), "what served before A"
    _step(box, "previous")

    if method == "dokploy rollback":
        # Dokploy's rollback creates no deployment row: only release C added one since B.
        assert _deployment_rows(box) == rows + 1
    else:
        assert _deployment_rows(box) == rows + 4, "C, and one redeploy per rollback"

    refused = box.wfops("rollback", "--env", "local", "--json", *APP_FLOWS)
    assert refused.returncode == 1 and "so there is nothing to return to" in refused.stdout
    _step(box, "previous")

    # --to picks a release explicitly, even one rolled back from. Without a push command, only a Dokploy rollback can
    # return to it: a redeploy would rebuild the deploy branch's head, so it is refused before anything changes.
    rows = _deployment_rows(box)
    no_push = ("--to", "B", "-e", "deploy_push_argv=[]")
    if method == "redeploy":
        refused = box.wfops("rollback", "--env", "local", "--json", *no_push, *APP_FLOWS)
        assert refused.returncode == 1
        error = next(p for p in json.loads(refused.stdout)["phases"] if p["name"] == "rollback")["result"]["error"]
        assert "B has no Dokploy rollback" in error and "no push command is configured (deploy_push_argv)" in error
        assert (_serving(box), _deployment_rows(box)) == ("previous", rows), "nothing was deployed"
        picked = _rollback(box, "--to", "B")
    else:
        picked = _rollback(box, *no_push)
    assert (picked["code"]["method"], picked["code"]["ref"]) == (method, "B")
    _step(box, "B")
