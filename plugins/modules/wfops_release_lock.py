#!/usr/bin/python
"""Ansible module: the host's release lock (who, when, which ref and run), like Kamal's deploy lock."""

from __future__ import annotations

DOCUMENTATION = r"""
module: wfops_release_lock
short_description: Acquire, release or read the host's release lock
description:
  - The lock is a directory created atomically (mkdir) with holder.json inside; a second release or a rollback
    refuses while it is held and names the holder. A lock is never taken over silently.
  - Whether the holder's run still works is judged by whether any process of that run is alive (the processes
    carrying its WFOPS_RUN_ID); this module reports those on the host (C(holder.processes)); its action plugin
    adds those on the controller and decides (C(holder.alive), C(holder.liveness)), and refuses
    C(state=released force=true) while one is alive. Without processes to judge by (a holder from another
    controller), one older than I(stale_after) seconds is reported as possibly stale.
  - A change freeze is the same mechanism's second record, C(freeze.json) beside the lock directory
    (C(state=frozen) / C(state=thawed)); while it is in force, taking the lock for a release (holder kind
    C(release)) is refused with the freeze's reason and who froze. Rollbacks take the lock as usual.
options:
  path: {description: The lock directory on the host., type: path, required: true}
  state:
    description: What to do.
    type: str
    choices: [acquired, released, status, frozen, thawed]
    default: status
  freeze:
    description: "For state=frozen: who, reason, until (an ISO time, or empty for until unfrozen), env."
    type: dict
    default: {}
  holder:
    description: "Who takes it: kind (release, rollback, freeze), run_id, ref, env, who, reason."
    type: dict
    default: {}
  force:
    description: Release a lock held by another run (after a person checked it is stale).
    type: bool
    default: false
  stale_after: {description: Seconds after which a held lock is reported as possibly stale., type: int, default: 7200}
  wait_for_processes:
    description:
      - For state=released, seconds to wait for the holder run's other processes on this host to end first
        (an interrupted run's modules cancel their statement and exit); still alive then, the lock stays and the
        task fails naming them.
    type: float
    default: 0
  if_held_by_run:
    description: For state=released, release (and append the ledger line) only when I(holder.run_id) holds the lock.
    type: bool
    default: false
  ledger_path:
    description: For state=released, the ledger (JSON lines) that I(ledger_entry) is appended to before the lock goes.
    type: path
  ledger_entry:
    description: For state=released, the run's ledger line; appended whole (created 0640), never in check mode.
    type: dict
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
freeze:
  description: The freeze in force (who, reason, since, until), or an empty dict; C(expired) when its until passed.
  type: dict
  returned: always
holder:
  description:
    - The holder's record (kind, run_id, ref, env, who, controller, controller_pid, since, age_s, stale), and
      C(processes), the processes of its run alive on this host (pid, command).
  type: dict
  returned: always
description:
  description: The holder in one phrase (who, what, which run, since when); empty when the lock is free.
  type: str
  returned: for state=status, and when state=acquired is refused because the lock is held
refusal:
  description: For state=status on a held lock, what taking it would answer (held and working, or stale), added by
    the action plugin, which judges whether the holder's run is alive.
  type: str
  returned: for state=status when the lock is held
"""

import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.wfops_ledger import append_entry
from ansible.module_utils.wfops_processes import run_processes


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
    holder["processes"] = run_processes(str(holder["run_id"])) if holder.get("run_id") else []
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
    if holder.get("note"):
        text += f"; {holder['note']}"
    return text


def freeze_path(lock: Path) -> Path:
    return lock.parent / f"{lock.name}.freeze.json"


