"""Smoke signs out every session it creates, and a dry run creates none (Better Auth keeps sessions 7 days)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from conftest import SandboxHandle

FLOWS = ["-e", 'smoke_flows=["auth", "sse"]']


@pytest.fixture
def session_log(shared_sandbox: SandboxHandle) -> Iterator[SandboxHandle]:
    """Every INSERT and DELETE on sessions recorded while the test runs (a trigger, removed afterwards)."""
    admin = shared_sandbox.superuser()
    with admin.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE public.test_session_log (op text, at timestamptz DEFAULT now());"
            "CREATE FUNCTION public.test_log_session() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS"
            " $$ BEGIN INSERT INTO public.test_session_log (op) VALUES (TG_OP); RETURN NULL; END $$;"
            "CREATE TRIGGER test_log_session AFTER INSERT OR DELETE ON public.sessions"
            " FOR EACH ROW EXECUTE FUNCTION public.test_log_session()"
        )
    try:
        yield shared_sandbox
    finally:
        with admin.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER test_log_session ON public.sessions; DROP FUNCTION public.test_log_session();"
                "DROP TABLE public.test_session_log"
            )
        admin.close()


def _log_and_sessions(box: SandboxHandle) -> tuple[list[str], int]:
    admin = box.superuser()
    with admin.cursor() as cursor:
        cursor.execute("SELECT op FROM public.test_session_log ORDER BY at, op DESC")
        log = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT count(*) FROM public.sessions")
        left = cursor.fetchone()[0]
    admin.close()
    return log, left


def test_a_smoke_run_signs_out_every_session_it_creates(session_log: SandboxHandle) -> None:
    result = session_log.wfops("run", "smoke", "--env", "local", "--json", *FLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = {c["check"]: c for c in json.loads(result.stdout)["phases"][0]["result"]["checks"]}
    assert checks["the smoke run's last session is signed out"]["status"] == "pass"
    log, left = _log_and_sessions(session_log)
    assert sorted(log) == ["DELETE", "DELETE", "INSERT", "INSERT"], "two sign-ins, two sign-outs"
    assert left == 0


def test_a_dry_run_smoke_creates_no_session(session_log: SandboxHandle) -> None:
    result = session_log.wfops("run", "smoke", "--env", "local", "--check", "--json", *FLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = {c["check"]: c for c in json.loads(result.stdout)["phases"][0]["result"]["checks"]}
    assert checks["sign in, the session, sign out"]["status"] == "skip"
    assert "a dry run creates no session" in checks["sign in, the session, sign out"]["evidence"]
    assert _log_and_sessions(session_log) == ([], 0)
