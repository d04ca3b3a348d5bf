#!/usr/bin/python
"""Ansible module: evaluate WeddingFlo's data invariants (files/invariants.yml), read-only."""

from __future__ import annotations

DOCUMENTATION = r"""
module: wfops_invariants
short_description: Evaluate the runbook's post-run data checks, read-only
description:
  - Runs each invariant's query in one read-only transaction and judges it (allowed values, or a count of zero);
    for a failing one, fetches a few example ids.
  - Never changes anything, so it runs the same in check mode.
options:
  database_url: {description: Any libpq URL or key=value conninfo (wfops_pg.connect)., type: str, required: true}
  invariants: {description: The invariants (files/invariants.yml's list)., type: list, elements: dict, required: true}
  names: {description: Evaluate only these invariants., type: list, elements: str, default: []}
  fail_on_violation: {description: Fail the task when an invariant does not hold., type: bool, default: true}
author: wfops
"""

EXAMPLES = r"""
- name: Check the data invariants
  wfops_invariants:
    database_url: "{{ wfops_database_url }}"
    invariants: "{{ (lookup('ansible.builtin.file', 'files/invariants.yml') | from_yaml).invariants }}"
"""

RETURN = r"""
results:
  description: Each invariant's name, description, passed, value, examples and action.
  type: list
  returned: always
passed:
  description: Whether every evaluated invariant holds.
  type: bool
  returned: always
"""

from dataclasses import asdict

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.wfops_invariants import evaluate_all
from ansible.module_utils.wfops_pg import PSYCOPG2_HINT, DatabaseError, connect, psycopg2_missing


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "database_url": {"type": "str", "required": True, "no_log": True},
            "invariants": {"type": "list", "elements": "dict", "required": True},
            "names": {"type": "list", "elements": "str", "default": []},
            "fail_on_violation": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    missing = psycopg2_missing()
    if missing:
        module.fail_json(msg=missing_required_lib(PSYCOPG2_HINT), exception=missing)
    try:
        connection = connect(module.params["database_url"], "wfops-invariants")
        try:
            results = evaluate_all(connection, module.params["invariants"], module.params["names"] or None)
        finally:
            connection.close()
    except DatabaseError as exc:
        module.fail_json(msg=str(exc), **exc.facts)
    failed = [r for r in results if not r.passed]
    payload = {"results": [asdict(r) for r in results], "passed": not failed, "failed_names": [r.name for r in failed]}
    if failed and module.params["fail_on_violation"]:
        module.fail_json(msg="the data invariants do not hold: " + "; ".join(r.summary() for r in failed), **payload)
    module.exit_json(changed=False, **payload)


if __name__ == "__main__":
    main()
