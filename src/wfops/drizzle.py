"""Drizzle's migrations folder and bookkeeping: the migrate role's own code, loaded from the checkout.

The implementation lives once, in roles/migrate/module_utils/wfops_drizzle.py (the Ansible module ships it to
the host); the sandbox and the tests use the same file through this module.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_SOURCE = Path(__file__).resolve().parents[2] / "roles" / "migrate" / "module_utils" / "wfops_drizzle.py"
_spec = importlib.util.spec_from_file_location("wfops_drizzle_core", _SOURCE)
assert _spec is not None and _spec.loader is not None
_core = importlib.util.module_from_spec(_spec)
sys.modules["wfops_drizzle_core"] = _core
_spec.loader.exec_module(_core)

BREAKPOINT = _core.BREAKPOINT
DEFAULT_SCHEMA = _core.DEFAULT_SCHEMA
DEFAULT_TABLE = _core.DEFAULT_TABLE
Bookkeeping = _core.Bookkeeping
Migration = _core.Migration
MigrationError = _core.MigrationError
Settings = _core.Settings
connect_kwargs = _core.connect_kwargs
migrate = _core.migrate
read_migrations = _core.read_migrations
verify = _core.verify

__all__ = [
    "BREAKPOINT",
    "DEFAULT_SCHEMA",
    "DEFAULT_TABLE",
    "Bookkeeping",
    "Migration",
    "MigrationError",
    "Settings",
    "connect_kwargs",
    "migrate",
    "read_migrations",
    "verify",
]
