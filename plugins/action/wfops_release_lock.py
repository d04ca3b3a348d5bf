"""Action plugin of wfops_release_lock: the one place that decides whether a held lock's run still works.

A run is alive while any of its processes is: on the host (the module reports those carrying the run's
WFOPS_RUN_ID there) or on the controller that started it (checked here, on this controller: its wfops process,
and every process carrying the run id). The plugin records which controller takes the lock, words the refusal
(held and working, or stale: none of its processes is alive), and refuses `state=released force=true` while the
holder's run is alive.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from ansible.plugins.action import ActionBase

MODULE = "wfops_release_lock"
FORCE_HINT = "wfops lock release --env ENV --force"


def _processes() -> ModuleType:
    """The module_utils that finds a run's processes (the module uses it on the host, this plugin here)."""
    path = Path(__file__).resolve().parents[1] / "module_utils" / "wfops_processes.py"
    spec = importlib.util.spec_from_file_location("wfops_processes_controller", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def judge(holder: dict[str, Any], processes: ModuleType) -> tuple[bool | None, str]:
    """(alive, why): True while a process of the holder's run is alive, False when none is, None when this
    controller cannot see all of them (the run came from another machine and nothing of it runs on the host)."""
    on_host = holder.get("processes") or []
    if on_host:
        shown = ", ".join(f"{p['command']} {p['pid']}" for p in on_host[:5])
        return True, f"its run is still working: {len(on_host)} process(es) alive on the host ({shown})"
    here = processes.this_machine()
    same_controller = holder.get("controller") == here["host"] and holder.get("controller_boot_id", "") in (
        "",
        here["boot_id"],
    )
    if not same_controller:
        origin = holder.get("controller") or "an unknown controller"
        age = f"; it is {int(float(holder.get('age_s') or 0) // 60)} minutes old" if holder.get("stale") else ""
        return None, (
            f"none of its processes runs on the host; it was taken from {origin}, whose processes cannot be seen "
            f"from here{age}"
        )
    pid = str(holder.get("controller_pid") or "")
    started = holder.get("controller_pid_started")
    if pid.isdigit() and processes.alive(int(pid), int(started) if started else None):
        return True, f"its run is still working: its process {pid} on {here['host']} is alive"
    local = processes.run_processes(str(holder.get("run_id") or "")) if holder.get("run_id") else []
    if local:
        return True, f"its run is still working: {len(local)} process(es) alive on {here['host']}"
    return False, f"no process of its run is alive; its process {pid or '?'} on {here['host']} is gone"


class ActionModule(ActionBase):
    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        super().run(tmp, task_vars)
        processes = _processes()
        args = dict(self._task.args)
        state = args.get("state", "status")
        if state == "progress":  # the holding run noting a finished phase: nothing to judge
            return self._lock_module(args, task_vars)
        if state == "acquired":
            args["holder"] = {**(args.get("holder") or {}), **self._controller(processes)}
        if state == "released" and args.get("force"):
            status = self._lock_module({"path": args["path"], "state": "status"}, task_vars)
            if status.get("failed") or not status.get("held"):
                return status if status.get("failed") else self._lock_module(args, task_vars)
            alive, why = judge(status["holder"], processes)
            if alive:
                return {
                    **status,
                    "failed": True,
                    "changed": False,
                    "msg": f"not releasing the lock of {status.get('description')}: {why}; wait for it to end",
                }
        result = self._lock_module(args, task_vars)
        holder = result.get("holder") or {}
        if not result.get("held") or not holder:
            return result
        alive, why = judge(holder, processes)
        holder["alive"], holder["liveness"] = alive, why
        holder["stale"] = alive is False or (alive is None and bool(holder.get("stale")))
        theirs = holder.get("run_id") != (args.get("holder") or {}).get("run_id")
        if result.get("failed") and state == "acquired" and theirs and result.get("description"):
            result["msg"] = self._refusal(result["description"], alive, why)
        if state == "status" and result.get("description"):
            # What a run this lock keeps out is told (busy.yml refuses a rollback with it before it plans).
            result["refusal"] = self._refusal(result["description"], alive, why)
        return result

    def _lock_module(self, args: dict[str, Any], task_vars: dict[str, Any] | None) -> dict[str, Any]:
        return self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)

    @staticmethod
    def _controller(processes: ModuleType) -> dict[str, Any]:
        """Which process on which machine holds the lock: the wfops wrapper, or this ansible-playbook."""
        here = processes.this_machine()
        owner = os.environ.get("WFOPS_CONTROLLER_PID", "")
        pid = int(owner) if owner.isdigit() else os.getppid()  # a worker's parent is ansible-playbook itself
        return {
            "controller": here["host"],
            "controller_boot_id": here["boot_id"],
            "controller_pid": pid,
            "controller_pid_started": processes.started_at(pid),
        }

    @staticmethod
    def _refusal(description: str, alive: bool | None, why: str) -> str:
        if alive is False:
            return (
                f"the release lock is stale: it is held by {description}, but {why}; it is not taken over silently: "
                f"check, then {FORCE_HINT}"
            )
        if alive:
            return f"the release lock is held by {description}: {why}; wait for it to end"
        return (
            f"the release lock is held by {description}: {why}; wait for it, or check (wfops lock status --env ENV; "
            f"if that run is gone, {FORCE_HINT})"
        )
