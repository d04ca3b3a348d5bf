"""Phases 4 and 9 on real legacy data: exact values, honest dry runs, idempotence, refusals, invariants."""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from conftest import REPO, SandboxHandle, run_module, start_sandbox, stop_sandbox
from wfops.drizzle import migrate, read_migrations
from wfops.pgcluster import PostgresCluster
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
    code, real = _run(box, "normalize", "-e", "normalize_batch_size=150", "-e", "normalize_workers=2")
    assert code == 0, real
    assert real["result"]["rows"] == expected
    assert real["result"]["workers"] == 2
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


def _code(name: str) -> Any:
    """plugins/module_utils/<name>.py, after the module_utils it imports (the loader registers one file at a time)."""
    for dependency in ("wfops_pg", "wfops_invariants", "wfops_batches", "wfops_normalize"):
        if dependency == name:
            break
        load(dependency)
    return load(name)


@contextlib.contextmanager
def _normalizing_in_background(box: SandboxHandle, sections: list[str], options: Any) -> Iterator[list]:
    """normalize_sections on a connection of its own in a thread; on leaving, waits for it and holds its results."""
    norm = _code("wfops_normalize")
    results: list = []
    worker = box.connect()
    thread = threading.Thread(
        target=lambda: results.append(norm.normalize_sections(worker, sections, options, check_mode=False))
    )
    thread.start()
    try:
        yield results
    finally:
        thread.join(60)
        worker.close()
    assert not thread.is_alive() and results, "the normalisation did not finish"