def read_freeze(lock: Path) -> dict:
    """The freeze record, with expired=true once its `until` has passed; {} when there is none."""
    try:
        record = json.loads(freeze_path(lock).read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError:
        return {"reason": "freeze.json is unreadable: releases stay frozen until it is fixed or removed"}
    until = record.get("until")
    record["expired"] = bool(until) and dt.datetime.fromisoformat(until) <= dt.datetime.now(dt.UTC)
    return record


def describe_freeze(record: dict) -> str:
    text = f"releases are frozen by {record.get('who') or 'someone'} since {record.get('since') or '?'}"
    text += f": {record.get('reason') or 'no reason given'}"
    if record.get("until"):
        text += f" (until {record['until']})"
    return text


def _parse_until(value: str) -> str:
    """An ISO time (a date, or a time with or without zone; no zone means UTC), normalised; '' for none."""
    if not value:
        return ""
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def _freeze(module: AnsibleModule, lock: Path) -> None:
    request = module.params["freeze"] or {}
    if not str(request.get("reason") or "").strip():
        module.fail_json(msg="a freeze needs a reason (wfops freeze --reason '...')")
    try:
        until = _parse_until(str(request.get("until") or ""))
    except ValueError:
        module.fail_json(msg=f"--until {request.get('until')!r} is not an ISO time (e.g. 2026-12-02T09:00:00Z)")
    if until and dt.datetime.fromisoformat(until) <= dt.datetime.now(dt.UTC):
        module.fail_json(msg=f"--until {until} is already past")
    current = read_freeze(lock)
    record = {
        "who": request.get("who") or "",
        "reason": str(request["reason"]).strip(),
        "env": request.get("env") or "",
        "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "until": until,
    }
    if current and not current.get("expired") and all(current.get(k) == record[k] for k in ("who", "reason", "until")):
        module.exit_json(changed=False, held=lock.exists(), holder={}, freeze=current)
    if not module.check_mode:
        lock.parent.mkdir(parents=True, exist_ok=True)
        temporary = lock.parent / f".{lock.name}.freeze.tmp"
        temporary.write_text(json.dumps(record))
        temporary.replace(freeze_path(lock))
    module.exit_json(changed=True, held=lock.exists(), holder={}, freeze=record)


def _thaw(module: AnsibleModule, lock: Path) -> None:
    current = read_freeze(lock)
    if not current:
        module.exit_json(changed=False, held=lock.exists(), holder={}, freeze={})
    if not module.check_mode:
        freeze_path(lock).unlink()
    module.exit_json(changed=True, held=lock.exists(), holder={}, freeze=current)


def _wait_until_gone(run_id: str, seconds: float) -> list:
    """The run's processes on this host still alive after waiting up to `seconds` for them to end."""
    deadline = time.monotonic() + seconds
    while True:
        remaining = run_processes(run_id)
        if not remaining or time.monotonic() > deadline:
            return remaining
        time.sleep(0.2)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "state": {
                "type": "str",
                "choices": ["acquired", "released", "status", "frozen", "thawed"],
                "default": "status",
            },
            "freeze": {"type": "dict", "default": {}},
            "holder": {"type": "dict", "default": {}},
            "force": {"type": "bool", "default": False},
            "stale_after": {"type": "int", "default": 7200},
            "wait_for_processes": {"type": "float", "default": 0},
            "if_held_by_run": {"type": "bool", "default": False},
            "ledger_path": {"type": "path"},
            "ledger_entry": {"type": "dict"},
        },
        required_together=[("ledger_path", "ledger_entry")],
        supports_check_mode=True,
    )
    p = module.params
    path = Path(p["path"])
    if p["state"] == "frozen":
        _freeze(module, path)
    if p["state"] == "thawed":
        _thaw(module, path)
    current = _read(path, p["stale_after"])
    freeze = read_freeze(path)
    run_id = (p["holder"] or {}).get("run_id")
    if p["state"] == "status":
        module.exit_json(
            changed=False,
            held=current is not None,
            holder=current or {},
            freeze=freeze,
            description=describe(current) if current else "",
        )
    if p["state"] == "acquired":
        if freeze and not freeze.get("expired") and (p["holder"] or {}).get("kind", "release") == "release":
            module.fail_json(
                msg=f"{describe_freeze(freeze)}; rollbacks and backups still run; wfops unfreeze --env ENV ends it",
                held=current is not None,
                holder=current or {},
                freeze=freeze,
            )
        if current is not None:
            if run_id and current.get("run_id") == run_id:
                module.exit_json(changed=False, held=True, holder=current, freeze=freeze)
            # The action plugin says whether that run still works (its processes) in the final message.
            module.fail_json(
                msg=f"the release lock is held by {describe(current)}",
                held=True,
                holder=current,
                description=describe(current),
            )
        if module.check_mode:
            module.exit_json(changed=True, held=False, holder={}, freeze=freeze)
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
        module.exit_json(changed=True, held=True, holder=record, freeze=freeze)
    if p["if_held_by_run"] and (current is None or current.get("run_id") != run_id):
        module.exit_json(changed=False, held=current is not None, holder=current or {}, freeze=freeze)
    if current is not None and current.get("run_id") == run_id and p["wait_for_processes"] > 0:
        current["processes"] = _wait_until_gone(run_id, p["wait_for_processes"])
        if current["processes"]:
            alive = ", ".join(f"{process['command']} {process['pid']}" for process in current["processes"])
            module.fail_json(
                msg=f"{len(current['processes'])} process(es) of run {run_id} still run on this host ({alive}): "
                "the lock stays",
                held=True,
                holder=current,
            )
    # released: the run's ledger line first, so a run that held the lock is always on record
    if p["ledger_path"] and not module.check_mode:
        append_entry(p["ledger_path"], p["ledger_entry"])
    if current is None:
        module.exit_json(changed=False, held=False, holder={}, freeze=freeze)
    if not p["force"] and current.get("run_id") != run_id:
        module.fail_json(
            msg=f"the release lock belongs to {describe(current)}, not to this run; "
            "release it with force only after checking that run is gone",
            held=True,
            holder=current,
        )
    if not module.check_mode:
        shutil.rmtree(path)
    module.exit_json(changed=True, held=False, holder=current, freeze=freeze)


if __name__ == "__main__":
    main()
