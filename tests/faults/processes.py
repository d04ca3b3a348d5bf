"""The processes of a wfops run on this machine: everything it starts carries its id (WFOPS_RUN_ID)."""

from __future__ import annotations

import time
from pathlib import Path

RUN_ID_VARIABLE = b"WFOPS_RUN_ID="


def run_id_of(stderr_lines: list[str]) -> str:
    """The run id from wfops's first progress line ("wfops <what> · run <id> · env <env>")."""
    return stderr_lines[0].split(" · run ")[1].split(" ")[0]


def processes_of(run_id: str) -> list[str]:
    """The live processes of this machine carrying the run's id: 'pid command'."""
    wanted = RUN_ID_VARIABLE + run_id.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if wanted not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] != "Z":
            found.append(f"{entry.name} {stat[stat.index('(') + 1 : stat.rindex(')')]}")
    return found


def wait_until_ended(run_id: str, within_s: float = 30) -> float:
    """Seconds until no process of the run was left; AssertionError after `within_s`."""
    started = time.monotonic()
    while processes_of(run_id):
        assert time.monotonic() - started < within_s, processes_of(run_id)
        time.sleep(0.1)
    return time.monotonic() - started
