"""The processes of a run, found by the run id they carry in their environment (WFOPS_RUN_ID).

wfops hands WFOPS_RUN_ID to ansible-playbook and every play sets it for its tasks, so everything a run starts, on
the controller and on the host, carries it. The release lock calls a lock stale only when none of them is alive.
Pure Python, no Ansible import: the lock module uses it on the host, its action plugin on the controller.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

RUN_ID_VARIABLE = "WFOPS_RUN_ID"
# The SSH connection's own processes (a ControlPersist master outlives the run by design) are not its work: the
# work they carry runs on the host and is found there.
NOT_WORK = {"ssh"}


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # (comm) may hold spaces; the fields after it are: state ppid ... starttime (field 22).
    return [stat[stat.index("(") + 1 : stat.rindex(")")], *stat[stat.rindex(")") + 2 :].split()]


def started_at(pid: int) -> int | None:
    """The process's start time (clock ticks after boot): with the pid, it names one process, never its reuse."""
    fields = _stat_fields(pid)
    return int(fields[20]) if fields and fields[1] != "Z" else None


def alive(pid: int, started: int | None = None) -> bool:
    """Whether the process runs (not a zombie) and, when `started` is given, is still the same process."""
    now = started_at(pid)
    return now is not None and (started is None or now == started)


def _ancestors(pid: int) -> set[int]:
    found = set()
    while pid > 1:
        found.add(pid)
        fields = _stat_fields(pid)
        if not fields:
            break
        pid = int(fields[2])
    return found


def run_processes(run_id: str) -> list[dict[str, object]]:
    """The live processes of this machine that carry WFOPS_RUN_ID=<run_id> (as far as this user may read),
    leaving out the caller and its ancestors."""
    wanted = f"{RUN_ID_VARIABLE}={run_id}".encode()
    mine = _ancestors(os.getpid())
    found: list[dict[str, object]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted not in environ:
            continue
        fields = _stat_fields(int(entry.name))
        if not fields or fields[1] == "Z" or fields[0] in NOT_WORK:
            continue
        found.append({"pid": int(entry.name), "command": fields[0]})
    return sorted(found, key=lambda process: int(str(process["pid"])))


def this_machine() -> dict[str, str]:
    """What names this machine for a process record: its host name and its boot (pids restart at each boot)."""
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot_id = ""
    return {"host": socket.gethostname(), "boot_id": boot_id}
