#!/usr/bin/python
"""Ansible module: one section of WeddingFlo's data normalisation, batched, counted exactly in check mode."""

from __future__ import annotations

DOCUMENTATION = r"""
module: wfops_normalize
short_description: One section of the WeddingFlo data normalisation (runbook phases 4 and 9)
description:
  - Sections C(rsvp), C(guest_side), C(company_id), C(not_null) and C(client_stats), as the runbook describes them.
  - Rows change in batches over physical page ranges (one short transaction each, under lock_timeout, retried
    when a lock, deadlock or serialization failure hits), on O(workers) connections at once, then a catch-up by id
    for the rows concurrent writes moved; batch_size 0 runs one transaction.
  - NOT NULL steps take SHARE UPDATE EXCLUSIVE first (an autovacuum gives way without the app's writes waiting),
    then wait at most O(ddl_lock_timeout) for their ACCESS EXCLUSIVE lock.
  - client_stats finds the drifted clients in one aggregate pass, then corrects them in batches of ids.
  - In check mode, counts exactly the rows the same predicates would change, and changes nothing.
  - Refuses when the connecting role is subject to row-level security on the section's tables.
  - With O(invariants), checks them afterwards, those it knows from one read of each table, and fails when one does
    not hold (unless O(fail_on_violation) is false, as in check mode).
options:
  database_url: {description: Any libpq URL or conninfo of a session/direct connection., type: str, required: true}
  section:
    description: The section to run (or use O(sections)).
    type: str
    choices: [rsvp, guest_side, company_id, not_null, client_stats]
  sections:
    description:
      - The sections to run, in order, in one call; C(rsvp) and C(guest_side) then change C(guests) in one pass
        (one new row version per changed row instead of one per section). The result has one entry per section.
    type: list
    elements: str
  rsvp_map: {description: Legacy RSVP value to canonical value., type: dict, default: {}}
  rsvp_canonical: {description: Canonical RSVP values (kept)., type: list, elements: str, default: []}
  rsvp_fallback: {description: Value for anything neither canonical nor mapped., type: str, default: pending}
  side_map: {description: Legacy guest side to canonical side., type: dict, default: {}}
  side_canonical: {description: Canonical guest sides (kept)., type: list, elements: str, default: []}
  company_id_tables:
    description: Child tables whose company_id is copied from their parent (table, parent, foreign_key).
    type: list
    elements: dict
    default: []
  not_null_columns: {description: Columns (table, column) to SET NOT NULL., type: list, elements: dict, default: []}
  batch_size: {description: Rows per batch (0 = one transaction)., type: int, default: 5000}
  lock_timeout: {description: lock_timeout of each batch., type: str, default: 2s}
  statement_timeout: {description: statement_timeout of each batch., type: str, default: 5min}
  retries: {description: Retries of a batch that could not get its locks., type: int, default: 5}
  retry_delay: {description: Seconds before the first retry (grows linearly)., type: float, default: 0.5}
  pause: {description: Seconds to pause between batches., type: float, default: 0}
  workers:
    description:
      - Connections changing page ranges at once; 0 = the host's cores, at most 4. 1 runs the batches one by one.
    type: int
    default: 0
  ddl_lock_timeout:
    description: How long a NOT NULL step may wait for its ACCESS EXCLUSIVE lock (the app's writes queue behind it).
    type: str
    default: 50ms
  invariants:
    description: The invariants to check afterwards (files/invariants.yml's list); none when empty.
    type: list
    elements: dict
    default: []
  fail_on_violation: {description: Fail when an invariant does not hold., type: bool, default: true}
  touch_updated_at: {description: Set updated_at = now() on changed rows., type: bool, default: true}
  sample_size: {description: Example rows reported (client_stats before -> after)., type: int, default: 5}
author: wfops
"""

EXAMPLES = r"""
- name: Normalise RSVP values
  wfops_normalize:
    database_url: "{{ wfops_database_url }}"
    section: rsvp
    rsvp_map: {attending: confirmed, "yes": confirmed, "no": declined}
    rsvp_canonical: [confirmed, declined, maybe, pending]
"""

RETURN = r"""
rows:
  description: Rows changed (in check mode, rows that would change); with O(sections), their sum.
  type: int
  returned: always
detail:
  description: Per value, per table or per column results, or client stats before -> after.
  type: list
  returned: when O(section) is given
sections:
  description: One result (section, rows, detail, batches, retries, max_batch_ms) per section, in order.
  type: list
  returned: when O(sections) is given
workers:
  description: The connections that changed page ranges at once.
  type: int
  returned: always
  sample: 2
verification:
  description: The invariants' results (passed, failed_names, results with name, passed, value, examples, action).
  type: dict
  returned: when O(invariants) is given
"""

