"""A database shaped like Supabase's (TLS only, hostssl, the project's own CA) and every client wfops uses.

One sandbox per module: `wfops doctor` first reads it plain, then its cluster turns TLS-only with TLSv1.3 and a
client certificate required by pg_hba (clientcert=verify-ca), and every URL names sslmode=verify-full, the CA and
the client certificate. So every phase that passes proves that psycopg2, psql, pg_dump and pg_restore all took the
whole URL: a connection without TLS or without the client certificate is refused by the server.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backup_helpers import run_tool, tool_env
from conftest import SandboxHandle, start_sandbox, stop_sandbox
from test_secrets import CommandLineSampler
from tls_helpers import Pki, enable_tls, make_pki, tls_url
from wfops.sandbox.service import SandboxError

REVOKED = ("certificate revoked", "certificate verify failed")


@dataclass
class TlsScene:
    box: SandboxHandle
    pki: Pki
    plain_doctor: subprocess.CompletedProcess[str]

    def url_file(self, name: str) -> Path:
        return self.box.directory / name

    def set_urls(self, **urls: str) -> None:
        for name, url in urls.items():
            self.url_file(name).write_text(url)
            self.url_file(name).chmod(0o600)
        if "app_database_url" in urls:
            # `sandbox up` on a running sandbox restarts the app stand-in when its URL changed (and then reports, in
            # one sentence, a database it cannot reach: the revoked certificate's case).
            with contextlib.suppress(SandboxError):
                start_sandbox(self.box.directory, guests=500)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsScene]:
    directory = tmp_path_factory.mktemp("tls")
    box = start_sandbox(directory / "box", guests=500)
    plain_doctor = box.wfops("doctor", "--env", "local")
    pki = make_pki(directory / "pki")
    enable_tls(box.directory, pki, require_client_cert=True)
    start_sandbox(box.directory, guests=500)  # the app stand-in reconnects with its new URL
    yield TlsScene(box, pki, plain_doctor)
    stop_sandbox(box)


def _lines(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """`ok|fail check: sentence` lines by check."""
    found = {}
    for line in result.stdout.splitlines():
        status, _, rest = line.partition(" ")
        check, _, detail = rest.partition(": ")
        assert status in ("ok", "fail"), line
        found[check] = f"{status} {detail}"
    return found


def _phases(result: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    return {phase["name"]: phase for phase in json.loads(result.stdout)["phases"]}


def test_doctor_on_the_plain_sandbox_says_what_each_client_meets(scene: TlsScene) -> None:
    lines = _lines(scene.plain_doctor)
    assert scene.plain_doctor.returncode == 0, scene.plain_doctor.stdout + scene.plain_doctor.stderr
    assert lines["database"].startswith("ok psycopg2 (libpq 17.") and "PostgreSQL 15." in lines["database"]
    assert lines["tls"] == "ok not encrypted, but 127.0.0.1 never leaves this host"
    assert lines["certificate"].startswith("ok sslmode prefer: who the server is, is not checked")
    assert lines["bypassrls"].startswith("ok ") and lines["locks"].startswith("ok ")
    assert lines["libpq"].startswith("ok the modules (migrate, normalize, smoke, verify, rollback) use psycopg2 with")
    assert "the host libpq 15." in lines["libpq"]
    assert lines["host-tools"].endswith("without TLS (sslmode prefer)")
    assert lines["disk"].startswith("ok ") and "the next backup needs about" in lines["disk"]
    assert lines["dokploy"] == "ok Dokploy (application.one) answered 200"
    assert lines["app"].startswith("ok the app's health") and lines["app"].endswith("answered 200")


def test_every_phase_and_every_client_works_over_verify_full_tls_with_a_client_certificate(scene: TlsScene) -> None:
    box = scene.box
    url = box.ops_url
    assert "sslmode=verify-full" in url and "sslcert=" in url and "sslkey=" in url
    doctor = box.wfops("doctor", "--env", "local")
    lines = _lines(doctor)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert lines["tls"].startswith("ok encrypted with TLSv1.3, TLS_")
    assert (
        lines["certificate"]
        == f"ok verify-full: the certificate is checked against {scene.pki.ca_cert}, its name against 127.0.0.1"
    )
    assert "over TLSv1.3, TLS_" in lines["host-tools"] and "(sslmode verify-full)" in lines["host-tools"]

    password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    with CommandLineSampler() as sampler:
        release = box.wfops("release", "--env", "local", "--ref", "tls-1", "--json")
    assert release.returncode == 0, release.stdout[-3000:] + release.stderr[-2000:]
    phases = _phases(release)
    assert [phases[name]["status"] for name in ("preflight", "backup", "migrate", "normalize", "deploy", "smoke")] == [
        "ok"
    ] * 6
    assert not [line for line in sampler.seen if password in line], "the password reached a process's arguments"
    assert any("pg_dump" in line for line in sampler.seen), "the sampler saw the backup's pg_dump"

    verify = box.wfops("run", "verify", "--env", "local", "--json")
    assert verify.returncode == 0 and _phases(verify)["verify"]["status"] == "ok", verify.stdout[-2000:]

    backup_id = phases["backup"]["result"]["id"]
    rollback = box.wfops("rollback", "--env", "local", "--database", "--confirm", backup_id, "--json")
    assert rollback.returncode == 0, rollback.stdout[-3000:] + rollback.stderr[-2000:]
    restored = _phases(rollback)["rollback"]["result"]["database"]
    assert restored["backup"] == backup_id and restored["compare"]["result"] == "ok"

    # Only TLS connections with the client certificate can get in: pg_hba has no other TCP line.
    hba = (box.directory / "pg" / "data" / "pg_hba.conf").read_text()
    assert [line for line in hba.splitlines() if line.startswith("host")] == [
        "hostssl all all 127.0.0.1/32 scram-sha-256 clientcert=verify-ca"
    ]


def test_a_revoked_server_certificate_fails_every_phase_and_the_backup_tool_naming_the_certificate(
    scene: TlsScene, tmp_path: Path
) -> None:
    box = scene.box
    good = {name: scene.url_file(name).read_text() for name in ("database_url", "app_database_url")}
    revoked = {name: tls_url(url, scene.pki, crl=scene.pki.crl_revoking_server) for name, url in good.items()}
    tool = run_tool(tool_env(revoked["database_url"], tmp_path / "backups"), "create")
    assert tool.returncode == 1 and any(reason in tool.stderr for reason in REVOKED), tool.stderr
    assert "cannot reach the database weddingflo at 127.0.0.1" in tool.stderr
    scene.set_urls(**revoked)
    try:
        for phase in ("backup", "migrate", "normalize", "verify"):
            result = box.wfops("run", phase, "--env", "local", "-e", "release_ref=revoked", "--json")
            error = json.dumps(_phases(result)[phase]["result"])
            assert result.returncode == 1 and any(reason in error for reason in REVOKED), (phase, error[-1500:])
        smoke = box.wfops("run", "smoke", "--env", "local", "--json")
        error = json.dumps(_phases(smoke)["smoke"]["result"])
        assert smoke.returncode == 1 and any(reason in error for reason in REVOKED), error[-1500:]
        # The app's side alone: its health answer names the database failure, and the smoke says so.
        smoke = box.wfops("run", "smoke", "--env", "local", "--json", "-e", 'smoke_flows=["auth", "sse"]')
        checks = _phases(smoke)["smoke"]["result"]["checks"]
        health = next(check for check in checks if check["flow"] == "0 health")
        assert smoke.returncode == 1 and health["status"] == "fail"
        assert health["evidence"].startswith("the app cannot reach its database: ")
        assert any(reason in health["evidence"] for reason in REVOKED), health
        doctor = _lines(box.wfops("doctor", "--env", "local"))
        assert doctor["database"].startswith("fail psycopg2 (libpq 17.") and "certificate" in doctor["database"]
        assert doctor["host-tools"].startswith("fail psql and pg_dump (the host libpq) cannot do a backup: ")
        assert "certificate" in doctor["host-tools"]
        assert doctor["app"].startswith("fail the app's health") and "answered 503" in doctor["app"]
    finally:
        scene.set_urls(**good)


def test_the_backup_role_refuses_a_pooler_url_before_writing_backup_env(scene: TlsScene) -> None:
    box = scene.box
    env_file = box.directory / "host" / "etc" / "weddingflo-backup" / "backup.env"
    before = env_file.read_text() if env_file.exists() else None
    good = scene.url_file("database_url").read_text()
    scene.set_urls(
        database_url=good.replace(f":{json.loads((box.directory / 'state.json').read_text())['port']}/", ":6543/")
    )
    try:
        result = box.wfops("run", "backup", "--env", "local", "--json")
        error = _phases(result)["backup"]["result"]["error"]
        assert result.returncode == 1 and "points at a transaction pooler" in error, error
        assert "use Supabase's direct connection on port 5432" in error
        assert (env_file.read_text() if env_file.exists() else None) == before, "backup.env was rewritten"
    finally:
        scene.set_urls(database_url=good)
