"""`python -m bench.mitogen_trial`: the small sandbox's release under stock `linear` and `mitogen_linear`, alternating.

Needs mitogen in the venv (`.venv/bin/pip install --no-deps mitogen==0.3.54`; not a project dependency) and the
small sandbox the benchmark builds (`<sandbox-dir>-small`). Switching is per run, by environment only:
ANSIBLE_STRATEGY_PLUGINS + ANSIBLE_STRATEGY; without them (the off switch) nothing changes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

from bench.sandbox import PRISTINE, Sandbox, log


def strategy_dir() -> Path:
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("mitogen is not installed in this venv: .venv/bin/pip install --no-deps mitogen==0.3.54")
    return Path(next(iter(spec.submodule_search_locations))) / "plugins" / "strategy"


def release(small: Sandbox, owner: str, extra: dict[str, str]) -> tuple[float, str, dict[str, float]]:
    small.restore(PRISTINE, owner)
    small.reset_host()
    saved = {key: os.environ.get(key) for key in extra}
    os.environ.update(extra)
    try:
        started = time.perf_counter()
        done = small.wfops(
            "release", "--env", "local", "--ref", f"mitogen-trial-{time.time_ns()}", "--from", "backup", "--json"
        )
        wall = time.perf_counter() - started
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    summary = json.loads(done.stdout)
    phases = {p["name"]: float(p["duration_s"]) for p in summary["phases"] if p["status"] != "skipped"}
    return wall, str(summary["status"]), phases


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mitogen_trial", description=__doc__)
    parser.add_argument("--small-sandbox-dir", type=Path, default=Path("/tmp/wfops-bench-small"))  # noqa: S108
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    small = Sandbox(args.small_sandbox_dir)
    owner = small.owner()
    variants = {
        "linear": {},
        "mitogen_linear": {"ANSIBLE_STRATEGY_PLUGINS": str(strategy_dir()), "ANSIBLE_STRATEGY": "mitogen_linear"},
    }
    print("| run | strategy | wall s | status | phases s | load 1m |")
    print("| --- | --- | --- | --- | --- | --- |")
    for run in range(1, args.runs + 1):
        order = list(variants) if run % 2 else list(reversed(variants))
        for name in order:
            log(f"run {run}: release under {name} ...")
            wall, status, phases = release(small, owner, variants[name])
            shown = ", ".join(f"{k} {v:.1f}" for k, v in phases.items())
            print(f"| {run} | {name} | {wall:.1f} | {status} | {shown} | {os.getloadavg()[0]:.1f} |", flush=True)
    small.restore(PRISTINE, owner)
    small.reset_host()
    return 0


if __name__ == "__main__":
    sys.exit(main())
