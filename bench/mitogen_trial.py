"""`python -m bench.mitogen_trial`: the small sandbox's release under stock `linear` and `mitogen_linear`, alternating.

Needs mitogen in the venv (`.venv/bin/pip install --no-deps mitogen==0.3.54`; not a project dependency) and a small
sandbox (`--small-sandbox-dir`, as the benchmark builds it). Switching is per run, by environment only:
ANSIBLE_STRATEGY_PLUGINS + ANSIBLE_STRATEGY; without them (the off switch) nothing changes. `--ssh` runs the release
over the overhead-ssh scenario's host (deploy user, sudo become; needs root), `--check` as `wfops release --check`;
`--start` picks the database each run starts from.
Every run goes through `wfops`, i.e. ansible-runner. The results are in bench/MITOGEN.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.__main__ import prepare
from bench.sandbox import MIGRATED, PRISTINE, Sandbox, log
from bench.ssh_host import SshRelease, ssh_release


def strategy_dir() -> Path:
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("mitogen is not installed in this venv: .venv/bin/pip install --no-deps mitogen==0.3.54")
    return Path(next(iter(spec.submodule_search_locations))) / "plugins" / "strategy"


def _release_argv(check: bool) -> list[str]:
    ref = f"mitogen-trial-{time.time_ns()}"
    return ["release", "--env", "local", "--ref", ref, "--from", "backup", "--json", *(["--check"] if check else [])]


def fresh(small: Sandbox, host_dir: Path | None, base_env: dict[str, str], start: str) -> None:
    """The database and host tree as `start` says: the pristine copy, the migrated one, or pristine plus one real
    release under the stock strategy (so a check run finds nothing left to change)."""
    small.restore(MIGRATED if start == "migrated" else PRISTINE, small.owner())
    small.reset_host(host_dir)
    if start == "released":
        done = small.wfops(*_release_argv(check=False), extra_env=base_env)
        if json.loads(done.stdout)["status"] != "successful":
            raise RuntimeError(f"the release before the check failed: {done.stderr[-600:]}")


def release(small: Sandbox, env: dict[str, str], check: bool) -> tuple[float, str, str]:
    """One timed release: (wall s, status, phase seconds or the error)."""
    started = time.perf_counter()
    done = small.wfops(*_release_argv(check), extra_env=env)
    wall = time.perf_counter() - started
    try:
        summary = json.loads(done.stdout)
    except ValueError:
        return wall, f"exit {done.returncode}, no summary", " ".join(done.stderr.split())[-600:]
    if summary["status"] != "successful":
        failed = [_failure(p) for p in summary["phases"] if p["status"] == "failed"]
        return wall, str(summary["status"]), " ".join(f"{summary.get('error')} {failed}".split())[:600]
    ran = [p for p in summary["phases"] if p["status"] != "skipped"]
    return wall, "successful", ", ".join(f"{p['name']} {float(p['duration_s']):.1f}" for p in ran)


def _failure(phase: dict[str, Any]) -> str:
    """A failed phase's error, or its failing checks only (smoke reports every check)."""
    result = phase.get("result") or {}
    checks = [c for c in result.get("checks") or [] if c.get("status") != "pass"]
    return f"{phase['name']}: {checks or result.get('error') or result}"


def over_ssh(ssh: SshRelease, check: bool) -> str:
    """The SSH host's evidence (deploy logins, the backup's owner) after a real run; a check run writes no backup."""
    try:
        return "" if check else f"; {ssh.evidence()}"
    except RuntimeError as exc:
        return f"; {exc}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mitogen_trial", description=__doc__)
    parser.add_argument("--small-sandbox-dir", type=Path, default=Path("/tmp/wfops-bench-small"))  # noqa: S108
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--ssh", action="store_true", help="over the SSH host with become (root)")
    parser.add_argument("--check", action="store_true", help="wfops release --check")
    parser.add_argument(
        "--start",
        choices=["pristine", "migrated", "released"],
        default="pristine",
        help="the database before each run: at 0022, with the pending migrations applied, or after a real release",
    )
    args = parser.parse_args()
    small = Sandbox(args.small_sandbox_dir)
    if args.start == "migrated":
        with tempfile.TemporaryDirectory() as work:
            prepare(small, int(str(small.state["guests"])), Path(work), migrated=True)
    variants = {
        "linear": {},
        "mitogen_linear": {"ANSIBLE_STRATEGY_PLUGINS": str(strategy_dir()), "ANSIBLE_STRATEGY": "mitogen_linear"},
    }
    with contextlib.ExitStack() as cleanup:
        ssh = cleanup.enter_context(ssh_release(small)) if args.ssh else None
        base_env, host_dir = (ssh.env, ssh.host.host_dir) if ssh else ({}, None)
        print("| run | strategy | wall s | status | phases s (or the error) | load 1m |")
        print("| --- | --- | --- | --- | --- | --- |")
        for run in range(1, args.runs + 1):
            for name in list(variants) if run % 2 else list(reversed(variants)):
                log(f"run {run}: release under {name}{' over SSH' if ssh else ''}{' --check' if args.check else ''}")
                fresh(small, host_dir, base_env, args.start)
                wall, status, detail = release(small, {**base_env, **variants[name]}, args.check)
                detail += over_ssh(ssh, args.check) if ssh else ""
                print(f"| {run} | {name} | {wall:.1f} | {status} | {detail} | {os.getloadavg()[0]:.1f} |", flush=True)
        small.restore(PRISTINE, small.owner())
        small.reset_host(host_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
