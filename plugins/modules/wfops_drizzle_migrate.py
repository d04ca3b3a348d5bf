#!/usr/bin/python
"""Ansible module: apply a release's Drizzle migrations the way drizzle-orm does, locked, verified, explained."""

from __future__ import annotations

DOCUMENTATION = r"""
module: wfops_drizzle_migrate
short_description: Apply Drizzle ORM migrations to PostgreSQL, locked, verified, Drizzle-compatible
description:
  - Reads a Drizzle migrations folder (meta/_journal.json and <tag>.sql) and applies the pending migrations as
    drizzle-orm's migrator does - each file split on C(--> statement-breakpoint), every chunk sent as it is on one
    connection (a chunk of comments only succeeds as an empty statement), all pending migrations in one transaction
    - recording each in Drizzle's bookkeeping table exactly as drizzle-orm does (hash = sha256 of the file,
    created_at = the journal's when), so drizzle-kit and this module can take over from each other.
  - Holds a session-level advisory lock for the whole run; a second run waits up to I(lock_wait) seconds, then
    fails naming the holder.
  - Before anything runs, verifies every applied row against the folder; an edited applied migration, an entry older
    than the head that was never applied (Drizzle skips those silently), or an applied row the journal does not know
    fails the run, naming the two ways out - I(apply_skipped) or I(acknowledge) with a reason, each recorded in the
    database once, so later runs are clean with every other check still on.
  - Sets I(lock_timeout) and I(statement_timeout) for the session (they survive a migration's own C(COMMIT;)),
    retrying up to I(retries) times when a lock cannot be had and nothing of the attempt persisted.
  - A migration holding C(BEGIN)/C(COMMIT)/C(ROLLBACK) or a command that cannot run in a transaction
    (C(CREATE INDEX CONCURRENTLY), ...) is flagged as not atomic in the plan; when a run fails, the message says
    exactly which migrations and statements were committed before the failure, and what to do next.
  - In check mode, reports the plan (each pending migration's tag, statement count, first lines, atomicity).
options:
  migrations_dir:
    description:
      - Without O(migrations_files), the migrations folder to read on the target host.
      - With O(migrations_files), where the release's files are kept as the record of what was applied, written only
        after a successful run (never in check mode); omit it to keep no record.
    type: path
  migrations_files:
    description:
      - The release's migrations folder as {relative path, text} (C(meta/_journal.json) and each C(<tag>.sql)), read
        on the controller; saves copying the folder to the host in tasks of its own. Kept out of the logged
        invocation (it can be large).
    type: dict
  migrations_origin:
    description: Where O(migrations_files) were read, for messages (the role passes its migrate_source_dir).
    type: str
    default: the release's migrations
  database_url:
    description:
      - Any libpq connection string of a session/direct connection - a C(postgresql://) URL (unix sockets as
        C(postgresql:///db?host=/run/postgresql) or a percent-encoded host, any parameter - sslmode, sslrootcert,
        sslcrl, sslcert/sslkey, channel_binding, options, ...) or key=value pairs, parsed by libpq itself.
      - A transaction pooler (port 6543, pgbouncer=true) is refused. The password never appears in a message.
    type: str
    required: true
  migrations_schema:
    description: Schema of Drizzle's bookkeeping table.
    type: str
    default: drizzle
  migrations_table:
    description: Drizzle's bookkeeping table.
    type: str
    default: __drizzle_migrations
  transaction:
    description:
      - C(one) (Drizzle's behaviour) applies every pending migration in one transaction.
      - C(per-migration) commits each migration with its bookkeeping row, so its locks are released before the next
        one runs; a failure leaves the earlier migrations applied and recorded, and the next run continues there.
    type: str
    choices: [one, per-migration]
    default: one
  apply_skipped:
    description:
      - Tags of migrations older than the applied head that were never applied (Drizzle skips them) to apply in this
        run, in journal order before the pending ones, each recorded with Drizzle's own row.
    type: list
    elements: str
    default: []
  acknowledge:
    description:
      - Findings to accept as they are (a tag, or an unknown row's created_at), recorded in
        C(wfops.drizzle_acknowledged_drift) with O(acknowledged_by), the time and O(acknowledge_reason).
    type: list
    elements: str
    default: []
  acknowledge_reason:
    description: Why the findings in O(acknowledge) are accepted (required with it).
    type: str
    default: ""
  acknowledged_by:
    description: Who accepts them; default the user running the module (SUDO_USER first).
    type: str
    default: ""
  lock_wait:
    description: Seconds to wait for the migration lock held by another run.
    type: float
    default: 300
  lock_timeout:
    description: PostgreSQL lock_timeout of the migration session.
    type: str
    default: 5s
  statement_timeout:
    description: PostgreSQL statement_timeout of the migration session.
    type: str
    default: 15min
  retries:
    description: Retries of a transaction when a lock could not be had within lock_timeout and nothing of it persisted.
    type: int
    default: 5
  retry_delay:
    description: Seconds before the first retry (it grows linearly with each attempt).
    type: float
    default: 2
  allow_drift:
    description: Apply this once even when verification finds edited, skipped or unknown migrations (nothing recorded).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
requirements:
  - psycopg2 (Debian python3-psycopg2)
author: wfops
"""

