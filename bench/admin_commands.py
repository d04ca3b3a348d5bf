"""`python -m bench.admin_commands`: the wall time of `wfops history`, `wfops backups` and `wfops lock status` on the
sandbox (issue 17 asks for at most 1.5 s each), as an SRE runs them: the whole command, Python start included.

Never part of `make test` (a test judges no timing). It brings up its own small sandbox, gives it something to
show (a backup, ledger lines), then runs each command --runs times and writes bench/ADMIN.md with the
median, min and max and the machine's load while it ran.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WFOPS = Path(sys.executable).parent / "wfops"
COMMANDS = {
    "history": ["history", "--env", "local"],
    "backups": ["backups", "--env", "local"],
    "lock status": ["lock", "status", "--env", "local"],
}
TARGET_S = 1.5


def _wfops(env: dict[str, str], *args: str) -> float:
    started = time.monotonic()
    completed = subprocess.run([str(WFOPS), *args], env=env, cwd=REPO, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if completed.returncode != 0:
        raise SystemExit(f"wfops {' '.join(args)} failed: {completed.stderr.strip()[-500:]}")
    return elapsed


def prepare(env: dict[str, str], guests: int) -> None:
    """A sandbox with one backup (the tool installed) and a few ledger lines to show."""
    subprocess.run([str(WFOPS), "sandbox", "up", "--guests", str(guests)], env=env, check=True, capture_output=True)
    _wfops(env, "run", "backup", "--env", "local")
    for _ in range(3):
        _wfops(env, "freeze", "--env", "local", "--reason", "bench")
        _wfops(env, "unfreeze", "--env", "local")


def measure(env: dict[str, str], runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):
        for name, args in COMMANDS.items():  # interleaved: a load spike hits every command alike
            times[name].append(_wfops(env, *args))
    return times


def render(times: dict[str, list[float]], load: tuple[float, float], guests: int) -> str:
    lines = [
        "# wfops's read-only commands on the sandbox (bench/admin_commands.py)",
        "",
        f"{len(next(iter(times.values())))} runs each, interleaved, sandbox of {guests} guests; load average "
        f"{load[0]:.2f} before, {load[1]:.2f} after (2 cores, shared).",
        "",
        "| command | median | min | max | target | verdict |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, samples in times.items():
        median = statistics.median(samples)
        verdict = "PASS" if median <= TARGET_S else f"MISS by {median - TARGET_S:.2f} s"
        lines.append(
            f"| wfops {name} | {median:.2f} s | {min(samples):.2f} s | {max(samples):.2f} s | "
            f"≤ {TARGET_S} s | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.admin_commands", description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--guests", type=int, default=1000)
    parser.add_argument("--sandbox-dir", type=Path, default=Path("/tmp/wfops-bench-admin"))  # noqa: S108
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "ADMIN.md")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox up afterwards")
    args = parser.parse_args(argv)
    env = {**os.environ, "WFOPS_SANDBOX_DIR": str(args.sandbox_dir)}
    try:
        prepare(env, args.guests)
        before = os.getloadavg()[0]
        times = measure(env, args.runs)
        report = render(times, (before, os.getloadavg()[0]), args.guests)
    finally:
        if not args.keep:
            subprocess.run([str(WFOPS), "sandbox", "down"], env=env, check=False, capture_output=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
