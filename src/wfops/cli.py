"""The `wfops` command line: parses, calls, prints. Exit codes: wfops.exits.EXIT_CODES."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from wfops.exits import Exit, for_summary, render_help
from wfops.ledger import Entry, Serving, entries_from
from wfops.orchestration import (
    AdminError,
    RunRequest,
    SecretInExtraVarsError,
    attach,
    execute,
    new_run_id,
    run_admin,
    use_vault,
)
from wfops.pgcluster import PostgresUnavailableError
from wfops.phases import (
    DOCTOR,
    PHASES,
    RELEASE_ORDER,
    RELEASE_PLAYBOOK,
    NotAReleasePhaseError,
    UnknownPhaseError,
    get_phase,
    release_phases,
)
from wfops.preconditions import UnknownBackupError
from wfops.progress import ProgressPrinter
from wfops.project import UnknownEnvironmentError, environments, inventory_path, runs_dir
from wfops.promotion import STAGED_BEFORE, staging_extravars
from wfops.results import RunSummary, render_backups, render_history, render_table
from wfops.sandbox import service as sandbox
from wfops.streaming import WorkerTarget, WorkerUnreachableError
from wfops.vault import Vault, VaultError


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
        return Exit.OK
    print(f"{'#':>2}  {'phase':<13} {'playbook':<28} description")
    for phase in PHASES:
        number = f"({phase.runbook_number})" if phase.auxiliary else str(phase.runbook_number)
        print(f"{number:>3} {phase.name:<13} {phase.playbook:<28} {phase.description}")
    print(f"\nA release runs: {' -> '.join(RELEASE_ORDER)}; (n) = an auxiliary phase using runbook phase n's parts")
    return Exit.OK


def _finish(summary: RunSummary, as_json: bool) -> int:
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(render_table(summary))
        print(f"details: runs/{summary.run_id}/summary.json, runs/{summary.run_id}/junit.xml")
    return for_summary(summary)


def _worker(args: argparse.Namespace) -> WorkerTarget | None:
    try:
        return WorkerTarget.parse(args.worker) if args.worker else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _run(args: argparse.Namespace) -> int:
    inventory_path(args.env)
    request = RunRequest(
        env=args.env,
        command="run " + " ".join(args.phases),
        phases=[get_phase(name) for name in args.phases],
        extravars=_parse_extravars(args.extra_vars),
        check_mode=args.check,
        release_ref=args.ref,
        worker=_worker(args),
    )
    return _finish(execute(request, ProgressPrinter()), args.json)


def _read_history(env: str) -> list[Entry]:
    return entries_from(run_admin(env, "history", ProgressPrinter(show_tasks=False)).get("history") or [])


def _release(args: argparse.Namespace) -> int:
    inventory_path(args.env)
    phases = list(release_phases(args.from_phase))
    skipped = [get_phase(name) for name in RELEASE_ORDER[: RELEASE_ORDER.index(phases[0].name)]]
    extravars = {**_parse_extravars(args.extra_vars), "wfops_release_from": phases[0].name}
    if args.allow_unstaged is not None:
        if not args.allow_unstaged.strip():
            raise UsageError("--allow-unstaged needs a reason; it is recorded in the ledger")
        extravars["release_allow_unstaged_reason"] = args.allow_unstaged.strip()
    if args.env in STAGED_BEFORE and args.allow_unstaged is None:
        print(f"wfops: looking for a successful {STAGED_BEFORE[args.env]} release of {args.ref}", file=sys.stderr)
        extravars.update(staging_extravars(args.env, args.ref, _read_history))
    request = RunRequest(
        env=args.env,
        command="release",
        phases=phases,
        extravars=extravars,
        check_mode=args.check,
        release_ref=args.ref,
        resumed_past=skipped,
        playbook=RELEASE_PLAYBOOK,
        worker=_worker(args),
    )
    return _finish(execute(request, ProgressPrinter()), args.json)


def _check_confirmation(args: argparse.Namespace) -> None:
    """What can be said wrong about --confirm without asking the host: nothing runs when it is."""
    if not args.database:
        raise UsageError("--confirm confirms a database restore: add --database (or leave --confirm out)")
    if args.confirm == "latest":
        raise UsageError(
            "--confirm takes the backup's id, not latest: the rollback resolves latest to one backup (the newest "
            "verified one that is not a safety backup); see it with wfops backups, or leave --confirm out on a terminal"
        )
    if args.backup and args.backup != "latest" and args.confirm != args.backup:
        raise UsageError(f"--confirm {args.confirm} is not the backup to restore ({args.backup}): nothing was run")


def _rollback(args: argparse.Namespace) -> int:
    inventory_path(args.env)
    extravars: dict[str, Any] = {**_parse_extravars(args.extra_vars), "rollback_database": args.database}
    if args.to:
        extravars["rollback_to_ref"] = args.to
    if args.backup:
        extravars["rollback_backup_id"] = args.backup
    if args.confirm is not None:
        _check_confirmation(args)
    phases = [get_phase("rollback"), get_phase("smoke")]
    if args.database and args.confirm is None and not args.check:
        if not sys.stdin.isatty():
            raise UsageError(
                "--database restores an older database and loses newer rows: pass --confirm <backup-id> "
                "(there is no terminal to ask on)"
            )
        # A dry run of the rollback alone (no smoke checks: they would sign in) shows what the answer commits to.
        planning = {**extravars, "rollback_smoke": False}
        plan = execute(
            RunRequest(args.env, "rollback (plan)", phases[:1], planning, True, playbook="playbooks/rollback.yml"),
            ProgressPrinter(),
        )
        report = plan.phases[0].result if plan.phases else {}
        backup = (report.get("database") or {}).get("backup")
        if plan.status != "successful" or not backup:
            return _finish(plan, args.json)
        print(_describe_plan(report), file=sys.stderr)
        answer = input(f"Type the backup id ({backup}) to restore it, anything else to stop: ").strip()
        if answer != backup:
            print("wfops: stopped; nothing was restored", file=sys.stderr)
            return Exit.FAILED
        # The id the plan resolved (latest, or the ledger's) is the one restored, whatever `latest` means by now.
        extravars["rollback_backup_id"] = backup
        args.confirm = answer
    if args.confirm:
        extravars["rollback_confirm"] = args.confirm
    request = RunRequest(
        args.env, "rollback", phases, extravars, args.check, playbook="playbooks/rollback.yml", worker=_worker(args)
    )
    return _finish(execute(request, ProgressPrinter()), args.json)


def _describe_plan(report: dict[str, Any]) -> str:
    """The dry run's plan as the person confirming it reads it: code, the backup by its id, what would be lost."""
    database = report.get("database") or {}
    lost = ", ".join(f"{t['table']} {t['rows']}" for t in database.get("lost_by_table") or []) or "none"
    taken = f"{database.get('backup_reason')} backup, taken {database.get('backup_taken_at')}"
    return "\n".join(
        [
            "",
            f"Plan: {report.get('summary', '')}",
            f"  backup: {database.get('backup')} ({taken}; asked for: {database.get('asked')})",
            f"  rows written since it was taken, which the restore loses: {database.get('rows_lost')} ({lost})",
            "  a safety backup of the current database is taken first",
            "",
        ]
    )


