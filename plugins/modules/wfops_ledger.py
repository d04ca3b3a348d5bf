#!/usr/bin/python
"""Ansible module: the host's ledger — read it, ask it what serves and where a rollback goes, append to it."""

from __future__ import annotations

DOCUMENTATION = r"""
module: wfops_ledger
short_description: Read the host's release ledger, plan from it, or append an entry
description:
  - The ledger is one JSON line per release, standalone deploy, rollback, freeze and unfreeze. Every release, deploy
    and rollback records the deployment that serves when it ends, so what serves now and where a rollback returns
    to are decided from the host alone.
  - C(query=history) returns the newest entries and what serves now; C(query=serving) only what serves now (the
    deploy phase's "previous"); C(query=rollback_plan) where a code rollback goes (the last release that ended
    healthy before the one being left, never one that was rolled back from; or C(to_ref) / C(to_rollback_id)) and
    the backup a database rollback restores by default; C(query=resume) the interrupted release of C(ref) that a
    release starting at C(start) carries on (its earlier phases must be recorded ok), or a one-sentence refusal;
    C(query=append) appends C(entry) whole (O_APPEND, fsync; created 0640), never in check mode.
options:
  path: {description: The ledger file on the host., type: path, required: true}
  query:
    description: What to do.
    type: str
    choices: [history, serving, rollback_plan, resume, append]
    default: history
  limit: {description: For history, the newest entries returned., type: int, default: 50}
  entry: {description: For append, the entry (kind, run_id, ref, status, serving, ...)., type: dict}
  to_ref: {description: For rollback_plan, return to this ref (or commit) instead of the previous release., type: str}
  to_rollback_id: {description: For rollback_plan, return to this Dokploy rollbackId., type: str}
  to_serving: {description: For rollback_plan, return to this deployment (a serving record)., type: dict}
  expect_entries:
    description: For rollback_plan, fail when the ledger no longer has this many entries (it changed since planning).
    type: int
    default: -1
  ref: {description: For resume, the release's ref., type: str}
  start: {description: For resume, the phase the release starts at., type: str}
  order: {description: For resume, the release's phases in order., type: list, elements: str}
attributes:
  check_mode: {support: full, description: append writes nothing in check mode; the queries only read.}
  diff_mode: {support: none}
author: wfops
"""

EXAMPLES = r"""
- name: Plan the rollback from the ledger
  wfops_ledger:
    path: /var/lib/weddingflo/ledger.jsonl
    query: rollback_plan
  register: _plan
"""

RETURN = r"""
entries: {description: The newest entries (history)., type: list, returned: "query=history", sample: []}
total: {description: How many entries the ledger holds., type: int, returned: always, sample: 12}
serving:
  description: What serves now (release_run, ref, commit, deployment_id, rollback_id, reported, healthy), or null.
  type: dict
  returned: always
  sample: {release_run: 20261125-031500-ab12, ref: v1.4.0, commit: 3f1c2e9, healthy: true}
plan:
  description: "code (rollback | not needed | nowhere), note, target, rolled_back_run, backup_id, backup_run, ..."
  type: dict
  returned: "query=rollback_plan"
  sample: {code: rollback, note: "from v1.5.0 (run ...) to v1.4.0 (...)", backup_id: backup-20261125-031500}
resumed_from: {description: The interrupted run carried on, or null., type: str, returned: "query=resume"}
backup_id: {description: The backup that run took (or carried)., type: str, returned: "query=resume"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.wfops_ledger import Ledger, LedgerError, Serving, append_entry, read_entries


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "query": {
                "type": "str",
                "choices": ["history", "serving", "rollback_plan", "resume", "append"],
                "default": "history",
            },
            "limit": {"type": "int", "default": 50},
            "entry": {"type": "dict"},
            "to_ref": {"type": "str", "default": ""},
            "to_rollback_id": {"type": "str", "default": ""},
            "to_serving": {"type": "dict"},
            "expect_entries": {"type": "int", "default": -1},
            "ref": {"type": "str", "default": ""},
            "start": {"type": "str", "default": ""},
            "order": {"type": "list", "elements": "str", "default": []},
        },
        required_if=[("query", "append", ["entry"]), ("query", "resume", ["ref", "start", "order"])],
        supports_check_mode=True,
    )
    p = module.params
    try:
        if p["query"] == "append":
            entry = p["entry"] if module.check_mode else append_entry(p["path"], p["entry"]).to_dict()
            module.exit_json(changed=True, entry=entry)
        ledger = Ledger(read_entries(p["path"]))
        answer = {"total": len(ledger.entries), "serving": ledger.serving.to_dict() if ledger.serving else None}
        if p["query"] == "history":
            newest = ledger.entries[-p["limit"] :] if p["limit"] > 0 else []
            answer["entries"] = [entry.to_dict() for entry in newest]
        elif p["query"] == "rollback_plan":
            if p["expect_entries"] >= 0 and len(ledger.entries) != p["expect_entries"]:
                newest = ledger.entries[-1]
                raise LedgerError(
                    f"the ledger changed while the rollback was planned ({newest.kind} run {newest.run_id} ended "
                    "meanwhile): run the rollback again to plan from what serves now"
                )
            plan = ledger.rollback_plan(p["to_ref"], p["to_rollback_id"], Serving.from_dict(p["to_serving"]))
            answer["plan"] = plan.to_dict()
        elif p["query"] == "resume":
            resumed = ledger.resume_point(p["ref"], p["start"], p["order"])
            answer["resumed_from"] = resumed.run_id if resumed else None
            answer["backup_id"] = ledger.carried_backup(resumed) if resumed else None
    except LedgerError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"cannot use the ledger {p['path']}: {exc.strerror or exc}")
    module.exit_json(changed=False, **answer)


if __name__ == "__main__":
    main()