EXAMPLES = r"""
- name: Apply the release's migrations
  wfops_drizzle_migrate:
    migrations_dir: /var/lib/weddingflo/releases/abc123/drizzle
    database_url: "{{ wfops_database_url }}"
    lock_timeout: 5s

- name: Apply a migration Drizzle skipped, and accept an edited one
  wfops_drizzle_migrate:
    migrations_dir: /srv/app/drizzle
    database_url: postgresql:///weddingflo?host=/run/postgresql
    apply_skipped: [0019b_hotfix]
    acknowledge: [0005_clients]
    acknowledge_reason: whitespace-only edit, reviewed by alice
"""

RETURN = r"""
head_before:
  description: The newest applied migration before the run (tag, created_at, applied count), or null.
  type: dict
  returned: always
  sample: {tag: 0022_child_tables_client_id_indexes, created_at: 1714000000000, applied: 23}
head_after:
  description: The newest applied migration after the run.
  type: dict
  returned: always
pending:
  description:
    - The migrations that were (or, in check mode, would be) applied, with tag, when, statements, C(atomic), C(notes)
      (why it is not atomic, what will fail), and C(skipped) for a migration applied on request although older than
      the head; in check mode also hash, first lines, C(transaction_control) and C(outside_transaction).
  type: list
  returned: always
  sample: [{tag: 0028_index, statements: 3, atomic: false, notes: ["not atomic: statement 1 (COMMIT) commits ..."]}]
applied:
  description: Each applied migration's tag, hash and milliseconds.
  type: list
  returned: always
findings:
  description: Verification findings (kind edited, skipped or unknown; tag; both hashes; way_out; acknowledged).
  type: list
  returned: always
acknowledged:
  description: The findings acknowledged by this run (would be, in check mode).
  type: list
  returned: always
transaction:
  description: The transaction mode used (one or per-migration).
  type: str
  returned: always
transaction_note:
  description: The trade-off of that mode, in one sentence (shown with the plan).
  type: str
  returned: always
persisted:
  description: On failure, what was committed before it - recorded migrations, committed statements not recorded.
  type: dict
  returned: failure
next:
  description: On failure, what to do next.
  type: str
  returned: failure
"""

import getpass
import os
from dataclasses import asdict
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.wfops_drizzle import (
    Bookkeeping,
    MigrationError,
    Settings,
    migrate,
    migrations_from_files,
    read_migrations,
    write_migration_files,
)
from ansible.module_utils.wfops_pg import (
    PSYCOPG2_HINT,
    DatabaseError,
    connect,
    connection_lost,
    psycopg2_missing,
    stop_with_owner,
    writer_lock,
)


