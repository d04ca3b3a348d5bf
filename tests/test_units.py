"""Small pieces with no server behind them: the registry, results, URL masking, env scrubbing."""

from __future__ import annotations

import os
from xml.etree import ElementTree

import pytest

from wfops.drizzle import Migration
from wfops.phases import NotAReleasePhaseError, UnknownPhaseError, get_phase, release_phases
from wfops.results import PhaseResult, RunSummary, junit_xml, render_table, summary_status
from wfops.runner import environment_without_secrets
from wfops.sandbox.service import masked_url


def test_phase_lookup_accepts_dashes_and_underscores() -> None:
    assert get_phase("stats-repair") is get_phase("stats_repair")
    assert get_phase("stats-repair").stats_key == "wfops_stats_repair"
    with pytest.raises(UnknownPhaseError, match="the phases are: preflight"):
        get_phase("deploy-everything")


def test_release_phases_resume_from_a_phase() -> None:
    assert [p.name for p in release_phases("normalize")] == ["normalize", "deploy", "smoke"]
    with pytest.raises(NotAReleasePhaseError):
        release_phases("rollback")


def test_summary_status_fails_on_a_failed_phase_or_a_guard_error() -> None:
    ok = PhaseResult("backup", "ok", 1.0)
    skipped = PhaseResult("migrate", "skipped", 0.0, {"reason": "not implemented yet"})
    failed = PhaseResult("migrate", "failed", 0.5, {"error": "boom"})
    assert summary_status([ok, skipped], None) == "successful"
    assert summary_status([ok, failed], None) == "failed"
    assert summary_status([ok], "guard stopped it") == "failed"


def _summary() -> RunSummary:
    return RunSummary(
        run_id="r1",
        env="local",
        status="failed",
        command="release",
        started_at="t0",
        finished_at="t1",
        phases=[
            PhaseResult("backup", "ok", 2.0, {"backup_id": "b1"}),
            PhaseResult("migrate", "failed", 0.5, {"error": "0027 broke"}),
            PhaseResult("normalize", "skipped", 0.0, {"reason": "not run: migrate failed"}),
        ],
    )


def test_junit_has_one_case_per_phase_with_failure_and_skip() -> None:
    suite = ElementTree.fromstring(junit_xml(_summary()))
    assert suite.get("tests") == "3" and suite.get("failures") == "1" and suite.get("skipped") == "1"
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert cases["migrate"].find("failure").get("message") == "0027 broke"
    assert cases["normalize"].find("skipped").get("message") == "not run: migrate failed"
    assert cases["backup"].find("failure") is None


def test_summary_round_trips_through_json() -> None:
    summary = _summary()
    assert RunSummary.from_dict(summary.to_dict()) == summary


def test_table_shows_each_phase_and_the_verdict() -> None:
    table = render_table(_summary())
    assert "migrate    FAILED" in table and "0027 broke" in table and "result: FAILED" in table


def test_masked_url_hides_only_the_password() -> None:
    assert (
        masked_url("postgresql://postgres:s3cr%40t@127.0.0.1:5432/db") == "postgresql://postgres:***@127.0.0.1:5432/db"
    )
    assert masked_url("postgresql://postgres@127.0.0.1/db") == "postgresql://postgres@127.0.0.1/db"


def test_environment_without_secrets_hides_them_only_while_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@h/d")
    monkeypatch.setenv("DOKPLOY_API_KEY", "k")
    monkeypatch.setenv("WFOPS_SANDBOX_DIR", "/tmp/box")
    with environment_without_secrets() as removed:
        assert "DATABASE_URL" not in os.environ and "DOKPLOY_API_KEY" not in os.environ
        assert os.environ["WFOPS_SANDBOX_DIR"] == "/tmp/box"
        assert {"DATABASE_URL", "DOKPLOY_API_KEY"} <= set(removed)
    assert os.environ["DATABASE_URL"] == "postgresql://u:pw@h/d"


def test_statements_split_on_drizzles_breakpoint_keeping_every_piece_as_drizzle_sends_it() -> None:
    migration = Migration(
        0,
        "0000_x",
        1,
        'CREATE TABLE "a" (id int);\n--> statement-breakpoint\nSELECT 1;\n--> statement-breakpoint\n',
    )
    # drizzle-orm numbers and sends every piece, the empty last one included (it succeeds as an empty statement).
    assert [s.strip() for s in migration.chunks] == ['CREATE TABLE "a" (id int);', "SELECT 1;", ""]
    assert migration.atomic and migration.commits == frozenset()
