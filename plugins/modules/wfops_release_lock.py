#!/usr/bin/python
"""Ansible module: the host's release lock (who, when, which ref and run), like Kamal's deploy lock."""

from __future__ import annotations

DOCUMENTATION = r"""
module: wfops_release_lock
short_description: Acquire, release or read the host's release lock
description:
  - The lock is a directory created atomically (mkdir) with holder.json inside; a second release or a rollback
    refuses while it is held and names the holder. A lock is never taken over silently; one older than
    I(stale_after) seconds is reported as possibly stale, and only C(state=released force=true) removes it.
options:
  path: {description: The lock directory on the host., type: path, required: true}
  state: {description: What to do., type: str, choices: [acquired, released, status], default: status}
  holder:
    description: "Who takes it: kind (release, rollback, freeze), run_id, ref, env, who, reason."
    type: dict
    default: {}
  force:
    description: Release a lock held by another run (after a person checked it is stale).
    type: bool
    default: false
  stale_after: {description: Seconds after which a held lock is reported as possibly stale., type: int, default: 7200}
author: wfops
"""

EXAMPLES = r"""
- name: Take the release lock
  wfops_release_lock:
    path: /var/lib/weddingflo/release.lock
    state: acquired
    holder: {kind: release, run_id: "{{ wfops_run_id }}", ref: "{{ wfops_release_ref }}", who: alice}
"""

RETURN = r"""
held: {description: Whether the lock is held after the call., type: bool, returned: always}
holder:
  description: The holder's record (kind, run_id, ref, env, who, since, age_s, stale).
  type: dict
  returned: always
"""

import datetime as dt
import json
import os
import shutil
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule


def _read(path: Path, stale_after: int) -> dict | None:
    try:
        holder = json.loads((path / "holder.json").read_text())
    except FileNotFoundError:
        if not path.exists():
            return None
        holder = {"note": "the lock directory has no holder.json (a run died while taking it)"}
    except json.JSONDecodeError:
        holder = {"note": "holder.json is unreadable"}
    since = holder.get("since")
    age = None
    if since:
        age = (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(since)).total_seconds()
    else:
        age = dt.datetime.now(dt.UTC).timestamp() - path.stat().st_mtime
    holder["age_s"] = round(age, 1)
    holder["stale"] = age > stale_after
    return holder


def describe(holder: dict) -> str:
    who = holder.get("who") or "someone"
    what = f"{holder.get('kind', 'a run')} of {holder.get('ref') or '?'}"
    since = holder.get("since") or "an unknown time"
    text = f"{who} ({what}, run {holder.get('run_id') or '?'}, since {since}"
    if holder.get("controller"):
        text += f", from {holder['controller']}"
    if holder.get("reason"):
        text += f", reason: {holder['reason']}"
    text += ")"
    if holder.get("stale"):
        text += f"; it is {int(holder['age_s'] // 60)} minutes old and may be stale"
    if holder.get("note"):
        text += f"; {holder['note']}"
    return text


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["acquired", "released", "status"], "default": "status"},
            "holder": {"type": "dict", "default": {}},
            "force": {"type": "bool", "default": False},
            "stale_after": {"type": "int", "default": 7200},
        },
        supports_check_mode=True,
    )
    p = module.params
    path = Path(p["path"])
    current = _read(path, p["stale_after"])
    run_id = (p["holder"] or {}).get("run_id")
    if p["state"] == "status":
        module.exit_json(changed=False, held=current is not None, holder=current or {})
    if p["state"] == "acquired":
        if current is not None:
            if run_id and current.get("run_id") == run_id:
                module.exit_json(changed=False, held=True, holder=current)
            hint = "wfops lock status --env ENV; if that run is gone, wfops lock release --env ENV --force"
            module.fail_json(
                msg=f"the release lock is held by {describe(current)}: wait for it, or check ({hint})",
                held=True,
                holder=current,
            )
        if module.check_mode:
            module.exit_json(changed=True, held=False, holder={})
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir(mode=0o750)  # atomic: exactly one of two concurrent runs gets here
        except FileExistsError:
            current = _read(path, p["stale_after"]) or {}
            module.fail_json(msg=f"the release lock was just taken by {describe(current)}", held=True, holder=current)
        record = {**p["holder"], "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "pid": os.getpid()}
        temporary = path / ".holder.json.tmp"
        temporary.write_text(json.dumps(record))
        temporary.replace(path / "holder.json")
        module.exit_json(changed=True, held=True, holder=record)
    # released
    if current is None:
        module.exit_json(changed=False, held=False, holder={})
    if not p["force"] and current.get("run_id") != run_id:
        module.fail_json(
            msg=f"the release lock belongs to {describe(current)}, not to this run; "
            "release it with force only after checking that run is gone",
            held=True,
            holder=current,
        )
    if not module.check_mode:
        shutil.rmtree(path)
    module.exit_json(changed=True, held=False, holder=current)


if __name__ == "__main__":
    main()