def _wait_for(box: SandboxHandle, sql: str, what: str) -> list[tuple]:
    """The query's rows once it has any (within 30 s)."""
    deadline = time.monotonic() + 30
    while not (rows := _all(box, sql)):
        assert time.monotonic() < deadline, f"the normalisation never waited for {what}"
        time.sleep(0.05)
    return rows


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
    """The app rewrites a legacy row between a batch's scan and its update (the row moves: new ctid), while two
    workers share the page ranges. The batch skips it; the catch-up finds it again by id, changes it, and counts it
    once."""
    norm, batches = _code("wfops_normalize"), _code("wfops_batches")
    options = norm.Options(
        rsvp_map={"yes": "confirmed"},
        rsvp_canonical=["confirmed", "declined", "maybe", "pending"],
        batch_size=200,
        limits=_code("wfops_pg").Limits(lock_timeout="30s"),
        workers=batches.Workers(2, box.connect),
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
    with _normalizing_in_background(box, ["rsvp"], options) as results:
        try:
            _wait_for(box, "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'", "the app's row lock")
            with app.cursor() as cursor:
                cursor.execute("UPDATE guests SET first_name = 'moved by the app' WHERE id = %s", (guest,))
            app.commit()
        finally:
            app.close()
    (rsvp,) = results[0]
    assert _one(box, "SELECT rsvp_status || '/' || first_name FROM guests WHERE id = %s", (guest,)) == (
        "confirmed/moved by the app"
    )
    assert rsvp.rows == expected and rsvp.batches >= 2, rsvp
    assert _one(box, "SELECT count(*) FROM guests WHERE rsvp_status = 'yes'") == 0


CHANGED_TABLES = ("guests", "events", "budget", "vendors", "hotels", "gifts", "timeline", "documents", "clients")


def _copy_database(box: SandboxHandle, name: str) -> str:
    """A copy of the sandbox's database under `name` (same rows, same ids); its URL."""
    port = json.loads((box.directory / "state.json").read_text())["port"]
    admin = psycopg2.connect(PostgresCluster(base_dir=box.directory / "pg", port=port).admin_dsn("postgres"))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'weddingflo'")
        cursor.execute(f'CREATE DATABASE "{name}" TEMPLATE weddingflo OWNER postgres')
    admin.close()
    return box.ops_url.rsplit("/", 1)[0] + f"/{name}"


def _fingerprints(url: str) -> dict[str, str]:
    """Every changed table's rows (updated_at left out: it is the time of the change), in id order."""
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            sums = {}
            for table in CHANGED_TABLES:
                cursor.execute(
                    f"SELECT count(*) || ':' || md5(string_agg((to_jsonb(t) - 'updated_at')::text, '|' ORDER BY t.id))"
                    f" FROM {table} AS t"
                )
                sums[table] = cursor.fetchone()[0]
            return sums
    finally:
        connection.close()


def _normalize_directly(url: str, workers: int) -> list[Any]:
    norm, batches = _code("wfops_normalize"), _code("wfops_batches")
    tables = [{"table": t, "parent": "clients", "foreign_key": "client_id"} for t in CHANGED_TABLES[:-1]]
    options = norm.Options(
        rsvp_map={"yes": "confirmed", "attending": "confirmed", "no": "declined", "tentative": "maybe"},
        rsvp_canonical=["confirmed", "declined", "maybe", "pending"],
        side_map={"bride": "partner1", "groom": "partner2", "both": "mutual", "shared": "mutual"},
        side_canonical=["partner1", "partner2", "mutual"],
        company_id_tables=tables,
        not_null_columns=[{"table": "guests", "column": "company_id"}],
        batch_size=100,
        workers=batches.Workers(workers, lambda: psycopg2.connect(url)),
    )
    connection = psycopg2.connect(url)
    try:
        sections = ["rsvp", "guest_side", "company_id", "not_null", "client_stats"]
        return norm.normalize_sections(connection, sections, options, check_mode=False)
    finally:
        connection.close()


def test_two_workers_change_exactly_the_rows_one_worker_changes(box: SandboxHandle) -> None:
    serial_url, parallel_url = _copy_database(box, "serial_run"), _copy_database(box, "parallel_run")
    assert _fingerprints(serial_url) == _fingerprints(parallel_url)
    serial, parallel = _normalize_directly(serial_url, 1), _normalize_directly(parallel_url, 2)
    assert _fingerprints(serial_url) == _fingerprints(parallel_url)
    assert _fingerprints(serial_url) != _fingerprints(box.ops_url), "the runs changed nothing"
    # The same report: rows and per-value / per-table detail, section by section.
    summary = [(r.section, r.rows, r.detail) for r in serial]
    assert summary == [(r.section, r.rows, r.detail) for r in parallel]
    assert {r.section: r.rows for r in parallel}["rsvp"] == 900
    assert {r.section: r.batches for r in parallel}["rsvp"] > 10, "3,000 guests in 100-row batches"
    again = _normalize_directly(parallel_url, 2)
    assert [r.rows for r in again] == [0, 0, 0, 0, 0]


def test_a_not_null_step_waits_for_an_autovacuum_without_holding_up_the_apps_writes(box: SandboxHandle) -> None:
    """An autovacuum of guests (here a session holding the same lock) keeps the NOT NULL step waiting. It waits for
    SHARE UPDATE EXCLUSIVE, which the app's writes do not conflict with, not in the ACCESS EXCLUSIVE queue that every
    write of the app would join behind it."""
    assert _run(box, "normalize", "-e", "normalize_sections=company_id", "-e", "normalize_verify=false")[0] == 0
    norm = _code("wfops_normalize")
    options = norm.Options(not_null_columns=[{"table": "guests", "column": "company_id"}])
    options.limits.lock_timeout = "30s"
    vacuum = box.connect()
    with vacuum.cursor() as cursor:
        cursor.execute("LOCK TABLE guests IN SHARE UPDATE EXCLUSIVE MODE")
    with _normalizing_in_background(box, ["not_null"], options) as results:
        try:
            waiting = _wait_for(
                box,
                "SELECT mode FROM pg_locks WHERE NOT granted AND relation = 'guests'::regclass",
                "the vacuum's lock",
            )
            assert waiting == [("ShareUpdateExclusiveLock",)]
            app = box.connect()
            with app.cursor() as cursor:
                cursor.execute("SET lock_timeout = '2s'")
                cursor.execute(
                    "UPDATE guests SET first_name = 'written meanwhile'"
                    " WHERE id = (SELECT id FROM guests ORDER BY id LIMIT 1)"
                )
                assert cursor.rowcount == 1
            app.commit()
            app.close()
        finally:
            vacuum.rollback()
            vacuum.close()
    assert results[0][0].detail[0]["status"] == "SET NOT NULL"
    assert (
        _one(box, "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'guests'::regclass AND attname = 'company_id'")
        is True
    )


def _verdicts(results: list[Any]) -> dict[str, tuple[bool, Any]]:
    """Each invariant's verdict and value (values with equal counts in a stable order)."""

    def value(v: Any) -> Any:
        return sorted(v, key=lambda g: (-g["count"], str(g["value"]))) if isinstance(v, list) else v

    return {r.name: (r.passed, value(r.value)) for r in results}


def test_the_one_read_per_table_verification_judges_as_each_invariants_own_query(box: SandboxHandle) -> None:
    invariants = __import__("yaml").safe_load((REPO / "files" / "invariants.yml").read_text())["invariants"]
    one_read, each = _code("wfops_normalize_verify"), _code("wfops_invariants")

    def both() -> tuple[dict, dict]:
        connection = box.connect()
        try:
            return _verdicts(one_read.verify(connection, invariants)), _verdicts(
                each.evaluate_all(connection, invariants)
            )
        finally:
            connection.close()

    fast, slow = both()
    assert fast == slow and len(fast) == 7
    assert not any(passed for passed, _ in fast.values()), "legacy data fails every invariant"
    assert _run(box, "normalize")[0] == 0
    fast, slow = both()
    assert fast == slow and all(passed for passed, _ in fast.values())
    connection = box.connect()
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "UPDATE clients SET budget = '12.5'"
            " WHERE id = (SELECT id FROM clients WHERE deleted_at IS NULL ORDER BY id LIMIT 1)"
        )
        cursor.execute(
            "UPDATE guests SET guest_side = 'cousins' WHERE id = (SELECT id FROM guests ORDER BY id LIMIT 1)"
        )
    connection.close()
    fast, slow = both()
    assert fast == slow
    assert {name for name, (passed, _) in fast.items() if not passed} == {
        "client_budget_accurate",
        "guest_side_values_canonical",
    }
