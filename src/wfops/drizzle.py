"""Drizzle migrations: the migrate module's own code, plugins/module_utils/wfops_drizzle.py."""

from __future__ import annotations

from wfops.plugin_code import load

load("wfops_pg")
_core = load("wfops_drizzle")

BREAKPOINT = _core.BREAKPOINT
DEFAULT_SCHEMA = _core.DEFAULT_SCHEMA
DEFAULT_TABLE = _core.DEFAULT_TABLE
ADVISORY_LOCK_KEY = _core.ADVISORY_LOCK_KEY
Bookkeeping = _core.Bookkeeping
Migration = _core.Migration
MigrationError = _core.MigrationError
Settings = _core.Settings
migrate = _core.migrate
migrations_from_files = _core.migrations_from_files
read_migrations = _core.read_migrations
verify = _core.verify
write_migration_files = _core.write_migration_files

__all__ = [
    "ADVISORY_LOCK_KEY",
    "BREAKPOINT",
    "DEFAULT_SCHEMA",
    "DEFAULT_TABLE",
    "Bookkeeping",
    "Migration",
    "MigrationError",
    "Settings",
    "migrate",
    "read_migrations",
    "verify",
]
