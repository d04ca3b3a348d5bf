"""Phases 4 and 9 on real legacy data: exact values, honest dry runs, idempotence, refusals, invariants."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from conftest import REPO, SandboxHandle, run_module, start_sandbox, stop_sandbox
from wfops.drizzle import migrate, read_migrations
from wfops.plugin_code import load

RSVP_CASES = {
    "attending": "confirmed",
    "accepted": "confirmed",
    "yes": "confirmed",
    " Attending ": "confirmed",
    "YES": "confirmed",
    "not_attending": "declined",
    "no": "declined",
    "tentative": "maybe",
    "confirmed": "confirmed",
    "declined": "declined",
    "maybe": "maybe",
    "pending": "pending",
    "unknown": "pending",
    "": "pending",
    "Maybe?": "pending",
}
SIDE_CASES = {
    "bride": "partner1",
    "bride_side": "partner1",
    "groom": "partner2",
    "groom_side": "partner2",
    "both": "mutual",
    "common": "mutual",
    "shared": "mutual",
    "partner1": "partner1",
    "mutual": "mutual",
    None: None,
}


@pytest.fixture
def box(tmp_path: Path) -> Iterator[SandboxHandle]:
    """A sandbox at the release's migration head (0027), legacy data still in place."""
    handle = start_sandbox(tmp_path / "box", guests=3000)
    connection = handle.connect()
    migrate(connection, read_migrations(REPO / "sandbox-app" / "drizzle"))
    connection.close()
    yield handle
    stop_sandbox(handle)


def _one(box: SandboxHandle, sql: str, params: tuple = ()) -> object:
    connection = box.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            value = cursor.fetchone()[0]
        connection.commit()
        return value
    finally:
        connection.close()


def _all(box: SandboxHandle, sql: str, params: tuple = ()) -> list[tuple]:
    connection = box.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        connection.close()


def _rsvp_value_before(guest: object, planted: dict) -> str:
    return planted["rsvp_before"][guest]


def _run(box: SandboxHandle, phase: str, *extra: str) -> tuple[int, dict]:
    result = box.wfops("run", phase, "--env", "local", "--json", *extra)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)["phases"][0]


def _plant_known_rows(box: SandboxHandle) -> dict[str, object]:
    """Rows whose final values the test knows in advance, under one client of company A."""
    connection = box.connect()
    planted: dict[str, object] = {"rsvp": {}, "side": {}, "children": {}}
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, company_id FROM clients WHERE deleted_at IS NULL ORDER BY partner1_first_name LIMIT 1"
        )
        client_id, company_id = cursor.fetchone()
        planted["client"], planted["company"] = client_id, company_id
        for value, expected in RSVP_CASES.items():
            cursor.execute(
                "INSERT INTO guests (client_id, company_id, first_name, rsvp_status, updated_at)"
                " VALUES (%s, %s, 'rsvp-case', %s, now() - interval '30 days')"
                " RETURNING id",
                (client_id, company_id, value),
            )
            guest = cursor.fetchone()[0]
            planted["rsvp"][guest] = expected
            planted.setdefault("rsvp_before", {})[guest] = value
        for value, expected in SIDE_CASES.items():
            cursor.execute(
                "INSERT INTO guests (client_id, company_id, first_name, guest_side) VALUES (%s, %s, 'side-case', %s)"
                " RETURNING id",
                (client_id, company_id, value),
            )
            planted["side"][cursor.fetchone()[0]] = expected
        cursor.execute(
            "INSERT INTO guests (client_id, first_name) VALUES (%s, 'no-company') RETURNING id", (client_id,)
        )
        guest = cursor.fetchone()[0]
        planted["children"]["guests"] = guest
        for table, columns in (("events", "title"), ("vendors", "name"), ("hotels", "name"), ("timeline", "title")):
            cursor.execute(f"INSERT INTO {table} (client_id, {columns}) VALUES (%s, 'x') RETURNING id", (client_id,))
            planted["children"][table] = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO budget (client_id, category, item, estimated_cost) VALUES (%s, 'c', 'i', 10) RETURNING id",
            (client_id,),
        )
        budget_id = cursor.fetchone()[0]
        planted["children"]["budget"] = budget_id
        cursor.execute("INSERT INTO gifts (client_id, description) VALUES (%s, 'g') RETURNING id", (client_id,))
        planted["children"]["gifts"] = cursor.fetchone()[0]
        cursor.execute("INSERT INTO documents (client_id, name, url) VALUES (%s, 'd', 'u') RETURNING id", (client_id,))
        planted["children"]["documents"] = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO advance_payments (budget_id, client_id, amount) VALUES (%s, %s, 1) RETURNING id",
            (budget_id, client_id),
        )
        planted["children"]["advance_payments"] = cursor.fetchone()[0]
        cursor.execute("SELECT id FROM chatbot_conversations WHERE company_id = %s LIMIT 1", (company_id,))
        conversation = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO chatbot_messages (conversation_id, role, content) VALUES (%s, 'user', 'hi') RETURNING id",
            (conversation,),
        )
        planted["children"]["chatbot_messages"] = cursor.fetchone()[0]
        cursor.execute("UPDATE clients SET guest_count = 999, budget = '1' WHERE id = %s", (client_id,))
    connection.close()
    return planted


