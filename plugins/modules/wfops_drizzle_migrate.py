#!/usr/bin/python
"""Ansible module: apply a release's Drizzle migrations the way drizzle-orm records them, locked and verified."""

from __future__ import annotations

DOCUMENTATION = r"""
module: wfops_drizzle_migrate
short_description: Apply Drizzle ORM migrations to PostgreSQL, locked, verified, Drizzle-compatible
description:
  - Reads a Drizzle migrations folder (meta/_journal.json and <tag>.sql) and applies the pending migrations
    in one transaction, recording each in Drizzle's bookkeeping table exactly as drizzle-orm does
    (hash = sha256 of the file, created_at = the journal's when), so drizzle-kit and this module can take over
    from each other.
  - Holds a session-level advisory lock for the whole run; a second run waits up to I(lock_wait) seconds, then
    fails naming the holder.
  - Before anything runs, verifies every applied row against the folder; an edited applied migration, an
    entry older than the head that was never applied (Drizzle skips those silently), or an applied row the
    journal does not know fails the run unless I(allow_drift).
  - Runs the transaction under I(lock_timeout) and I(statement_timeout), retrying up to I(retries) times when a
    lock cannot be had.
  - In check mode, reports the plan (each pending migration's tag, statement count and first lines).
options:
  migrations_dir:
    description:
      - The migrations folder on the target host. With O(migrations_files), the files are written there first (not
        in check mode), as the record of what was applied.
    type: path
    required: true
  migrations_files:
    description:
      - The release's migrations folder as {relative path, text} (C(meta/_journal.json) and each C(<tag>.sql)), read
        on the controller; saves copying the folder to the host in tasks of its own. Kept out of the logged
        invocation (it can be large).
    type: dict
  database_url:
    description: postgresql:// URL of a session/direct connection (not a transaction pooler).
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
  lock_wait:
    description: Seconds to wait for the migration lock held by another run.
    type: float
    default: 300
  lock_timeout:
    description: PostgreSQL lock_timeout for the migration transaction.
    type: str
    default: 5s
  statement_timeout:
    description: PostgreSQL statement_timeout for the migration transaction.
    type: str
    default: 15min
  retries:
    description: Retries of the whole transaction when a lock could not be had within lock_timeout.
    type: int
    default: 5
  retry_delay:
    description: Seconds before the first retry (it grows linearly with each attempt).
    type: float
    default: 2
  allow_drift:
    description: Apply even when verification finds edited, skipped or unknown migrations.
    type: bool
    default: false
author: wfops
"""

EXAMPLES = r"""
- name: Apply the release's migrations
  wfops_drizzle_migrate:
    migrations_dir: /var/lib/weddingflo/releases/abc123/drizzle
    database_url: "{{ wfops_database_url }}"
    lock_timeout: 5s
"""

RETURN = r"""
head_before:
  description: The newest applied migration before the run (tag, created_at, applied count), or null.
  type: dict
  returned: always
head_after:
  description: The newest applied migration after the run.
  type: dict
  returned: always
pending:
  description: The migrations that were (or, in check mode, would be) applied, with tag, statements and first lines.
  type: list
  returned: always
applied:
  description: Each applied migration's tag, hash and milliseconds.
  type: list
  returned: always
findings:
  description: Verification findings (kind edited, skipped or unknown; tag; both hashes).
  type: list
  returned: always
"""

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


def read_release_migrations(params: dict, check_mode: bool) -> list:
    """From migrations_files (written to migrations_dir first, unless in check mode), or from migrations_dir."""
    folder = Path(params["migrations_dir"])
    files = params["migrations_files"]
    if files is None:
        return read_migrations(folder)
    files = {str(name): str(text) for name, text in files.items()}
    migrations = migrations_from_files(files, "the release's migrations")
    if not check_mode:
        try:
            write_migration_files(folder, files)
        except OSError as exc:
            raise MigrationError(f"cannot write the release's migrations to {folder}: {exc.strerror or exc}") from exc
    return migrations


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "migrations_dir": {"type": "path", "required": True},
            "migrations_files": {"type": "dict", "no_log": True},
            "database_url": {"type": "str", "required": True, "no_log": True},
            "migrations_schema": {"type": "str", "default": "drizzle"},
            "migrations_table": {"type": "str", "default": "__drizzle_migrations"},
            "lock_wait": {"type": "float", "default": 300},
            "lock_timeout": {"type": "str", "default": "5s"},
            "statement_timeout": {"type": "str", "default": "15min"},
            "retries": {"type": "int", "default": 5},
            "retry_delay": {"type": "float", "default": 2},
            "allow_drift": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    missing = psycopg2_missing()
    if missing:
        module.fail_json(msg=missing_required_lib(PSYCOPG2_HINT), exception=missing)
    import psycopg2

    params = module.params
    notes: list[str] = []
    try:
        migrations = read_release_migrations(params, module.check_mode)
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
                    settings=Settings(
                        lock_wait_s=params["lock_wait"],
                        lock_timeout=params["lock_timeout"],
                        statement_timeout=params["statement_timeout"],
                        retries=params["retries"],
                        retry_delay_s=params["retry_delay"],
                        allow_drift=params["allow_drift"],
                    ),
                    check_mode=module.check_mode,
                    log=notes.append,
                )
            finally:
                connection.close()
    except DatabaseError as exc:
        module.fail_json(msg=str(exc), notes=notes, **exc.facts)
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
        module.fail_json(msg=str(connection_lost(exc)), notes=notes)
    result = asdict(outcome)
    module.exit_json(changed=outcome.changed, notes=notes, **result)


if __name__ == "__main__":
    main()
