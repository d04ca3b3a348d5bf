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
    (C(state=frozen) / C(state=thawed)); while it is in force, taking the lock for a release or a deploy (holder
    kind C(release) or C(deploy)) is refused with the freeze's reason and who froze. Rollbacks take the lock as
    usual, and backups take none.
options:
  path: {description: The lock directory on the host., type: path, required: true}
  state:
    description: What to do.
    type: str
    choices: [acquired, released, status, frozen, thawed, progress]
    default: status
  freeze:
    description: "For state=frozen: who, reason, until (an ISO time, or empty for until unfrozen), env."
    type: dict
    default: {}
  holder:
    description: "Who takes it: kind (release, deploy, rollback), run_id, ref, env, who, reason."
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
  progress:
    description:
      - For state=progress, by the run that holds the lock (I(holder.run_id)) - the phases it finished
        (C(phases), name to status) and its backup (C(backup_id)), merged into holder.json; nothing when another
        run, or none, holds it. A run killed outright is recorded from them when its lock is released by force.
    type: dict
    default: {}
  record_interrupted:
    description:
      - For state=released force=true, with I(ledger_path) - append a ledger line with status C(interrupted) for
        the holder's run (its kind, ref, run id, the phases its lock recorded, its backup, where it stopped) unless
        the ledger already has a line of that run; so a release killed outright can be resumed with --from.
    type: bool
    default: false
  order:
    description: The release's phases in order (where an interrupted release stopped is the first one not ok).
    type: list
    elements: str
    default: []
  who:
    description: For I(record_interrupted), who released the lock (named in the line's interrupted_by).
    type: str
    default: ""
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
  description:
    - For state=status when held (its action plugin adds it), the sentence a run kept out by this lock is refused
      with - who holds it, and whether that run still works or is stale.
  type: str
  returned: when state is status and the lock is held
recorded:
  description: For record_interrupted, the ledger line appended for the holder's run (empty when none was needed).
  type: dict
  returned: when state is released
"""

import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.wfops_ledger import append_entry, read_entries
from ansible.module_utils.wfops_processes import run_processes

# The holders a change freeze refuses: what puts new code or schema out. Rollbacks (and backups, lockless) still run.
FROZEN_KINDS = ("release", "deploy")


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


def _write_holder(path: Path, record: dict) -> None:
    temporary = path / ".holder.json.tmp"
    temporary.write_text(json.dumps(record))
    temporary.replace(path / "holder.json")


def _progress(module: AnsibleModule, path: Path, current: dict | None) -> None:
    """Note the phases the holding run finished (and its backup) in holder.json; any other run's call is a no-op."""
    run_id = (module.params["holder"] or {}).get("run_id")
    if current is None or not run_id or current.get("run_id") != run_id:
        module.exit_json(changed=False, held=current is not None, holder={})
    progress = module.params["progress"] or {}
    record = {key: value for key, value in current.items() if key not in ("age_s", "stale", "processes")}
    finished = {str(name): str(status) for name, status in (progress.get("phases") or {}).items()}
    record["phases"] = {**(record.get("phases") or {}), **finished}
    if progress.get("backup_id"):
        record["backup_id"] = str(progress["backup_id"])
    if not module.check_mode:
        _write_holder(path, record)
    module.exit_json(changed=True, held=True, holder={})


def stopped_in(holder: dict, order: list) -> str | None:
    """Where an interrupted run stopped: for a release, the first of its phases (from where it started) not ok."""
    phases = holder.get("phases") or {}
    if holder.get("kind") == "release" and order:
        start = holder.get("from") if holder.get("from") in order else order[0]
        return next((name for name in order[order.index(start) :] if phases.get(name) != "ok"), None)
    return next((name for name, status in phases.items() if status != "ok"), None)


def interrupted_entry(holder: dict, order: list, who: str) -> dict:
    """The ledger line of a run whose lock is released by force: what its lock recorded, status interrupted."""
    return {
        "kind": holder.get("kind") or "release",
        "run_id": str(holder.get("run_id") or ""),
        "env": holder.get("env") or "",
        "ref": holder.get("ref") if holder.get("kind") in ("release", "deploy", None) else None,
        "who": holder.get("who") or "",
        "started_at": holder.get("since") or "",
        "finished_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "status": "interrupted",
        "interrupted_by": f"its lock released by force by {who or 'someone'} (no process of its run was alive)",
        "failed_phase": stopped_in(holder, order),
        "phases": dict(holder.get("phases") or {}),
        "backup_id": holder.get("backup_id") or None,
        "resumed_from": holder.get("resumed_from") or None,
    }


def _record_interrupted(module: AnsibleModule, current: dict | None) -> dict:
    """The holder's run, when the ledger has no line of it yet (it was killed outright), appended as interrupted."""
    p = module.params
    if not (p["record_interrupted"] and p["force"] and p["ledger_path"]) or not current or not current.get("run_id"):
        return {}
    if any(entry.run_id == current["run_id"] for entry in read_entries(p["ledger_path"])):
        return {}
    entry = interrupted_entry(current, p["order"], p["who"])
    if not module.check_mode:
        append_entry(p["ledger_path"], entry)
    return entry


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "state": {
                "type": "str",
                "choices": ["acquired", "released", "status", "frozen", "thawed", "progress"],
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
            "progress": {"type": "dict", "default": {}},
            "record_interrupted": {"type": "bool", "default": False},
            "order": {"type": "list", "elements": "str", "default": []},
            "who": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    p = module.params
    path = Path(p["path"])
    if p["state"] == "frozen":
        _freeze(module, path)
    if p["state"] == "thawed":
        _thaw(module, path)
    current = _read(path, p["stale_after"])
    if p["state"] == "progress":
        _progress(module, path, current)
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
        # A freeze stops whatever puts new code or schema out: a release, and a deploy on its own.
        if freeze and not freeze.get("expired") and (p["holder"] or {}).get("kind", "release") in FROZEN_KINDS:
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
        _write_holder(path, record)
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
    if p["ledger_path"] and p["ledger_entry"] and not module.check_mode:
        append_entry(p["ledger_path"], p["ledger_entry"])
    if current is None:
        module.exit_json(changed=False, held=False, holder={}, freeze=freeze, recorded={})
    if not p["force"] and current.get("run_id") != run_id:
        module.fail_json(
            msg=f"the release lock belongs to {describe(current)}, not to this run; "
            "release it with force only after checking that run is gone",
            held=True,
            holder=current,
        )
    # A lock released by force: its run, killed outright, wrote no ledger line; the line its lock allows goes first.
    recorded = _record_interrupted(module, current)
    if not module.check_mode:
        shutil.rmtree(path)
    module.exit_json(changed=True, held=False, holder=current, freeze=freeze, recorded=recorded)


if __name__ == "__main__":
    main()
