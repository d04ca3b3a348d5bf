"""Drizzle migrations: the migrate module's own code, plugins/module_utils/wfops_drizzle*.py."""

from __future__ import annotations

from wfops.plugin_code import load

load("wfops_pg")
load("wfops_owner")  # the module ends with its run (stop_with_owner imports it when it starts)
_sql = load("wfops_drizzle_sql")
_drift = load("wfops_drizzle_drift")
_apply = load("wfops_drizzle_apply")
_core = load("wfops_drizzle")

BREAKPOINT = _core.BREAKPOINT
DEFAULT_SCHEMA = _core.DEFAULT_SCHEMA
DEFAULT_TABLE = _core.DEFAULT_TABLE
ADVISORY_LOCK_KEY = _core.ADVISORY_LOCK_KEY
PER_MIGRATION = _apply.PER_MIGRATION
ACK_QUALIFIED = _drift.ACK_QUALIFIED
Bookkeeping = _core.Bookkeeping
Migration = _core.Migration
MigrationError = _apply.MigrationError
Settings = _core.Settings
migrate = _core.migrate
migrations_from_files = _core.migrations_from_files
read_migrations = _core.read_migrations
split_statements = _sql.split_statements
verify = _drift.verify
write_migration_files = _core.write_migration_files

__all__ = [
    "ACK_QUALIFIED",
    "ADVISORY_LOCK_KEY",
    "BREAKPOINT",
    "DEFAULT_SCHEMA",
    "DEFAULT_TABLE",
    "PER_MIGRATION",
    "Bookkeeping",
    "Migration",
    "MigrationError",
    "Settings",
    "migrate",
    "migrations_from_files",
    "read_migrations",
    "split_statements",
    "verify",
    "write_migration_files",
]
