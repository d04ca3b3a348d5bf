"""wfops's exit codes, defined once: the CLI exits with them, `wfops --help` and the README show this table."""

from __future__ import annotations

from enum import IntEnum

from wfops.results import RunSummary


class Exit(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    ENVIRONMENT = 3
    INTERRUPTED = 130


EXIT_CODES: dict[Exit, str] = {
    Exit.OK: "every phase ok or skipped (a dry run included)",
    Exit.FAILED: "a phase failed, or a guard stopped the run (a missing setting, the lock held, a freeze); "
    "the table or summary.json says which",
    Exit.USAGE: "bad input, nothing ran: an unknown phase, environment or `--from`; a secret passed with `-e`; "
    "no `--ref` where the environment needs one; a missing or wrong vault password; a backup that does not exist",
    Exit.ENVIRONMENT: "this machine cannot do it, nothing ran: PostgreSQL missing, the sandbox not up "
    "(`wfops sandbox status` says so with this code)",
    Exit.INTERRUPTED: "interrupted (Ctrl-C, SIGTERM, or its ansible-playbook killed): the running statement "
    "cancelled, the run recorded in the ledger as interrupted, the lock released",
}

MARKDOWN_START = "<!-- exit-codes:start (rendered from src/wfops/exits.py; a test checks it) -->"
MARKDOWN_END = "<!-- exit-codes:end -->"


def for_summary(summary: RunSummary) -> Exit:
    """The exit code of a run that started."""
    if summary.status == "successful":
        return Exit.OK
    if summary.status == "interrupted":
        return Exit.INTERRUPTED
    if summary.refused == "input":
        return Exit.USAGE
    return Exit.FAILED


def render_markdown() -> str:
    """The table the README carries between its two markers."""
    rows = ["| code | meaning |", "| --- | --- |", *(f"| {int(code)} | {text} |" for code, text in EXIT_CODES.items())]
    return "\n".join([MARKDOWN_START, *rows, MARKDOWN_END])


def render_help() -> str:
    lines = (f"  {int(code):>3}  {text.replace('`', '')}" for code, text in EXIT_CODES.items())
    return "exit codes:\n" + "\n".join(lines)