def release_migrations(params: dict) -> tuple[list, dict[str, str] | None]:
    """From migrations_files (kept in migrations_dir after success), or read from migrations_dir."""
    files = params["migrations_files"]
    if files is None:
        return read_migrations(Path(params["migrations_dir"])), None
    files = {str(name): str(text) for name, text in files.items()}
    return migrations_from_files(files, params["migrations_origin"]), files


def keep_record(params: dict, files: dict[str, str] | None) -> None:
    """The release's files as the record of what was applied: only after the run succeeded."""
    if files is None or not params["migrations_dir"]:
        return
    folder = Path(params["migrations_dir"])
    try:
        write_migration_files(folder, files)
    except OSError as exc:
        raise MigrationError(
            f"the migrations were applied, but their record could not be written to {folder}: "
            f"{exc.strerror or exc} (run migrate again once the folder is writable: it applies nothing twice)"
        ) from exc


def settings_of(params: dict) -> Settings:
    return Settings(
        lock_wait_s=params["lock_wait"],
        lock_timeout=params["lock_timeout"],
        statement_timeout=params["statement_timeout"],
        retries=params["retries"],
        retry_delay_s=params["retry_delay"],
        allow_drift=params["allow_drift"],
        transaction=params["transaction"],
        apply_skipped=[t.strip() for t in params["apply_skipped"] if t.strip()],
        acknowledge=[t.strip() for t in params["acknowledge"] if t.strip()],
        acknowledge_reason=params["acknowledge_reason"],
        acknowledged_by=params["acknowledged_by"] or os.environ.get("SUDO_USER") or getpass.getuser(),
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "migrations_dir": {"type": "path"},
            "migrations_files": {"type": "dict", "no_log": True},
            "migrations_origin": {"type": "str", "default": "the release's migrations"},
            "database_url": {"type": "str", "required": True, "no_log": True},
            "migrations_schema": {"type": "str", "default": "drizzle"},
            "migrations_table": {"type": "str", "default": "__drizzle_migrations"},
            "transaction": {"type": "str", "default": "one", "choices": ["one", "per-migration"]},
            "apply_skipped": {"type": "list", "elements": "str", "default": []},
            "acknowledge": {"type": "list", "elements": "str", "default": []},
            "acknowledge_reason": {"type": "str", "default": ""},
            "acknowledged_by": {"type": "str", "default": ""},
            "lock_wait": {"type": "float", "default": 300},
            "lock_timeout": {"type": "str", "default": "5s"},
            "statement_timeout": {"type": "str", "default": "15min"},
            "retries": {"type": "int", "default": 5},
            "retry_delay": {"type": "float", "default": 2},
            "allow_drift": {"type": "bool", "default": False},
        },
        required_one_of=[("migrations_dir", "migrations_files")],
        supports_check_mode=True,
    )
    missing = psycopg2_missing()
    if missing:
        module.fail_json(msg=missing_required_lib(PSYCOPG2_HINT), exception=missing)
    import psycopg2

    params = module.params
    notes: list[str] = []
    try:
        migrations, files = release_migrations(params)
        # One writer at a time (wfops_pg.writer_lock, beside the migrator's own lock); a run whose owner is gone
        # cancels its statement (the migration transaction rolls back) and ends.
        with writer_lock(params["database_url"], "migrate", params["lock_wait"], writes=not module.check_mode):
            connection = connect(params["database_url"], "wfops-migrate")
            stop_with_owner(connection)
            try:
                outcome = migrate(
                    connection,
                    migrations,
                    bookkeeping=Bookkeeping(params["migrations_schema"], params["migrations_table"]),
                    settings=settings_of(params),
                    check_mode=module.check_mode,
                    log=notes.append,
                )
            finally:
                connection.close()
        if not module.check_mode:
            keep_record(params, files)
    except DatabaseError as exc:
        module.fail_json(msg=str(exc), notes=notes, **exc.facts)
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
        module.fail_json(msg=str(connection_lost(exc)), notes=notes)
    module.exit_json(changed=outcome.changed, notes=notes, **asdict(outcome))


if __name__ == "__main__":
    main()