def _admin(args: argparse.Namespace) -> int:
    inventory_path(args.env)
    action = f"lock-{args.lock_command}" if args.command == "lock" else args.command
    if action == "lock-release" and not getattr(args, "force", False):
        raise UsageError("wfops lock release removes another run's lock: check `wfops lock status` first, then --force")
    extravars: dict[str, Any] = {}
    if action == "freeze":
        if not args.reason.strip():
            raise UsageError("wfops freeze needs a --reason; it is shown to everyone whose release is refused")
        extravars = {"release_freeze_reason": args.reason.strip(), "release_freeze_until": args.until}
    report = run_admin(args.env, action, ProgressPrinter(show_tasks=False), extravars)
    if args.json:
        print(json.dumps(report, indent=2))
        return Exit.OK
    if action in ("freeze", "unfreeze"):
        print(_describe_freeze(action, report))
        return Exit.OK
    if args.command == "lock":
        print(_describe_lock(action, report.get("lock") or {}))
    elif args.command == "history":
        print(render_history(entries_from(report.get("history") or []), Serving.from_dict(report.get("serving"))))
    else:
        print(render_backups(report.get("backups") or [], report.get("notes") or []))
    return Exit.OK


def _describe_lock(action: str, lock: dict[str, Any]) -> str:
    """The lock as its module judged it (held, by whom, whether any process of that run is alive), and the freeze."""
    holder = lock.get("holder") or {}
    if action == "lock-release":
        text = f"released the lock of {holder.get('who', '?')} (run {holder.get('run_id', '?')})" if holder else ""
        recorded = lock.get("recorded") or {}
        if recorded:
            done = [name for name, status in (recorded.get("phases") or {}).items() if status == "ok"]
            what = f"{recorded.get('kind')} of {recorded.get('ref') or '-'}"
            stopped = f", stopped in {recorded['failed_phase']}" if recorded.get("failed_phase") else ""
            text += (
                f"\nrecorded run {recorded.get('run_id')} ({what}) in the ledger as interrupted: "
                f"phases ok {', '.join(done) or 'none'}{stopped}"
            )
        return text or "no lock was held"
    if not lock.get("held"):
        text = "not held"
    else:
        text = (
            f"held by {holder.get('who')} - {holder.get('kind')} of {holder.get('ref')}, "
            f"run {holder.get('run_id')}, since {holder.get('since')}"
        )
        if holder.get("liveness"):
            state = {True: "running", False: "stale"}.get(
                holder.get("alive"), "possibly stale" if holder.get("stale") else "unknown"
            )
            text += f" ({state}: {holder['liveness']})"
    freeze = lock.get("freeze") or {}
    if freeze:
        text += "\n" + _describe_freeze("status", {"freeze": freeze, "freeze_changed": False})
    return text


