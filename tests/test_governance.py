"""Release governance: staging before production, a change freeze, notifications that never block, an audit trail.

A project copy (WFOPS_HOME) gives the sandbox a "staging" and a "production" environment: the same database and
Dokploy stand-in, but each with its own host tree (its own lock, freeze and ledger), as two real hosts would have.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, VENV_BIN, SandboxHandle, start_sandbox, stop_sandbox
from webhook_receiver import Webhook, start_webhook
from wfops.pgcluster import free_port

ENV_OVERRIDES = {
    "staging": "",
    "production": "release_require_staging: true\n",
}


def _environment_vars(env: str) -> str:
    """The sandbox's settings as a remote environment's group_vars, with its own host tree and vault names."""
    local = (REPO / "group_vars" / "local" / "vars.yml").read_text()
    return (
        local.replace("wfops_env: local", f"wfops_env: {env}")
        + f'wfops_host_root: "{{{{ wfops_sandbox_dir }}}}/host-{env}"\n'
        + "vault_wfops_host_address: 127.0.0.1\n"
        + 'vault_wfops_database_url: "{{ wfops_database_url }}"\n'
        + 'vault_wfops_dokploy_api_key: "{{ wfops_dokploy_api_key }}"\n'
        + 'vault_wfops_smoke_password: "{{ wfops_smoke_password }}"\n'
        # The team's webhook is a secret (its URL carries a token): from the "vault", never -e (wfops refuses it).
        + "vault_notify_webhook_url: \"{{ lookup('ansible.builtin.file', wfops_sandbox_dir ~ '/notify_webhook_url',"
        + " errors='ignore') | default('', true) }}\"\n"
        + ENV_OVERRIDES[env]
    )


def _project(root: Path) -> Path:
    root.mkdir()
    (root / "ansible.cfg").write_text((REPO / "ansible.cfg").read_text())
    for name in ("playbooks", "roles", "plugins", "files", "release.yml", "rollback.yml"):
        (root / name).symlink_to(REPO / name)
    group_vars = root / "group_vars"
    group_vars.mkdir()
    (group_vars / "all.yml").symlink_to(REPO / "group_vars" / "all.yml")
    (group_vars / "local").symlink_to(REPO / "group_vars" / "local")
    inventory = root / "inventory"
    inventory.mkdir()
    (inventory / "group_vars").symlink_to("../group_vars")
    (inventory / "local.yml").symlink_to(REPO / "inventory" / "local.yml")
    for env in ENV_OVERRIDES:
        (group_vars / env).mkdir()
        (group_vars / env / "vars.yml").write_text(_environment_vars(env))
        (inventory / f"{env}.yml").write_text(
            f"{env}:\n  children:\n    weddingflo:\n      hosts:\n        {env}-host:\n"
            "          ansible_connection: local\n"
            '          ansible_python_interpreter: "{{ ansible_playbook_python }}"\n'
        )
    return root


@dataclass
class Scene:
    box: SandboxHandle
    home: Path
    webhook: Webhook

    def wfops(self, *args: str) -> tuple[int, dict[str, Any] | None, str]:
        env = {**self.box.env, "WFOPS_HOME": str(self.home), "WFOPS_APP_DIR": str(REPO / "sandbox-app")}
        completed = subprocess.run(
            [str(VENV_BIN / "wfops"), *args],
            env=env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        try:
            document = json.loads(completed.stdout) if "--json" in args else None
        except json.JSONDecodeError:
            document = None
        return completed.returncode, document, completed.stdout + completed.stderr

    def release(self, env: str, ref: str, *extra: str) -> tuple[int, dict[str, Any] | None, str]:
        return self.wfops("release", "--env", env, "--ref", ref, "--from", "deploy", "--json", *extra)

    @contextlib.contextmanager
    def notifying(self, url: str) -> Iterator[None]:
        """The environments' vault names this webhook while the block runs."""
        path = self.box.directory / "notify_webhook_url"
        path.write_text(url)
        try:
            yield
        finally:
            path.unlink()

    def ledger(self, env: str) -> list[dict[str, Any]]:
        path = self.box.directory / f"host-{env}" / "var" / "lib" / "weddingflo" / "ledger.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def secrets(self) -> list[str]:
        values = [(self.box.directory / name).read_text().strip() for name in ("dokploy_api_key", "smoke_password")]
        url = (self.box.directory / "database_url").read_text().strip()
        values.append(url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1])  # the database password
        return values


