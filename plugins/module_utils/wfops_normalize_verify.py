"""The runbook's post-normalisation verification (files/invariants.yml) in one read of each table.

Evaluated one by one (wfops_invariants.evaluate_all), the invariants read `guests` three times and then once more per
client through its index (the cached-stats checks' correlated subqueries): ~1.7 s at 1M guests, growing with them.
Here the invariants this phase knows by name are judged from one pass over guests (its values, NULL company ids and
counts per client grouped together), one over budget, one over events and one over clients; any other invariant in
the list, and every failing one (for its examples), is evaluated by its own query, so the report reads the same.
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.wfops_invariants import InvariantResult, evaluate

# One statement, one pass per table. `guests` is read once (materialised) for all its grouping sets.
ONE_READ_PER_TABLE_SQL = """
WITH g AS MATERIALIZED (
  SELECT GROUPING(client_id, rsvp_status, guest_side, no_company) AS set_id, client_id, rsvp_status, guest_side,
         no_company, count(*) AS n
  FROM (SELECT client_id, rsvp_status, guest_side, company_id IS NULL AS no_company FROM guests) AS s
  GROUP BY GROUPING SETS ((client_id), (rsvp_status), (guest_side), (no_company))),
b AS MATERIALIZED (
  SELECT GROUPING(client_id) AS set_id, client_id, COALESCE(SUM(CAST(estimated_cost AS NUMERIC)), 0)::TEXT AS total,
         count(*) FILTER (WHERE company_id IS NULL) AS nulls
  FROM budget GROUP BY GROUPING SETS ((client_id), ())),
c AS (
  SELECT count(*) FILTER (WHERE cl.guest_count != COALESCE(g.n, 0)) AS counts,
         count(*) FILTER (WHERE cl.budget IS DISTINCT FROM COALESCE(b.total, '0')) AS budgets
  FROM clients AS cl
  LEFT JOIN g ON g.set_id = 7 AND g.client_id = cl.id
  LEFT JOIN b ON b.set_id = 0 AND b.client_id = cl.id
  WHERE cl.deleted_at IS NULL)
SELECT 'rsvp_status', rsvp_status, n FROM g WHERE set_id = 11
UNION ALL SELECT 'guest_side', guest_side, n FROM g WHERE set_id = 13
UNION ALL SELECT 'guests_company_id', NULL, coalesce(sum(n) FILTER (WHERE no_company), 0) FROM g WHERE set_id = 14
UNION ALL SELECT 'budget_company_id', NULL, coalesce(sum(nulls), 0) FROM b WHERE set_id = 1
UNION ALL SELECT 'events_company_id', NULL, count(*) FROM events WHERE company_id IS NULL
UNION ALL SELECT 'client_guest_count', NULL, counts FROM c
UNION ALL SELECT 'client_budget', NULL, budgets FROM c
"""
# GROUPING(client_id, rsvp_status, guest_side, no_company) is a bit mask, 1 for each argument *not* grouped by:
# (client_id) 0111 = 7, (rsvp_status) 1011 = 11, (guest_side) 1101 = 13, (no_company) 1110 = 14.

# The invariants judged from the pass: name -> (what the pass reports, kind).
KNOWN = {
    "rsvp_values_canonical": "rsvp_status",
    "guest_side_values_canonical": "guest_side",
    "guests_company_id_present": "guests_company_id",
    "events_company_id_present": "events_company_id",
    "budget_company_id_present": "budget_company_id",
    "client_guest_count_accurate": "client_guest_count",
    "client_budget_accurate": "client_budget",
}


def _judged(invariant: dict[str, Any], rows: list[tuple[Any, Any, int]]) -> InvariantResult:
    name, description, action = invariant["name"], invariant.get("description", ""), invariant.get("action", "")
    if invariant["kind"] == "allowed_values":
        allowed = set(invariant.get("allowed") or [])
        groups = sorted(((value, int(n)) for _, value, n in rows), key=lambda pair: -pair[1])
        bad = [{"value": value, "count": n} for value, n in groups if value not in allowed]
        every = [{"value": value, "count": n} for value, n in groups]
        return InvariantResult(name, description, not bad, bad or every, action=action)
    value = int(rows[0][2]) if rows else 0
    return InvariantResult(name, description, value == 0, value, action=action)


def verify(connection: Any, invariants: list[dict[str, Any]]) -> list[InvariantResult]:
    """Every invariant of the list judged, in one read-only transaction; the known ones from one pass per table."""
    connection.autocommit = False
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION READ ONLY")
            # The per-client groups (200,000 clients at 10M guests) hashed in memory rather than spilled to disk.
            cursor.execute("SET LOCAL work_mem = '128MB'")
            known = [i for i in invariants if i.get("name") in KNOWN and i.get("kind") in ("allowed_values", "zero")]
            reported: dict[str, list[tuple[Any, Any, int]]] = {}
            if known:
                cursor.execute(ONE_READ_PER_TABLE_SQL)
                for what, value, n in cursor.fetchall():
                    reported.setdefault(what, []).append((what, value, n))
            results = []
            for invariant in invariants:
                if invariant in known:
                    result = _judged(invariant, reported.get(KNOWN[invariant["name"]], []))
                    # Failing: its own query once more, for the examples and the action, as evaluate_all reports it.
                    results.append(result if result.passed else evaluate(cursor, invariant))
                else:
                    results.append(evaluate(cursor, invariant))
            return results
    finally:
        connection.rollback()