def _describe_freeze(action: str, report: dict[str, Any]) -> str:
    freeze = report.get("freeze") or {}
    if action == "unfreeze":
        return "releases unfrozen" if freeze else "releases were not frozen"
    if not freeze:
        return "releases are not frozen"
    until = f" until {freeze['until']}" if freeze.get("until") else " until wfops unfreeze"
    state = " (expired)" if freeze.get("expired") else ""
    verb = "frozen" if report.get("freeze_changed") or action == "status" else "already frozen"
    return f"releases {verb} by {freeze.get('who')} since {freeze.get('since')}{until}{state}: {freeze.get('reason')}"


def _duration(text: str) -> float:
    """24h, 15m, 30s or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise UsageError(f"{text!r} is not a duration (like 24h, 15m, 30s)") from None


def _monitor(args: argparse.Namespace) -> int:
    """Check the eight signals now, or every --every for --watch; stop at the first failing signal."""
    inventory_path(args.env)
    watch, every = _duration(args.watch), _duration(args.every)
    deadline = time.monotonic() + watch
    history = runs_dir() / f"monitor-{args.env}-{new_run_id()}.jsonl"
    history.parent.mkdir(parents=True, exist_ok=True)
    checks = 0
    while True:
        request = RunRequest(args.env, "monitor", [get_phase("monitor")], _parse_extravars(args.extra_vars))
        summary = execute(request, ProgressPrinter(show_tasks=False))
        checks += 1
        signals = summary.phases[0].result.get("signals") or [] if summary.phases else []
        with history.open("a") as handle:
            handle.write(
                json.dumps(
                    {
                        "at": summary.finished_at,
                        "run_id": summary.run_id,
                        "status": summary.status,
                        "signals": {s["name"]: s["status"] for s in signals},
                    }
                )
                + "\n"
            )
        if summary.status != "successful" or time.monotonic() + every > deadline:
            print(f"monitor: {checks} check(s), history in {history}", file=sys.stderr)
            return _finish(summary, args.json)
        time.sleep(every)


class _QuietPhases(ProgressPrinter):
    """The doctor borrows the backup role's dry run: no phase lines, which would read as a backup being taken."""

    def phase_started(self, phase: str, runbook_number: int) -> None:
        return None

    def phase_finished(self, phase: str, status: str) -> None:
        return None