def _commit(box: SandboxHandle) -> str:
    """The commit the app serves (its health endpoint)."""
    url = json.loads((box.directory / "services.json").read_text())["app_url"] + "/api/health"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())["commit"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    base = tmp_path_factory.mktemp("governance")
    box = start_sandbox(base / "box", guests=500)
    hook, server = start_webhook()
    try:
        scene = Scene(box, _project(base / "project"), hook)
        # One full release on the sandbox's own host migrates and normalises the shared database, so the
        # staging and production releases below (from deploy) pass their smoke checks.
        code, summary, output = scene.wfops("release", "--env", "local", "--ref", "base", "--from", "backup", "--json")
        assert code == 0, _error(summary, output)
        yield scene
    finally:
        server.shutdown()
        stop_sandbox(box)


def _error(summary: dict[str, Any] | None, output: str) -> str:
    if not summary:
        return output
    return " ".join([summary.get("error") or "", *[str(p["result"].get("error", "")) for p in summary["phases"]]])


def test_production_takes_only_what_staging_released_or_an_override_with_its_reason(scene: Scene) -> None:
    code, summary, output = scene.release("production", "gov-1")
    assert code == 1
    error = _error(summary, output)
    assert "gov-1 has not completed a successful staging release" in error, error
    assert "staging's ledger has no successful release of it" in error
    assert scene.ledger("production") == [], "a refused release took no lock and wrote nothing"

    code, summary, output = scene.release("staging", "gov-1")
    assert code == 0, _error(summary, output)
    code, summary, output = scene.release("production", "gov-1")
    assert code == 0, _error(summary, output)
    released = scene.ledger("production")[-1]
    assert released["ref"] == "gov-1" and released["status"] == "successful"
    assert released["staged_run"] == scene.ledger("staging")[-1]["run_id"]
    assert released["overrides"] == []

    code, summary, output = scene.release("production", "gov-hotfix", "--allow-unstaged", "payments outage hotfix")
    assert code == 0, _error(summary, output)
    hotfix = scene.ledger("production")[-1]
    assert hotfix["overrides"] == [{"rule": "staging-first", "reason": "payments outage hotfix"}]
    assert hotfix["staged_run"] is None

    code, _, history = scene.wfops("history", "--env", "production")
    assert code == 0, history
    lines = {line.split()[2]: line for line in history.splitlines() if " release " in line}
    assert "OVERRIDE staging-first: payments outage hotfix" in lines["gov-hotfix"]
    assert f"staged in {released['staged_run']}" in lines["gov-1"]
    assert released["who"] in lines["gov-1"]


def test_a_freeze_stops_releases_and_deploys_but_not_backups_or_rollbacks(scene: Scene) -> None:
    if not scene.ledger("staging"):  # the rollback below returns to the release before the last
        code, summary, output = scene.release("staging", "gov-0")
        assert code == 0, _error(summary, output)
    code, _, output = scene.wfops("freeze", "--env", "staging", "--reason", "Saturday wedding peak")
    assert code == 0 and "releases frozen by" in output, output
    code, summary, output = scene.release("staging", "gov-2")
    assert code == 1
    error = _error(summary, output)
    assert "releases are frozen by" in error and "Saturday wedding peak" in error, error
    assert "wfops unfreeze --env" in error
    # A deploy on its own puts new code out too: refused the same way, nothing deployed, nothing in the ledger.
    serving, lines = _commit(scene.box), len(scene.ledger("staging"))
    code, summary, output = scene.wfops("run", "deploy", "--env", "staging", "--ref", "gov-2d", "--json")
    assert code == 1
    error = _error(summary, output)
    assert "releases are frozen by" in error and "Saturday wedding peak" in error, error
    assert _commit(scene.box) == serving != "gov-2d"
    assert len(scene.ledger("staging")) == lines

    code, _, output = scene.wfops("lock", "status", "--env", "staging")
    assert code == 0 and "Saturday wedding peak" in output, output
    code, summary, output = scene.wfops("run", "backup", "--env", "staging", "--json")
    assert code == 0, _error(summary, output)
    code, summary, output = scene.wfops("rollback", "--env", "staging", "--json")
    assert code == 0, _error(summary, output)

    code, _, output = scene.wfops("freeze", "--env", "staging", "--reason", "x", "--until", "2001-01-01T00:00:00Z")
    assert code == 1 and "already past" in output, output
    code, _, output = scene.wfops("unfreeze", "--env", "staging")
    assert code == 0 and "releases unfrozen" in output, output
    code, summary, output = scene.release("staging", "gov-2")
    assert code == 0, _error(summary, output)
    kinds = [(e["kind"], e.get("reason")) for e in scene.ledger("staging")]
    assert ("freeze", "Saturday wedding peak") in kinds and ("unfreeze", "Saturday wedding peak") in kinds


def test_the_team_hears_of_every_release_and_rollback_without_a_secret(scene: Scene) -> None:
    hook = scene.webhook
    hook.received.clear()
    with scene.notifying(hook.url):
        _the_team_hears(scene, hook)


def _the_team_hears(scene: Scene, hook: Webhook) -> None:
    notify: tuple[str, ...] = ()
    code, summary, output = scene.release("staging", "gov-3", *notify)
    assert code == 0, _error(summary, output)
    assert hook.events() == ["release-started", "release-succeeded"]
    assert all(body["text"].startswith("WeddingFlo staging:") for body in hook.received)
    assert hook.received[1]["wfops"]["fields"]["ref"] == "gov-3"

    hook.received.clear()
    code, _, output = scene.wfops(
        "release", "--env", "staging", "--ref", "gov-5", "--from", "smoke", "--json", *notify,
        "-e", "smoke_flows=[\"no-such-flow\"]",
    )  # fmt: skip
    assert code == 1
    assert hook.events() == ["release-started", "release-failed"]
    failed = hook.received[1]["wfops"]["fields"]
    assert failed["failed_phase"] == "smoke"
    assert "wfops rollback --env staging" in failed["rollback_command"]
    assert "FAILED in smoke" in hook.received[1]["text"]

    hook.received.clear()
    code, summary, output = scene.wfops("rollback", "--env", "staging", "--json", *notify)
    assert code == 0, _error(summary, output)
    assert hook.events() == ["rollback-done"]

    # A scheduled backup that fails is posted by the host's tool itself (the backup phase installs the tool).
    code, summary, output = scene.wfops("run", "backup", "--env", "staging", "--json")
    assert code == 0, _error(summary, output)
    host = scene.box.directory / "host-staging"
    tool = host / "usr" / "local" / "bin" / "weddingflo-backup"
    broken = {
        **os.environ,
        "DATABASE_URL": f"postgresql://weddingflo_ops:{scene.secrets()[2]}@127.0.0.1:{free_port()}/weddingflo",
        "NOTIFY_WEBHOOK_URL": hook.url,
    }
    env_file = host / "etc" / "weddingflo-backup" / "backup.env"
    failed_backup = subprocess.run(
        [str(tool), "--env-file", str(env_file), "create", "--reason", "scheduled"],
        env=broken,
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed_backup.returncode == 1
    assert hook.events() == ["rollback-done", "scheduled-backup-failed"]
    assert "cannot reach the database" in hook.received[-1]["text"]

    # A failing monitor signal (planted stats drift) is posted too, then the drift is taken back.
    drift = "UPDATE clients SET guest_count = guest_count {} 1 WHERE id = (SELECT id FROM clients ORDER BY id LIMIT 1)"
    connection = scene.box.connect()
    with connection, connection.cursor() as cursor:
        cursor.execute(drift.format("+"))
    code, _, output = scene.wfops("monitor", "--env", "staging", "--json", *notify)
    with connection, connection.cursor() as cursor:
        cursor.execute(drift.format("-"))
    connection.close()
    assert code == 1, output[-2000:]
    assert hook.events()[-1] == "monitor-failing"
    assert "client stats drift" in hook.received[-1]["text"]

    for body in hook.raw:
        for secret in scene.secrets():
            assert secret.encode() not in body, f"a secret reached the webhook: {body[:200]!r}"


@pytest.mark.parametrize("answer", ["dead", "500"])
def test_a_webhook_that_is_down_or_failing_never_fails_the_release(scene: Scene, answer: str) -> None:
    hook = scene.webhook
    url = hook.url if answer == "500" else f"http://127.0.0.1:{free_port()}/hook"
    hook.status = 500 if answer == "500" else 200
    try:
        with scene.notifying(url):
            code, summary, output = scene.release("staging", f"gov-{answer}")
    finally:
        hook.status = 200
    assert code == 0, output[-3000:]
    assert summary is not None and summary["status"] == "successful"
    run_dir = scene.home / "runs" / summary["run_id"]
    ansible_output = "".join(path.read_text() for path in run_dir.glob("artifacts/*/stdout"))
    assert "notify: the webhook did not take release-started" in ansible_output
    assert hook.url not in ansible_output and "/hook" not in ansible_output, "the webhook URL carries a token"
