"""`python -m bench`: the sandbox at N guests (or at each of several sizes: the cost curve), each scenario several times
with a concurrent writer, RESULTS.md (and with several sizes, the curve's table and plot)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from bench import baseline, curve, report, scenarios
from bench.sandbox import MIGRATED, PRISTINE, REPO, Sandbox, applied_migrations, log
from bench.ssh_host import ssh_release


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--guests", type=int, default=1_000_000, help="guests seeded in the sandbox (1000000)")
    parser.add_argument(
        "--sizes",
        default=None,
        help="comma-separated guest counts: the cost curve, one sandbox per size (<sandbox-dir>-<N>), brought down "
        "after its size unless --keep-sandboxes (e.g. 250000,1000000,3000000,10000000)",
    )
    parser.add_argument("--keep-sandboxes", action="store_true", help="leave each size's sandbox up for a rerun")
    parser.add_argument("--runs", type=int, default=3, help="repetitions of every scenario (3)")
    parser.add_argument(
        "--scenarios",
        default=",".join(scenarios.SCENARIOS),
        help=f"comma-separated subset of {','.join(scenarios.SCENARIOS)}",
    )
    default_dir = Path("/tmp/wfops-bench")  # noqa: S108 - the sandbox makes it 0700
    parser.add_argument("--sandbox-dir", type=Path, default=default_dir, help="the big sandbox's dir")
    parser.add_argument("--small-guests", type=int, default=5000, help="guests of the overhead scenario's sandbox")
    parser.add_argument(
        "--small-sandbox-dir", type=Path, default=None, help="default: <sandbox-dir>-small; the only one for overhead*"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md", help="the report to write")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="re-render --out from its RESULTS.json (e.g. after editing ANALYSIS.md)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.scenarios.split(",")) - set(scenarios.SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {','.join(scenarios.SCENARIOS)}")
    args.small_sandbox_dir = args.small_sandbox_dir or Path(f"{args.sandbox_dir}-small")
    try:
        args.sizes = [int(size) for size in args.sizes.split(",")] if args.sizes else [args.guests]
    except ValueError:
        parser.error(f"--sizes takes guest counts separated by commas, not {args.sizes!r}")
    if set(args.scenarios.split(",")) <= scenarios.SMALL_SCENARIOS:
        # Nothing asked needs the big sandbox: the small one is the only one brought up.
        args.sandbox_dir, args.guests, args.sizes = args.small_sandbox_dir, args.small_guests, [args.small_guests]
    return args


def sandbox_dir(args: argparse.Namespace, guests: int) -> Path:
    """The big sandbox of this size: --sandbox-dir itself for one size, <sandbox-dir>-<N> on a curve."""
    return args.sandbox_dir if len(args.sizes) == 1 else Path(f"{args.sandbox_dir}-{guests}")


def prepare(sandbox: Sandbox, guests: int, work: Path, *, migrated: bool) -> str:
    """Sandbox up, the pristine template (at 0022), and optionally the migrated one (at 0027, not normalised)."""
    sandbox.up(guests)
    owner = sandbox.owner()
    if not sandbox.has_database(PRISTINE):
        if applied_migrations(sandbox.ops_url) != 23:
            raise SystemExit(f"{sandbox.directory}: weddingflo is no longer at 0022; `wfops sandbox down` it first")
        log(f"template {PRISTINE} from weddingflo")
        sandbox.snapshot(PRISTINE)
    sandbox.restore(PRISTINE, owner)
    if migrated and not sandbox.has_database(MIGRATED):
        script = work / "migrations-for-template.sql"
        baseline.migrations_script(sandbox, script)
        timed = baseline.Timed()
        baseline.migrate(timed, sandbox, script)
        log(f"template {MIGRATED}: pristine + the pending migrations ({timed.total_s}s)")
        sandbox.snapshot(MIGRATED)
        sandbox.restore(PRISTINE, owner)
    return owner


def rerender(out: Path) -> int:
    """RESULTS.md again from the raw numbers beside it; nothing is measured."""
    data = json.loads(out.with_suffix(".json").read_text())
    measures = [scenarios.Measure(**m) for m in data["measures"]]
    out.write_text(report.render(data["machine"], data["settings"], measures))
    if len(data["settings"].get("sizes") or []) > 1:
        curve.plot(measures, out.parent / curve.PLOT)
    log(f"{out} re-rendered from {out.with_suffix('.json')}")
    return 0


def _context(
    args: argparse.Namespace, guests: int, wanted: set[str], work: Path, machine: dict[str, object]
) -> scenarios.Context:
    """The big sandbox and, for scenario 5, the small one (the same one when only scenario 5 is asked)."""
    sandbox = Sandbox(sandbox_dir(args, guests))
    owner = prepare(sandbox, guests, work, migrated="normalize" in wanted)
    machine["postgres"] = sandbox.server_version()
    machine["database_bytes"] = sandbox.size()
    machine.setdefault("database_bytes_by_size", {})[str(guests)] = machine["database_bytes"]  # type: ignore[index]
    migrations_sql = work / "migrations.sql"
    machine["pending_migrations"] = baseline.migrations_script(sandbox, migrations_sql)
    ctx = scenarios.Context(sandbox, work, sandbox.guest_ids(2000), migrations_sql, owner)
    if wanted & scenarios.SMALL_SCENARIOS:
        small = Sandbox(args.small_sandbox_dir)
        if small.directory != sandbox.directory:
            prepare(small, args.small_guests, work, migrated=False)
        ctx.small, ctx.small_ids = small, small.guest_ids(2000)
    return ctx


def _run_once(ctx: scenarios.Context, run: int, wanted: set[str]) -> list[scenarios.Measure]:
    measures: list[scenarios.Measure] = []
    if wanted & {"release", "rollback"}:
        measures += scenarios.release_and_rollback(ctx, run, wanted)
    if "normalize" in wanted:
        measures += scenarios.normalize(ctx, run)
    if "backup" in wanted:
        measures += scenarios.backup(ctx, run)
    if "migrate" in wanted:
        measures += scenarios.migrate(ctx, run)
    # Local and SSH take turns going first, so a load trend does not always favour the same one.
    small = [(scenarios.overhead, "overhead"), (scenarios.overhead_ssh, "overhead-ssh")]
    for scenario, name in small if run % 2 else reversed(small):
        if name in wanted:
            measures += scenario(ctx, run)
    return measures


def _write(
    out: Path, machine: dict[str, object], settings: dict[str, object], measures: list[scenarios.Measure]
) -> None:
    out.with_suffix(".json").write_text(
        json.dumps({"machine": machine, "settings": settings, "measures": [asdict(m) for m in measures]}, indent=1)
    )
    out.write_text(report.render(machine, settings, measures))
    if len({m.guests for m in measures}) > 1:
        curve.plot(measures, out.parent / curve.PLOT)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report_only:
        return rerender(args.out)
    wanted = set(args.scenarios.split(","))
    os.environ["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="wfops-bench-work-"))
    started = time.time()
    machine: dict[str, object] = {
        "nproc": os.cpu_count(),
        "load_at_start": [round(v, 2) for v in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    # A `kill` ends the benchmark through its clean-ups too (the SSH scenario's users, sudoers rule and sshd).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    measures: list[scenarios.Measure] = []
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, work, ignore_errors=True)  # the bare dumps: hundreds of MB at 1M guests
        for number, guests in enumerate(args.sizes):
            # The small sandbox's scenarios (the fixed overhead) do not depend on the size: measured once.
            asked = wanted if number == 0 else wanted - scenarios.SMALL_SCENARIOS
            ctx = _context(args, guests, asked, work, machine)
            if "overhead-ssh" in asked and ctx.small:
                ctx.ssh = cleanup.enter_context(ssh_release(ctx.small))
            for run in range(1, args.runs + 1):
                for measure in _run_once(ctx, run, asked):
                    measure.guests = guests
                    measures.append(measure)
                machine["load_at_end"] = [round(v, 2) for v in os.getloadavg()]
                machine["elapsed_s"] = round(time.time() - started)
                settings = {
                    "guests": guests,
                    "sizes": args.sizes[: number + 1],
                    "sizes_asked": args.sizes,
                    "runs": run,
                    "runs_asked": args.runs,
                    "small_guests": args.small_guests,
                }
                _write(args.out, machine, settings, measures)
                log(f"{guests} guests: run {run} of {args.runs} done ({machine['elapsed_s']}s so far)")
            ctx.sandbox.restore(PRISTINE, ctx.owner)
            if len(args.sizes) > 1 and not args.keep_sandboxes:
                log(f"sandbox {ctx.sandbox.directory} down (disk: --keep-sandboxes keeps it)")
                ctx.sandbox.wfops("sandbox", "down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