def _doctor(args: argparse.Namespace) -> int:
    """Each finding as `ok|fail <check>: <sentence>`; exit 1 when one failed (or the run stopped before reporting)."""
    inventory_path(args.env)
    request = RunRequest(args.env, "doctor", [DOCTOR], _parse_extravars(args.extra_vars))
    summary = execute(request, _QuietPhases(show_tasks=False))
    if args.json:
        return _finish(summary, True)
    result = summary.phases[0].result if summary.phases else {}
    findings = result.get("findings") or []
    for finding in findings:
        print(f"{'ok' if finding.get('ok') else 'fail'} {finding.get('check')}: {finding.get('detail')}")
    if not findings:
        print(f"fail doctor: {result.get('error') or 'the run stopped before any check reported'}")
    print(f"details: runs/{summary.run_id}/summary.json", file=sys.stderr)
    return Exit.OK if summary.status == "successful" else Exit.FAILED


def _attach(args: argparse.Namespace) -> int:
    worker = _worker(args)
    if worker is None:
        raise UsageError("wfops attach needs the --worker the run was started on")
    return _finish(attach(worker, args.run_id, ProgressPrinter()), args.json)


def _report(args: argparse.Namespace) -> int:
    path = runs_dir() / args.run_id / "summary.json"
    if not path.is_file():
        raise UsageError(f"no run {args.run_id!r} under {runs_dir()} (summary.json missing)")
    summary = RunSummary.from_dict(json.loads(path.read_text()))
    return _finish(summary, args.json)


def _sandbox(args: argparse.Namespace) -> int:
    def log(message: str) -> None:
        print(message, file=sys.stderr)

    if args.sandbox_command == "up":
        current = sandbox.up(args.guests, log=log)
    elif args.sandbox_command == "down":
        sandbox.down(log=log)
        return Exit.OK
    else:
        current = sandbox.status()
    if getattr(args, "json", False):
        print(json.dumps(asdict(current), indent=2))
    else:
        print(sandbox.render_status(current))
    # A sandbox that is not up cannot run anything: the same code a run gets when it finds it down.
    return Exit.OK if current.state == "up" else Exit.ENVIRONMENT