def test_each_section_gives_the_runbooks_values_and_the_invariants_then_hold(box: SandboxHandle) -> None:
    planted = _plant_known_rows(box)
    code, phase = _run(box, "normalize")
    assert code == 0, phase
    for guest, expected in planted["rsvp"].items():
        assert _one(box, "SELECT rsvp_status FROM guests WHERE id = %s", (guest,)) == expected
    for guest, expected in planted["side"].items():
        assert _one(box, "SELECT guest_side FROM guests WHERE id = %s", (guest,)) == expected
    for table, row in planted["children"].items():
        assert _one(box, f"SELECT company_id FROM {table} WHERE id = %s", (row,)) == planted["company"], table
    for table in ("guests", "events", "budget", "vendors", "hotels"):
        assert (
            _one(
                box,
                "SELECT attnotnull FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'company_id'",
                (table,),
            )
            is True
        )
    assert _one(box, "SELECT count(*) FROM pg_constraint WHERE conname LIKE '%%_company_id_not_null'") == 0
    real_count = _one(box, "SELECT count(*) FROM guests WHERE client_id = %s", (planted["client"],))
    assert _one(box, "SELECT guest_count FROM clients WHERE id = %s", (planted["client"],)) == real_count
    real_budget = _one(box, "SELECT sum(estimated_cost)::text FROM budget WHERE client_id = %s", (planted["client"],))
    assert _one(box, "SELECT budget FROM clients WHERE id = %s", (planted["client"],)) == real_budget
    assert phase["result"]["verification"] == {"passed": True, "failed": []}
    # updated_at moves on exactly the rows that changed (the runbook's partial rollback reads it).
    touched = {
        str(guest)
        for (guest,) in _all(
            box, "SELECT id FROM guests WHERE first_name = 'rsvp-case' AND updated_at > now() - interval '10 minutes'"
        )
    }
    changed = {
        str(guest) for guest, expected in planted["rsvp"].items() if _rsvp_value_before(guest, planted) != expected
    }
    assert touched == changed and len(changed) == 11


def test_the_dry_run_counts_what_the_run_changes_and_a_second_run_changes_nothing(box: SandboxHandle) -> None:
    fingerprint_before = _one(box, "SELECT md5(string_agg(g::text, '' ORDER BY id)) FROM guests g")
    code, dry = _run(box, "normalize", "--check")
    assert code == 0
    assert _one(box, "SELECT md5(string_agg(g::text, '' ORDER BY id)) FROM guests g") == fingerprint_before
    expected = {"rsvp": 900, "guest_side": 900, "company_id": 300 + 30 + 60 + 15 + 3, "not_null": 5, "client_stats": 12}
    assert dry["result"]["rows"] == expected
    assert dry["result"]["verification"]["passed"] is False
    code, real = _run(box, "normalize", "-e", "normalize_batch_size=150")
    assert code == 0, real
    assert real["result"]["rows"] == expected
    by_section = {s["section"]: s for s in real["result"]["sections"]}
    assert by_section["rsvp"]["batches"] > 2, "a 3000-guest table in 150-row batches is more than two batches"
    code, again = _run(box, "normalize")
    assert code == 0
    assert set(again["result"]["rows"].values()) == {0}


def test_one_transaction_per_section_gives_the_same_result(box: SandboxHandle) -> None:
    code, phase = _run(box, "normalize", "-e", "normalize_batch_size=0")
    assert code == 0
    assert {s["section"]: s["batches"] for s in phase["result"]["sections"]}["rsvp"] == 1
    assert phase["result"]["verification"]["passed"] is True