from dataclasses import asdict

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.wfops_batches import Workers, worker_count
from ansible.module_utils.wfops_normalize import SECTIONS, Options, normalize_sections
from ansible.module_utils.wfops_normalize_verify import verify
from ansible.module_utils.wfops_pg import (
    PSYCOPG2_HINT,
    DatabaseError,
    Limits,
    connect,
    connection_lost,
    psycopg2_missing,
    stop_with_owner,
    writer_lock,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "database_url": {"type": "str", "required": True, "no_log": True},
            "section": {"type": "str", "choices": list(SECTIONS)},
            "sections": {"type": "list", "elements": "str", "choices": list(SECTIONS)},
            "rsvp_map": {"type": "dict", "default": {}},
            "rsvp_canonical": {"type": "list", "elements": "str", "default": []},
            "rsvp_fallback": {"type": "str", "default": "pending"},
            "side_map": {"type": "dict", "default": {}},
            "side_canonical": {"type": "list", "elements": "str", "default": []},
            "company_id_tables": {"type": "list", "elements": "dict", "default": []},
            "not_null_columns": {"type": "list", "elements": "dict", "default": []},
            "batch_size": {"type": "int", "default": 5000},
            "lock_timeout": {"type": "str", "default": "2s"},
            "statement_timeout": {"type": "str", "default": "5min"},
            "retries": {"type": "int", "default": 5},
            "retry_delay": {"type": "float", "default": 0.5},
            "pause": {"type": "float", "default": 0},
            "touch_updated_at": {"type": "bool", "default": True},
            "sample_size": {"type": "int", "default": 5},
            "writer_lock_wait": {"type": "float", "default": 60},
            "workers": {"type": "int", "default": 0},
            "ddl_lock_timeout": {"type": "str", "default": "50ms"},
            "invariants": {"type": "list", "elements": "dict", "default": []},
            "fail_on_violation": {"type": "bool", "default": True},
        },
        mutually_exclusive=[("section", "sections")],
        required_one_of=[("section", "sections")],
        supports_check_mode=True,
    )
    missing = psycopg2_missing()
    if missing:
        module.fail_json(msg=missing_required_lib(PSYCOPG2_HINT), exception=missing)
    import psycopg2

    p = module.params
    sections = p["sections"] or [p["section"]]
    name = f"wfops-normalize-{'-'.join(sections)}"[:63]
    options = Options(
        rsvp_map={str(k): str(v) for k, v in p["rsvp_map"].items()},
        rsvp_canonical=p["rsvp_canonical"],
        rsvp_fallback=p["rsvp_fallback"],
        side_map={str(k): str(v) for k, v in p["side_map"].items()},
        side_canonical=p["side_canonical"],
        company_id_tables=p["company_id_tables"],
        not_null_columns=p["not_null_columns"],
        batch_size=p["batch_size"],
        touch_updated_at=p["touch_updated_at"],
        sample_size=p["sample_size"],
        limits=Limits(
            lock_timeout=p["lock_timeout"],
            statement_timeout=p["statement_timeout"],
            retries=p["retries"],
            retry_delay_s=p["retry_delay"],
            pause_s=p["pause"],
        ),
        ddl_lock_timeout=p["ddl_lock_timeout"],
        workers=Workers(worker_count(p["workers"])),
    )
    verification = None
    try:
        # One writer at a time (wfops_pg.writer_lock); a run whose owner is gone cancels the statements of its
        # connections (the workers' too) and ends.
        with writer_lock(p["database_url"], "normalize", p["writer_lock_wait"], writes=not module.check_mode):
            connection = connect(p["database_url"], name)
            owned = stop_with_owner(connection)
            options.workers.connect = lambda: owned.add(connect(p["database_url"], f"{name[:55]}-worker"))
            try:
                results = normalize_sections(connection, sections, options, check_mode=module.check_mode)
                if p["invariants"]:
                    verification = verify(connection, p["invariants"])
            finally:
                connection.close()
    except DatabaseError as exc:
        module.fail_json(msg=str(exc), **exc.facts)
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
        module.fail_json(msg=str(connection_lost(exc)))
    except psycopg2.Error as exc:
        module.fail_json(msg=f"the database refused the normalisation: {' '.join(str(exc).split())}", pgcode=exc.pgcode)
    rows = sum(result.rows for result in results)
    payload = {"changed": rows > 0, "rows": rows, "workers": options.workers.count}
    if p["sections"]:
        payload["sections"] = [asdict(result) for result in results]
    else:
        payload.update(asdict(results[0]))
    if verification is not None:
        failed = [r for r in verification if not r.passed]
        payload["verification"] = {
            "passed": not failed,
            "failed_names": [r.name for r in failed],
            "results": [asdict(r) for r in verification],
        }
        if failed and p["fail_on_violation"]:
            module.fail_json(
                msg="the data invariants do not hold: " + "; ".join(r.summary() for r in failed), **payload
            )
    module.exit_json(**payload)


if __name__ == "__main__":
    main()
