"""The fault matrix as data: what is injected, where, the message an SRE sees, how we prove nothing was lost.

docs/reliability.md shows this table; tests/faults/test_reliability_doc.py checks the two agree, and each case's
test (named in `test`) asserts its message with the very string below.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    case: str
    injected: str
    phase: str
    message: str
    proof: str
    test: str
    exit_code: int = 1


MATRIX: tuple[Fault, ...] = (
    Fault(
        "db-stops-during-backup",
        "PostgreSQL stopped (immediate) while pg_dump runs",
        "backup",
        "the backup failed while pg_dump ran, nothing was kept",
        "no file under a final name; every table's checksum unchanged after restart",
        "tests/faults/test_fault_matrix.py::test_the_database_stopping_during_the_backup",
    ),
    Fault(
        "db-stops-during-migrate",
        "PostgreSQL stopped while a migration waits on a lock",
        "migrate",
        "nothing was applied",
        "Drizzle's bookkeeping still 23 rows; schema and every table's checksum unchanged",
        "tests/faults/test_fault_matrix.py::test_the_database_stopping_during_a_migration",
    ),
    Fault(
        "db-stops-during-normalize",
        "PostgreSQL stopped while a normalisation batch waits on a row lock",
        "normalize",
        "lost the connection to the database",
        "every table's row count unchanged; a second normalize finishes and the invariants hold",
        "tests/faults/test_fault_matrix.py::test_the_database_stopping_during_normalisation",
    ),
    Fault(
        "db-stops-during-restore",
        "PostgreSQL stopped while the rollback's restore waits on a lock",
        "rollback",
        "pg_restore into weddingflo failed",
        "every table's checksum equals the state before the rollback",
        "tests/faults/test_fault_matrix.py::test_the_database_stopping_during_a_restore",
    ),
    Fault(
        "backup-disk-full",
        "a 64 KiB tmpfs mounted over the backup directory",
        "backup",
        "not enough free disk",
        "no backup file written; database untouched",
        "tests/faults/test_fault_matrix.py::test_a_full_backup_disk",
    ),
    Fault(
        "backup-disk-fills-mid-dump",
        "a file size limit (ulimit -f) hit while pg_dump writes",
        "backup",
        "file size limit",
        "no file under a final name, no partial left",
        "tests/test_backup_tool.py::test_hitting_a_write_limit_mid_dump_leaves_no_backup",
    ),
    Fault(
        "backup-corrupted",
        "one byte of the backup flipped before a database rollback",
        "rollback",
        "failed verification",
        "nothing restored: every table's checksum unchanged, the code not rolled back",
        "tests/faults/test_fault_matrix.py::test_a_corrupted_backup_is_refused_before_a_restore",
    ),
    Fault(
        "killed-in-backup",
        "the release process group SIGKILLed during backup",
        "backup",
        "the release lock is stale",
        "lock reported stale, not taken; --from backup finishes; invariants hold",
        "tests/faults/test_fault_matrix.py::test_a_release_killed_mid_phase_resumes[backup]",
    ),
    Fault(
        "killed-in-migrate",
        "the release process group SIGKILLed during migrate",
        "migrate",
        "the release lock is stale",
        "lock reported stale, not taken; --from migrate finishes; invariants hold",
        "tests/faults/test_fault_matrix.py::test_a_release_killed_mid_phase_resumes[migrate]",
    ),
    Fault(
        "killed-in-normalize",
        "the release process group SIGKILLed during normalize",
        "normalize",
        "the release lock is stale",
        "lock reported stale, not taken; --from normalize finishes; invariants hold",
        "tests/faults/test_fault_matrix.py::test_a_release_killed_mid_phase_resumes[normalize]",
    ),
    Fault(
        "killed-in-deploy",
        "the release process group SIGKILLed during deploy",
        "deploy",
        "the release lock is stale",
        "lock reported stale, not taken; --from deploy finishes; the app runs the ref",
        "tests/faults/test_fault_matrix.py::test_a_release_killed_mid_phase_resumes[deploy]",
    ),
    Fault(
        "killed-in-smoke",
        "the release process group SIGKILLed during smoke",
        "smoke",
        "the release lock is stale",
        "lock reported stale, not taken; --from smoke finishes",
        "tests/faults/test_fault_matrix.py::test_a_release_killed_mid_phase_resumes[smoke]",
    ),
    Fault(
        "wrapper-killed-in-migrate",
        "wfops alone SIGKILLed while a migration waits on a lock",
        "migrate",
        "applied 5",
        "no process of the run and no session within 5 s; bookkeeping still 23 rows, every checksum unchanged; "
        "the next migrate applies all 5",
        "tests/faults/test_owner_gone.py::test_wfops_killed_during_a_migration_leaves_nothing_running_and_nothing_applied",
        exit_code=0,
    ),
    Fault(
        "wrapper-killed-in-normalize",
        "wfops alone SIGKILLed while a normalisation batch waits on a row lock",
        "normalize",
        "changed rsvp",
        "no process of the run and no session within 5 s; every table's row count unchanged; the next normalize "
        "finishes and the invariants hold",
        "tests/faults/test_owner_gone.py::test_wfops_killed_during_normalisation_leaves_nothing_running_and_the_next_run_finishes",
        exit_code=0,
    ),
    Fault(
        "wrapper-killed-in-restore",
        "wfops alone SIGKILLed while the rollback's restore waits on a lock",
        "rollback",
        "the release lock is stale",
        "while it ran: lock status running, lock release --force refused; after: no process and no session within 5 s, "
        "every checksum unchanged, the lock stale until forced, the next rollback restores",
        "tests/faults/test_owner_gone.py::test_wfops_killed_during_a_restore_leaves_nothing_running_and_the_database_as_it_was",
    ),
    Fault(
        "wrapper-killed-in-release",
        "wfops alone SIGKILLed during a release's migrate (the run writes no ledger line of its own)",
        "migrate",
        "in the ledger as interrupted",
        "no process within 5 s, nothing applied; lock release --force records the run from what its lock noted "
        "(phases ok preflight and backup, its backup, stopped in migrate); --from migrate under the production "
        "resume rule is accepted, carries that backup and applies all 5",
        "tests/faults/test_owner_gone.py::"
        "test_a_release_killed_in_migrate_is_recorded_by_the_force_release_and_resumes_from_migrate",
        exit_code=0,
    ),
    Fault(
        "ansible-playbook-killed",
        "ansible-playbook SIGKILLed during a release (wfops lives on)",
        "migrate",
        "ansible-playbook was killed by SIGKILL",
        "migrate reported interrupted (never ok), its orphaned command ended, the ledger line interrupted, the lock "
        "released",
        "tests/test_interruptions.py::test_a_killed_ansible_playbook_is_reported_with_its_signal_and_releases_its_lock",
        exit_code=130,
    ),
    Fault(
        "interrupted-release",
        "Ctrl-C or SIGTERM to wfops during a release",
        "migrate",
        "recording the run as interrupted and releasing its lock",
        "the statement cancelled, no process left, the ledger line interrupted, the lock released; the next release "
        "proceeds",
        "tests/test_interruptions.py::test_ctrl_c_or_sigterm_stops_the_release_records_it_and_releases_the_lock",
        exit_code=130,
    ),
    Fault(
        "two-releases",
        "two wfops release processes started together",
        "release lock",
        "the release lock is held by",
        "exactly one runs; one ledger line",
        "tests/test_release_rollback.py::test_two_releases_at_once_one_is_refused",
    ),
    Fault(
        "rollback-during-release",
        "wfops rollback while a release holds the lock",
        "rollback",
        "the release lock is held by",
        "the rollback changes nothing; the release then finishes",
        "tests/faults/test_fault_matrix.py::test_a_rollback_during_a_release_is_refused",
    ),
    Fault(
        "dokploy-401",
        "Dokploy answers 401",
        "deploy",
        "Dokploy rejected the API key (401 Unauthorized)",
        "database untouched; the previous deployment keeps serving",
        "tests/faults/test_fault_matrix.py::test_a_rejected_dokploy_key_loses_nothing",
    ),
    Fault(
        "dokploy-500",
        "Dokploy answers 500 to every call",
        "deploy",
        "answered 500",
        "the key never shown; nothing deployed",
        "tests/test_deploy_smoke.py::test_5xx_answers_are_retried_then_reported",
    ),
    Fault(
        "dokploy-timeout",
        "the deployment never finishes",
        "deploy",
        "is still running after",
        "the previous deployment keeps serving",
        "tests/test_deploy_smoke.py::test_a_deployment_that_hangs_times_out",
    ),
    Fault(
        "dokploy-lost-job",
        "the queued job vanishes",
        "deploy",
        "the queued job was lost",
        "nothing deployed",
        "tests/test_deploy_smoke.py::test_a_lost_job_is_reported_instead_of_waited_for_forever",
    ),
    Fault(
        "app-never-healthy",
        "the new app answers 503",
        "deploy",
        "the app never became healthy",
        "the phase fails; with release_auto_rollback the code returns to the previous deployment",
        "tests/test_deploy_smoke.py::test_an_app_that_never_becomes_healthy_fails_the_phase",
    ),
    Fault(
        "malformed-database-url",
        "DATABASE_URL is not a postgresql:// URL",
        "backup",
        "use postgresql://user:password@host:5432/dbname",
        "refused before anything is written",
        "tests/faults/test_fault_matrix.py::test_bad_database_urls_are_refused_before_anything_runs[malformed]",
    ),
    Fault(
        "pooler-url",
        "DATABASE_URL points at Supabase's transaction pooler (6543)",
        "backup",
        "transaction pooler",
        "refused before anything is written",
        "tests/faults/test_fault_matrix.py::test_bad_database_urls_are_refused_before_anything_runs[pooler]",
    ),
    Fault(
        "missing-vault-variable",
        "production without vault.yml",
        "guard",
        "vault_wfops_host_address is not set for production",
        "the play stops before any phase",
        "tests/test_group_vars.py::test_a_missing_vault_variable_stops_the_play_with_the_file_to_fix",
    ),
    Fault(
        "unknown-environment",
        "--env moon",
        "wrapper",
        "invalid choice: 'moon'",
        "nothing runs (exit 2)",
        "tests/test_wrapper.py::test_bad_input_exits_2_before_anything_runs",
        exit_code=2,
    ),
    Fault(
        "unknown-backup-id",
        "--backup of a backup that does not exist",
        "rollback",
        "no backup 'backup-19990101-000000'",
        "refused before any run starts; nothing changes",
        "tests/faults/test_fault_matrix.py::test_an_unknown_backup_id_changes_nothing",
        exit_code=2,
    ),
    Fault(
        "wrong-confirmation",
        "--confirm that is not the backup the rollback resolved (--backup latest)",
        "rollback",
        "to go ahead: --confirm",
        "no safety dump, no lock, no ledger line: the host's files and every table's checksum unchanged",
        "tests/test_release_rollback.py::test_a_wrong_confirmation_is_refused_before_anything_is_written_on_the_host",
    ),
    Fault(
        "redeploy-without-push",
        "a code rollback to a release without a Dokploy rollback, and no push command configured",
        "rollback",
        "no push command is configured (deploy_push_argv)",
        "nothing deployed: the app serves what it served, Dokploy has no new deployment",
        "tests/test_rollback_cycle.py::test_release_release_rollback_release_rollback_rollback_walks_back_healthy_releases"
        "[redeploy]",
    ),
    Fault(
        "unknown-phase",
        "wfops run nonsense",
        "wrapper",
        "unknown phase 'nonsense'",
        "nothing runs (exit 2)",
        "tests/test_wrapper.py::test_bad_input_exits_2_before_anything_runs",
        exit_code=2,
    ),
    Fault(
        "unknown-from-phase",
        "--from a phase a release does not run",
        "wrapper",
        "not a release phase",
        "nothing runs (exit 2)",
        "tests/test_wrapper.py::test_bad_input_exits_2_before_anything_runs",
        exit_code=2,
    ),
)


def fault(case: str) -> Fault:
    return next(f for f in MATRIX if f.case == case)


TABLE_START = "<!-- fault-matrix:start (rendered from tests/faults/matrix.py; the tests check it) -->"
TABLE_END = "<!-- fault-matrix:end -->"


def render_table() -> str:
    """The matrix as the Markdown table docs/reliability.md carries between its two markers."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = [
        "| case | injected | phase | message the SRE sees | proof nothing was lost | result | test |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in MATRIX:
        path, _, name = f.test.partition("::")
        rows.append(
            f"| {f.case} | {cell(f.injected)} | {f.phase} | `{cell(f.message)}` | {cell(f.proof)} | "
            f"pass: exit {f.exit_code}, the message, nothing lost | `{path}` `{name}` |"
        )
    return "\n".join([TABLE_START, *rows, TABLE_END])


if __name__ == "__main__":
    print(render_table())