def _module(url: str, module: str, args: dict) -> subprocess.CompletedProcess[str]:
    return run_module(module, {"database_url": url, **args})


def test_it_refuses_to_run_as_a_role_subject_to_row_level_security(box: SandboxHandle) -> None:
    app_url = (box.directory / "app_database_url").read_text().strip()
    result = _module(
        app_url,
        "wfops_normalize",
        {
            "section": "rsvp",
            "rsvp_map": {"yes": "confirmed"},
            "rsvp_canonical": ["confirmed", "declined", "maybe", "pending"],
        },
    )
    assert result.returncode != 0
    assert "weddingflo_app is subject to row-level security on guests" in result.stdout
    assert "would silently match" in result.stdout
    assert _one(box, "SELECT count(*) FROM guests WHERE rsvp_status = 'yes'") == 90


def test_not_null_reports_remaining_nulls_instead_of_failing_half_way(box: SandboxHandle) -> None:
    tables = [{"table": t, "parent": "clients", "foreign_key": "client_id"} for t in ("guests", "events", "budget")]
    code, phase = _run(box, "normalize", "-e", f"normalize_company_id_tables={json.dumps(tables)}")
    assert code == 0, phase
    results = {
        row["table"]: row for row in {s["section"]: s for s in phase["result"]["sections"]}["not_null"]["detail"]
    }
    assert results["vendors"]["status"] == "NULLs remain" and results["vendors"]["nulls"] == 15
    assert len(results["vendors"]["examples"]) == 5
    assert results["hotels"]["status"] == "NULLs remain" and results["hotels"]["nulls"] == 3
    assert results["guests"]["status"] == "SET NOT NULL"
    assert (
        _one(box, "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'vendors'::regclass AND attname = 'company_id'")
        is False
    )


def test_stats_repair_corrects_what_was_corrupted_and_leaves_deleted_clients_alone(box: SandboxHandle) -> None:
    code, _ = _run(box, "normalize")  # start from normalised data with accurate stats
    assert code == 0
    connection = box.connect()
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "UPDATE clients SET guest_count = guest_count + 7 WHERE id IN"
            " (SELECT id FROM clients WHERE deleted_at IS NULL ORDER BY id LIMIT 4)"
        )
        cursor.execute(
            "UPDATE clients SET budget = '0.01' WHERE id IN"
            " (SELECT id FROM clients WHERE deleted_at IS NULL ORDER BY id DESC LIMIT 3)"
        )
        cursor.execute("UPDATE clients SET guest_count = 12345 WHERE deleted_at IS NOT NULL")
    connection.close()
    code, verify = _run(box, "verify")
    assert code == 1 and verify["status"] == "failed"
    failing = {r["name"]: r for r in verify["result"]["results"] if not r["passed"]}
    assert set(failing) == {"client_guest_count_accurate", "client_budget_accurate"}
    assert (
        failing["client_guest_count_accurate"]["value"] == 4
        and len(failing["client_guest_count_accurate"]["examples"]) == 4
    )
    assert "wfops run stats-repair" in failing["client_guest_count_accurate"]["action"]
    code, dry = _run(box, "stats-repair", "--check")
    assert dry["result"]["clients_corrected"] == 7
    code, repaired = _run(box, "stats-repair")
    assert code == 0
    assert repaired["result"]["clients_corrected"] == 7
    assert any(
        e["guest_count"].endswith(f"-> {int(e['guest_count'].split(' -> ')[0]) - 7}")
        for e in repaired["result"]["examples"]
    )
    assert _one(box, "SELECT count(*) FROM clients WHERE deleted_at IS NOT NULL AND guest_count = 12345") == 1
    code, again = _run(box, "stats-repair")
    assert again["result"]["clients_corrected"] == 0
    assert _run(box, "verify")[0] == 0


def test_the_invariants_fail_on_legacy_data_and_name_the_rows(box: SandboxHandle) -> None:
    code, phase = _run(box, "verify")
    assert code == 1
    results = {r["name"]: r for r in phase["result"]["results"]}
    assert not results["rsvp_values_canonical"]["passed"]
    legacy = {v["value"] for v in results["rsvp_values_canonical"]["value"]}
    assert legacy == {
        "attending",
        "accepted",
        "yes",
        "not_attending",
        "no",
        "tentative",
        "unknown",
        "",
        "YES",
        "Maybe?",
    }
    assert results["guests_company_id_present"]["value"] == 300
    assert len(results["guests_company_id_present"]["examples"]) == 5
    assert results["client_guest_count_accurate"]["value"] == 6
    assert _run(box, "normalize")[0] == 0
    code, after = _run(box, "verify")
    assert code == 0 and all(r["passed"] for r in after["result"]["results"])


