"""Phases 5 and 6 against the sandbox's Dokploy and app stand-ins: every deploy outcome, every smoke check."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from conftest import REPO, SandboxHandle, run_wfops, start_sandbox, stop_sandbox


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """A sandbox released up to normalize: the state a deploy and its smoke checks run in."""
    handle = start_sandbox(tmp_path_factory.mktemp("deploy"), guests=1000)
    result = handle.wfops("release", "--env", "local", "--ref", "base", "--from", "backup", "--json")
    phases = {p["name"]: p["status"] for p in json.loads(result.stdout)["phases"]}
    assert phases["normalize"] == "ok", result.stderr
    yield handle
    stop_sandbox(handle)


def _services(box: SandboxHandle) -> dict:
    return json.loads((box.directory / "services.json").read_text())


def _post(url: str, body: dict, headers: dict[str, str] | None = None) -> tuple[int, object]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            raw = answer.read()
            return answer.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as answer:
        return answer.code, json.loads(answer.read() or b"null")


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, object]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as answer:
        return answer.code, json.loads(answer.read() or b"null")


def _mode(box: SandboxHandle, **mode: object) -> None:
    defaults = {"deploy": "normal", "auth": "normal", "errors_500": 0, "health_after_deploy": "ok"}
    _post(_services(box)["dokploy_url"] + "/__standin/mode", {**defaults, **mode})


def _app(box: SandboxHandle, **switches: object) -> None:
    defaults = {"healthy": True, "sse": True, "version_field": "commit", "version_format": "full"}
    _post(_services(box)["app_url"] + "/__standin/app", {**defaults, **switches})


@pytest.fixture(autouse=True)
def healthy_stand_ins(box: SandboxHandle) -> Iterator[None]:
    _mode(box)
    _app(box)
    yield
    _mode(box)
    _app(box)


def _deploy(box: SandboxHandle, ref: str, *extra: str, app_dir: Path | None = None) -> tuple[int, dict, str]:
    env = {**box.env, "WFOPS_APP_DIR": str(app_dir)} if app_dir else box.env
    result = run_wfops("run", "deploy", "--env", "local", "-e", f"release_ref={ref}", "--json", *extra, env=env)
    return result.returncode, json.loads(result.stdout)["phases"][0], result.stdout + result.stderr


def _commit(box: SandboxHandle) -> str:
    return _get(_services(box)["app_url"] + "/api/health")[1]["commit"]


@pytest.fixture(scope="module")
def app_checkout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A git checkout of the app with two commits, the first tagged v1.0: (directory, v1.0's commit, the head)."""
    checkout = tmp_path_factory.mktemp("checkout")

    def git(*args: str) -> str:
        completed = subprocess.run(
            ["git", "-C", str(checkout), "-c", "user.name=wfops", "-c", "user.email=wfops@weddingflo.test", *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return completed.stdout.strip()

    git("init", "-q", "-b", "main")
    git("commit", "-q", "--allow-empty", "-m", "release 1.0")
    git("tag", "v1.0")
    tagged = git("rev-parse", "HEAD")
    git("commit", "-q", "--allow-empty", "-m", "next")
    return checkout, tagged, git("rev-parse", "HEAD")


@pytest.mark.parametrize(
    ("ref", "field", "style", "reported"),
    [
        ("v1.0", "commit", "full", "tagged"),  # a tag ref; the app reports the full SHA
        ("v1.0", "commit", "short", "tagged7"),  # a tag ref; the app reports a short SHA
        ("tagged", "commit", "tag", "v1.0"),  # a SHA ref; the app reports the tag
        ("head7", "build.git.sha", "full", "head"),  # a short SHA ref; the version in a field of its own
    ],
)
def test_the_health_check_knows_a_release_by_its_commit_tag_or_short_sha(
    box: SandboxHandle, app_checkout: tuple[Path, str, str], ref: str, field: str, style: str, reported: str
) -> None:
    checkout, tagged, head = app_checkout
    names = {"tagged": tagged, "tagged7": tagged[:7], "head": head, "head7": head[:7]}
    ref, reported = names.get(ref, ref), names.get(reported, reported)
    _app(box, version_field=field, version_format=style)
    extra = () if field == "commit" else ("-e", f"deploy_health_commit_field={field}")
    code, phase, _ = _deploy(box, ref, *extra, app_dir=checkout)
    assert code == 0, phase
    assert phase["result"]["health"]["reported"] == reported and phase["result"]["health"]["field"] == field
    deployed = phase["result"]["deployed"]
    assert (deployed["ref"], deployed["reported"]) == (ref, reported)
    assert deployed["commit"] == (tagged if ref in ("v1.0", tagged) else head), "the ref, resolved in the checkout"
    # One check: took a single answer once the new app was up, not the whole timeout.
    assert phase["result"]["health"]["checks"] <= 3, phase["result"]["health"]


def test_a_deploy_is_found_by_its_title_waited_for_and_healthy_with_the_new_commit(box: SandboxHandle) -> None:
    code, first, _ = _deploy(box, "r1")
    assert code == 0, first
    assert first["result"]["deployment"]["status"] == "done"
    assert first["result"]["deployment"]["title"].startswith("wfops r1 ")
    assert first["result"]["health"]["reported"] == "r1" and _commit(box) == "r1"
    code, second, _ = _deploy(box, "r2")
    assert code == 0, second
    # What served before comes from the ledger, which the first deploy wrote.
    assert second["result"]["previous"]["deployment_id"] == first["result"]["deployment"]["deploymentId"]
    assert second["result"]["previous"]["rollback_id"] == first["result"]["deployment"]["rollbackId"]
    assert second["result"]["previous"] == first["result"]["deployed"]
    assert _commit(box) == "r2"


def test_a_failed_build_shows_dokploys_error_and_last_log_lines(box: SandboxHandle) -> None:
    _mode(box, deploy="fail")
    code, phase, _ = _deploy(box, "broken-build")
    assert code == 1
    error = phase["result"]["error"]
    assert "ended error: Error: Command failed: npm run build" in error
    assert "Type error: Property 'guestCount' is missing" in error


def test_a_lost_job_is_reported_instead_of_waited_for_forever(box: SandboxHandle) -> None:
    _mode(box, deploy="vanish")
    code, phase, _ = _deploy(box, "lost", "-e", "deploy_appear_timeout=2")
    assert code == 1
    assert "no deployment titled 'wfops lost" in phase["result"]["error"]
    assert "the queued job was lost" in phase["result"]["error"]


def test_a_deployment_that_hangs_times_out(box: SandboxHandle) -> None:
    _mode(box, deploy="hang")
    code, phase, _ = _deploy(box, "hangs", "-e", "deploy_timeout=2")
    assert code == 1
    assert "is still running after 2s" in phase["result"]["error"]


def test_an_app_that_never_becomes_healthy_fails_the_phase(box: SandboxHandle) -> None:
    _mode(box, health_after_deploy="fail")
    code, phase, _ = _deploy(box, "sick", "-e", "deploy_health_timeout=2")
    assert code == 1
    assert "the app never became healthy reporting sick at http://" in phase["result"]["error"]
    assert "last answer: 503" in phase["result"]["error"]
    # Deployed all the same (Dokploy said done): the ledger records it as serving, unhealthy.
    assert phase["result"]["deployed"]["ref"] == "sick" and phase["result"]["deployed"]["healthy"] is False


def test_done_is_not_enough_when_the_app_does_not_report_the_release(box: SandboxHandle) -> None:
    running = _commit(box)
    code, phase, _ = _deploy(box, "not-pushed", "-e", "deploy_push_argv=[]", "-e", "deploy_health_timeout=2")
    assert code == 1
    assert (
        f"answers but never reported the expected version within 2s: commit is {running!r}, expected not-pushed"
        in phase["result"]["error"]
    ), phase["result"]["error"]


def test_a_rejected_api_key_says_what_to_fix_and_is_never_shown(box: SandboxHandle) -> None:
    _mode(box, auth="unauthorized")
    code, phase, output = _deploy(box, "no-key")
    assert code == 1
    assert "Dokploy rejected the API key (401 Unauthorized)" in phase["result"]["error"]
    assert "vault_wfops_dokploy_api_key" in phase["result"]["error"]
    key = (box.directory / "dokploy_api_key").read_text().strip()
    assert key not in output
    run_dir = REPO / "runs" / json.loads(output[: output.rindex("}") + 1])["run_id"]
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert key not in path.read_text(errors="replace"), path


def test_5xx_answers_are_retried_then_reported(box: SandboxHandle) -> None:
    _mode(box, errors_500=2)
    code, phase, _ = _deploy(box, "flaky")
    assert code == 0, phase
    _mode(box, errors_500=50)
    code, phase, _ = _deploy(box, "down", "-e", "deploy_api_attempts=2")
    assert code == 1
    assert "answered 500" in phase["result"]["error"] and "after 2 attempts" in phase["result"]["error"]


def test_compose_services_deploy_through_compose_deploy(box: SandboxHandle) -> None:
    compose = _services(box)["compose_id"]
    code, phase, _ = _deploy(
        box, "compose-1", "-e", "deploy_service_type=compose", "-e", f"deploy_service_id={compose}"
    )
    assert code == 0, phase
    assert phase["result"]["service"] == f"compose {compose}"
    assert phase["result"]["deployment"]["title"].startswith("wfops compose-1 ")


def test_the_stand_in_accepts_only_the_x_api_key_header(box: SandboxHandle) -> None:
    services = _services(box)
    key = (box.directory / "dokploy_api_key").read_text().strip()
    url = f"{services['dokploy_url']}/api/deployment.all?applicationId={services['application_id']}"
    assert _get(url, {"Authorization": f"Bearer {key}"}) == (401, {"message": "Unauthorized"})
    status, rows = _get(url, {"x-api-key": key})
    assert status == 200 and isinstance(rows, list)
    assert _post(
        services["dokploy_url"] + "/api/application.deploy",
        {"applicationId": services["application_id"], "title": "direct"},
        {"x-api-key": key},
    ) == (200, None)


def _smoke(box: SandboxHandle, *extra: str) -> tuple[int, dict]:
    result = box.wfops("run", "smoke", "--env", "local", "--json", *extra)
    return result.returncode, json.loads(result.stdout)["phases"][0]


def _checks(phase: dict) -> dict[str, dict]:
    return {check["check"]: check for check in phase["result"]["checks"]}


def test_every_automated_smoke_check_passes_on_a_released_sandbox(box: SandboxHandle) -> None:
    code, phase = _smoke(box)
    assert code == 0, phase
    checks = phase["result"]["checks"]
    assert {c["status"] for c in checks} == {"pass"}
    assert {c["flow"].split()[0] for c in checks} == {"0", "1", "2", "3", "4", "7", "8"}
    assert len([c for c in checks if c["flow"].startswith("1")]) == 7  # the last: its second session signed out
    checklist = Path(phase["result"]["manual_checklist"])
    text = checklist.read_text()
    assert "### Flow 5: Import/Export" in text and "### Flow 6: Chatbot" in text and "| pass |" in text
    assert len(phase["result"]["manual"]) == 8


def _with_sql(box: SandboxHandle, sql: str) -> None:
    connection = psycopg2.connect(box.ops_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(sql)
    connection.close()


def test_a_tenant_table_with_rls_off_fails_the_smoke(box: SandboxHandle) -> None:
    _with_sql(box, "ALTER TABLE guests DISABLE ROW LEVEL SECURITY")
    try:
        code, phase = _smoke(box)
    finally:
        _with_sql(box, "ALTER TABLE guests ENABLE ROW LEVEL SECURITY")
    assert code == 1
    checks = _checks(phase)
    assert checks["RLS is enabled and forced on every tenant table"]["status"] == "fail"
    assert "not enabled+forced: guests" in checks["RLS is enabled and forced on every tenant table"]["evidence"]
    assert checks["as the app with tenant A set, no row of tenant B is visible"]["status"] == "fail"
    assert "guests" in checks["an UPDATE of tenant B's rows matches 0 rows"]["evidence"]


def test_an_app_role_with_bypassrls_fails_the_smoke(box: SandboxHandle) -> None:
    admin = box.superuser()
    with admin.cursor() as cursor:
        cursor.execute("ALTER ROLE weddingflo_app BYPASSRLS")
    try:
        code, phase = _smoke(box)
    finally:
        with admin.cursor() as cursor:
            cursor.execute("ALTER ROLE weddingflo_app NOBYPASSRLS")
        admin.close()
    assert code == 1
    check = _checks(phase)["no login role the app uses bypasses RLS"]
    assert check["status"] == "fail" and "BYPASSRLS: weddingflo_app" in check["evidence"]


def test_a_wrong_smoke_password_fails_sign_in(box: SandboxHandle) -> None:
    password_file = box.directory / "smoke_password"
    right = password_file.read_text()
    password_file.write_text("not-the-password")
    try:
        code, phase = _smoke(box)
    finally:
        password_file.write_text(right)
    assert code == 1
    check = _checks(phase)["sign in with email and password returns a session cookie"]
    assert check["status"] == "fail" and "401" in check["evidence"]
    assert "not-the-password" not in json.dumps(phase)


def test_a_dead_sse_endpoint_fails_flow_8(box: SandboxHandle) -> None:
    _app(box, sse=False)
    code, phase = _smoke(box, "-e", "smoke_sse_timeout=1")
    assert code == 1
    check = _checks(phase)["the chatbot stream delivers a first event"]
    assert check["status"] == "fail" and "no event within 1s" in check["evidence"]