def env_options(sub: argparse.ArgumentParser) -> None:
    """--env, and the vault options of ansible-playbook: every command that runs a play takes them."""
    sub.add_argument("--env", required=True, choices=environments(), help="the environment (inventory/ENV.yml)")
    vault = sub.add_argument_group("vault (as ansible-playbook; ANSIBLE_VAULT_PASSWORD_FILE / _IDENTITY_LIST work too)")
    vault.add_argument(
        "--vault-password-file",
        dest="vault_password_files",
        action="append",
        default=[],
        metavar="FILE",
        help="a file (or an executable script) holding the vault password",
    )
    vault.add_argument(
        "--vault-id", dest="vault_ids", action="append", default=[], metavar="[LABEL@]FILE|prompt", help="a vault id"
    )
    vault.add_argument(
        "-J", "--ask-vault-pass", dest="ask_vault_pass", action="store_true", help="ask for the vault password"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wfops",
        description="WeddingFlo release and disaster-recovery automation.",
        epilog=render_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    phases = commands.add_parser("phases", help="list the runbook's phases")
    phases.add_argument("--json", action="store_true", help="print JSON")
    phases.set_defaults(handler=lambda args: _print_phases(args.json))

    def run_options(sub: argparse.ArgumentParser) -> None:
        env_options(sub)
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
        worker_option(sub)

    def worker_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--worker",
            metavar="ssh://USER@HOST[:PORT][/CHECKOUT]|local",
            help="run on an execution node through ansible-runner's streaming worker (it goes on if wfops stops)",
        )

    run = commands.add_parser("run", help="run one or more phases, in the order given")
    run.add_argument("phases", nargs="+", metavar="PHASE", help="phase names (see `wfops phases`)")
    run.add_argument("--ref", help="the WeddingFlo git ref (deploy and migrate need one outside the sandbox)")
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
    release.add_argument(
        "--allow-unstaged",
        metavar="REASON",
        help="release to production a ref that has no successful staging release (the reason goes into the ledger)",
    )
    run_options(release)
    release.set_defaults(handler=_release)

    rollback = commands.add_parser("rollback", help="return to the previous healthy release (code; --database too)")
    rollback.add_argument(
        "--to", metavar="REF", help="return to this release (a ref or commit the ledger knows) instead"
    )
    rollback.add_argument("--database", action="store_true", help="also restore the release's backup")
    rollback.add_argument(
        "--backup",
        metavar="ID|latest",
        help="the backup to restore (default: the newest release's; latest: the newest verified, not a safety one)",
    )
    rollback.add_argument("--confirm", metavar="ID", help="the backup's id, confirming the database restore")
    run_options(rollback)
    rollback.set_defaults(handler=_rollback)

    lock = commands.add_parser("lock", help="the host's release lock")
    lock.add_argument("lock_command", choices=["status", "release"])
    env_options(lock)
    lock.add_argument("--force", action="store_true", help="release a lock held by another run")
    lock.add_argument("--json", action="store_true")
    lock.set_defaults(handler=_admin)

    freeze = commands.add_parser("freeze", help="refuse releases and deploys (not rollbacks or backups) until unfrozen")
    env_options(freeze)
    freeze.add_argument("--reason", required=True, help="why; shown to everyone whose release is refused")
    freeze.add_argument("--until", default="", metavar="TIME", help="ISO time it ends by itself (UTC if no zone)")
    freeze.add_argument("--json", action="store_true")
    freeze.set_defaults(handler=_admin)
    unfreeze = commands.add_parser("unfreeze", help="end a change freeze")
    env_options(unfreeze)
    unfreeze.add_argument("--json", action="store_true")
    unfreeze.set_defaults(handler=_admin)

    for name, text in (("history", "the host's ledger of releases and rollbacks"), ("backups", "the host's backups")):
        sub = commands.add_parser(name, help=text)
        env_options(sub)
        sub.add_argument("--json", action="store_true")
        sub.set_defaults(handler=_admin)

    monitor = commands.add_parser("monitor", help="the runbook's eight first-day signals, once or watched")
    env_options(monitor)
    monitor.add_argument("--watch", default="0", help="keep checking this long (24h); 0 = once")
    monitor.add_argument("--every", default="15m", help="between checks while watching")
    monitor.add_argument("-e", "--extra-var", dest="extra_vars", action="append", default=[], metavar="KEY=VALUE")
    monitor.add_argument("--json", action="store_true")
    monitor.set_defaults(handler=_monitor)

    doctor = commands.add_parser(
        "doctor", help="check the database (every client), Dokploy and the app as the phases reach them; read-only"
    )
    env_options(doctor)
    doctor.add_argument("-e", "--extra-var", dest="extra_vars", action="append", default=[], metavar="KEY=VALUE")
    doctor.add_argument("--json", action="store_true", help="print summary.json on stdout")
    doctor.set_defaults(handler=_doctor)

    attached = commands.add_parser("attach", help="follow a run started with --worker to its end (after wfops stopped)")
    attached.add_argument("run_id", metavar="RUN_ID")
    worker_option(attached)
    attached.add_argument("--json", action="store_true", help="print summary.json on stdout")
    attached.set_defaults(handler=_attach)

    report = commands.add_parser("report", help="the summary of an earlier run")
    report.add_argument("run_id", metavar="RUN_ID")
    report.add_argument("--json", action="store_true")
    report.set_defaults(handler=_report)

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
        if hasattr(args, "vault_ids"):
            use_vault(Vault.from_options(args.vault_password_files, args.vault_ids, args.ask_vault_pass))
        return int(args.handler(args))
    except (
        UsageError,
        UnknownPhaseError,
        NotAReleasePhaseError,
        UnknownEnvironmentError,
        SecretInExtraVarsError,
        VaultError,
        UnknownBackupError,
    ) as exc:
        print(f"wfops: {exc}", file=sys.stderr)
        return Exit.USAGE
    except AdminError as exc:
        print(f"wfops: {exc}", file=sys.stderr)
        return Exit.FAILED
    except (PostgresUnavailableError, sandbox.SandboxError, WorkerUnreachableError) as exc:
        print(f"wfops: {exc}", file=sys.stderr)
        return Exit.ENVIRONMENT


if __name__ == "__main__":
    sys.exit(main())