def test_a_batch_that_cannot_get_its_row_locks_gives_up_and_leaves_the_other_session_alone(box: SandboxHandle) -> None:
    holder = psycopg2.connect(box.ops_url)
    with holder.cursor() as cursor:
        cursor.execute("SELECT id FROM guests WHERE rsvp_status = 'yes' LIMIT 1 FOR UPDATE")
        locked = cursor.fetchone()[0]
    try:
        result = _module(
            box.ops_url,
            "wfops_normalize",
            {
                "section": "rsvp",
                "rsvp_map": {"yes": "confirmed"},
                "rsvp_canonical": ["confirmed", "declined", "maybe", "pending"],
                "lock_timeout": "100ms",
                "retries": 1,
                "retry_delay": 0.1,
                "batch_size": 100000,
            },
        )
        assert result.returncode != 0
        assert "gave up after 2 attempts (lock not available, lock_timeout 100ms)" in result.stdout
        with holder.cursor() as cursor:
            cursor.execute("UPDATE guests SET first_name = 'held' WHERE id = %s", (locked,))
            assert cursor.rowcount == 1
        holder.commit()
    finally:
        holder.close()
    assert _one(box, "SELECT first_name FROM guests WHERE id = %s", (locked,)) == "held"


def test_an_unknown_guest_side_is_left_alone_and_the_verification_names_it(box: SandboxHandle) -> None:
    guest = _one(
        box,
        "UPDATE guests SET guest_side = 'grandparents'"
        " WHERE id = (SELECT id FROM guests ORDER BY id LIMIT 1) RETURNING id",
    )
    code, phase = _run(box, "normalize")
    assert code == 1 and phase["status"] == "failed"
    assert "guest_side_values_canonical: [{'value': 'grandparents', 'count': 1}]" in phase["result"]["error"]
    assert str(guest) in phase["result"]["error"]
    assert _one(box, "SELECT guest_side FROM guests WHERE id = %s", (guest,)) == "grandparents"


def test_a_row_rewritten_by_the_app_while_the_pass_waits_for_it_is_not_left_behind(box: SandboxHandle) -> None:
    """The app rewrites a legacy row between the pass's scan and its update (the row moves: new ctid). The pass
    must not skip it for good: it runs again and changes it, and counts it once."""
    norm = load("wfops_normalize")
    options = norm.Options(
        rsvp_map={"yes": "confirmed"},
        rsvp_canonical=["confirmed", "declined", "maybe", "pending"],
        batch_size=0,
        limits=load("wfops_pg").Limits(lock_timeout="30s"),
    )
    expected = _one(
        box,
        "SELECT count(*) FROM guests WHERE rsvp_status IS DISTINCT FROM 'confirmed'"
        " AND rsvp_status NOT IN ('declined', 'maybe', 'pending')",
    )
    app = box.connect()
    with app.cursor() as cursor:
        cursor.execute("SELECT id FROM guests WHERE rsvp_status = 'yes' LIMIT 1 FOR UPDATE")
        guest = cursor.fetchone()[0]
    results: list = []
    worker = box.connect()
    thread = threading.Thread(
        target=lambda: results.append(norm.normalize_sections(worker, ["rsvp"], options, check_mode=False))
    )
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not _one(box, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"):
            assert time.monotonic() < deadline, "the pass never waited for the app's row lock"
            time.sleep(0.05)
        with app.cursor() as cursor:
            cursor.execute("UPDATE guests SET first_name = 'moved by the app' WHERE id = %s", (guest,))
        app.commit()
        thread.join(60)
    finally:
        app.close()
    worker.close()
    assert not thread.is_alive() and results, "the pass did not finish"
    (rsvp,) = results[0]
    assert _one(box, "SELECT rsvp_status || '/' || first_name FROM guests WHERE id = %s", (guest,)) == (
        "confirmed/moved by the app"
    )
    assert rsvp.rows == expected and rsvp.batches >= 2, rsvp
