"""The `wfops` command line: parses, calls, prints. Exit codes are listed in EXIT_CODES."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from wfops.orchestration import RunRequest, SecretInExtraVarsError, execute
from wfops.pgcluster import PostgresUnavailableError
from wfops.phases import (
    PHASES,
    RELEASE_ORDER,
    NotAReleasePhaseError,
    UnknownPhaseError,
    get_phase,
    release_phases,
)
from wfops.progress import ProgressPrinter
from wfops.project import ENVIRONMENTS, UnknownEnvironmentError, inventory_path
from wfops.results import RunSummary, render_table
from wfops.sandbox import service as sandbox

EXIT_OK = 0
EXIT_PHASE_FAILED = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3
EXIT_CODES = {
    EXIT_OK: "every phase ok or skipped",
    EXIT_PHASE_FAILED: "a phase failed (or a guard stopped the run); see the table or summary.json",
    EXIT_USAGE: "bad input: unknown phase, environment or option; nothing ran",
    EXIT_ENVIRONMENT: "this machine cannot do it (PostgreSQL missing, sandbox not up); nothing ran",
}


class UsageError(ValueError):
    """Bad input found before anything ran."""


def _parse_extravars(pairs: Sequence[str]) -> dict[str, Any]:
    """key=value pairs; a value that is JSON (true, 3, ["a"]) keeps its type, anything else is a string."""
    extravars: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"-e {pair!r}: expected key=value")
        try:
            extravars[key.strip()] = json.loads(value)
        except ValueError:
            extravars[key.strip()] = value
    return extravars


def _print_phases(as_json: bool) -> int:
    if as_json:
        rows = [{**asdict(p), "role": p.role, "in_release": p.name in RELEASE_ORDER} for p in PHASES]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(f"{'#':>2}  {'phase':<13} {'playbook':<28} description")
    for phase in PHASES:
        number = f"({phase.runbook_number})" if phase.auxiliary else str(phase.runbook_number)
        print(f"{number:>3} {phase.name:<13} {phase.playbook:<28} {phase.description}")
    print(f"\nA release runs: {' -> '.join(RELEASE_ORDER)}; (n) = an auxiliary phase using runbook phase n's parts")
    return EXIT_OK


def _finish(summary: RunSummary, as_json: bool) -> int:
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(render_table(summary))
        print(f"details: runs/{summary.run_id}/summary.json, runs/{summary.run_id}/junit.xml")
    return EXIT_OK if summary.status == "successful" else EXIT_PHASE_FAILED


def _run(args: argparse.Namespace) -> int:
    inventory_path(args.env)
    request = RunRequest(
        env=args.env,
        command="run " + " ".join(args.phases),
        phases=[get_phase(name) for name in args.phases],
        extravars=_parse_extravars(args.extra_vars),
        check_mode=args.check,
    )
    return _finish(execute(request, ProgressPrinter()), args.json)


def _release(args: argparse.Namespace) -> int:
    inventory_path(args.env)
    phases = list(release_phases(args.from_phase))
    skipped = [get_phase(name) for name in RELEASE_ORDER[: RELEASE_ORDER.index(phases[0].name)]]
    request = RunRequest(
        env=args.env,
        command="release",
        phases=phases,
        extravars=_parse_extravars(args.extra_vars),
        check_mode=args.check,
        release_ref=args.ref,
        resumed_past=skipped,
    )
    return _finish(execute(request, ProgressPrinter()), args.json)


def _sandbox(args: argparse.Namespace) -> int:
    def log(message: str) -> None:
        print(message, file=sys.stderr)

    if args.sandbox_command == "up":
        current = sandbox.up(args.guests, log=log)
    elif args.sandbox_command == "down":
        sandbox.down(log=log)
        return EXIT_OK
    else:
        current = sandbox.status()
    if getattr(args, "json", False):
        print(json.dumps(asdict(current), indent=2))
    else:
        print(sandbox.render_status(current))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="wfops",
        description="WeddingFlo release and disaster-recovery automation.",
        epilog=f"exit codes:\n{codes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    phases = commands.add_parser("phases", help="list the runbook's phases")
    phases.add_argument("--json", action="store_true", help="print JSON")
    phases.set_defaults(handler=lambda args: _print_phases(args.json))

    def run_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--env", required=True, choices=ENVIRONMENTS, help="the environment's inventory")
        sub.add_argument(
            "-e",
            "--extra-var",
            dest="extra_vars",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="an extra variable (no secrets: they would be stored)",
        )
        sub.add_argument("--check", action="store_true", help="dry run: report what would change")
        sub.add_argument("--json", action="store_true", help="print summary.json on stdout (progress stays on stderr)")

    run = commands.add_parser("run", help="run one or more phases, in the order given")
    run.add_argument("phases", nargs="+", metavar="PHASE", help="phase names (see `wfops phases`)")
    run_options(run)
    run.set_defaults(handler=_run)

    release = commands.add_parser("release", help="run a release: " + " -> ".join(RELEASE_ORDER))
    release.add_argument("--ref", required=True, help="the WeddingFlo git ref being released")
    release.add_argument(
        "--from",
        dest="from_phase",
        default=RELEASE_ORDER[0],
        metavar="PHASE",
        help="resume a failed release at this phase (earlier phases are not re-run)",
    )
    run_options(release)
    release.set_defaults(handler=_release)

    box = commands.add_parser("sandbox", help="the local sandbox database")
    box_commands = box.add_subparsers(dest="sandbox_command", required=True)
    box_up = box_commands.add_parser("up", help="create and seed the sandbox at migration 0022")
    box_up.add_argument("--guests", type=int, default=sandbox.DEFAULT_GUESTS, help="guests to seed")
    box_up.add_argument("--json", action="store_true", help="print the status as JSON")
    box_commands.add_parser("down", help="stop the sandbox and delete its data")
    box_status = box_commands.add_parser("status", help="URL, migration head, legacy row counts")
    box_status.add_argument("--json", action="store_true", help="print JSON")
    box.set_defaults(handler=_sandbox)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (
        UsageError,
        UnknownPhaseError,
        NotAReleasePhaseError,
        UnknownEnvironmentError,
        SecretInExtraVarsError,
    ) as exc:
        print(f"wfops: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (PostgresUnavailableError, sandbox.SandboxError) as exc:
        print(f"wfops: {exc}", file=sys.stderr)
        return EXIT_ENVIRONMENT


if __name__ == "__main__":
    sys.exit(main())
