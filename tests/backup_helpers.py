"""Running weddingflo-backup the way the host runs it: its own process, settings in the environment."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from conftest import REPO

TOOL = REPO / "files" / "weddingflo_backup.py"


def load_tool_module() -> ModuleType:
    """The tool as a module, for its pure functions (retention)."""
    spec = importlib.util.spec_from_file_location("weddingflo_backup", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["weddingflo_backup"] = module
    spec.loader.exec_module(module)
    return module


def tool_env(database_url: str, backup_dir: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BACKUP_", "PG")) and k != "DATABASE_URL"}
    return {**base, "DATABASE_URL": database_url, "BACKUP_DIR": str(backup_dir), **extra}


def run_tool(env: dict[str, str], *args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """`weddingflo-backup ARGS` with the host's python3 (the tool must need nothing else)."""
    return subprocess.run(
        [*prefix, "/usr/bin/python3", str(TOOL), *args], capture_output=True, text=True, env=env, check=False
    )


def final_files(backup_dir: Path) -> list[str]:
    """Archives and manifests under their final names."""
    if not backup_dir.exists():
        return []
    return sorted(p.name for p in backup_dir.iterdir() if p.name.startswith("backup-"))


def row_checksums(database_url: str, settings: tuple[str, ...]) -> dict[str, str]:
    """Every table's checksum as the manifest records it (the sum of the first 64 bits of md5(row text), as a signed
    64-bit integer), computed here in Python from the rows themselves: an independent check of the tool's SQL.
    `settings` are the session settings the tool fixes for the row text."""
    import hashlib

    import psycopg2

    sums = {}
    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        for statement in settings:
            cursor.execute(statement)
        cursor.execute(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
            " WHERE schemaname IN ('public', 'drizzle') ORDER BY 1"
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f"SELECT t::text FROM {table} t")
            total = 0
            for (text,) in cursor:
                value = int(hashlib.md5(text.encode()).hexdigest()[:16], 16)  # noqa: S324 - a checksum, not security
                total += value - (1 << 64) if value >= 1 << 63 else value
            sums[table] = str(total)
    return sums
