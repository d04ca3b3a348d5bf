"""What the manifest's table checksums cost: `weddingflo-backup create` with and without them, on a sandbox.

    WFOPS_SANDBOX_DIR=/tmp/wfops-bench .venv/bin/python -m bench.checksums [--runs 3]

The checksums are taken in the dump's own snapshot while pg_dump runs (the same scan that counts the rows), so the
price is what `create` takes longer with them than without; the queries alone (counts, counts + checksums, no
pg_dump beside them) are timed too. Runs alternate which variant goes first. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wfops.pgcluster import server_bindir

REPO = Path(__file__).resolve().parent.parent
TOOL = REPO / "files" / "weddingflo_backup.py"


def _create(url: str, checksums: bool) -> float:
    with tempfile.TemporaryDirectory(prefix="wfops-checksums-") as directory:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("BACKUP_", "PG", "OFFSITE_"))},
            "DATABASE_URL": url,
            "BACKUP_DIR": directory,
            "PG_BINDIR": str(server_bindir()),
            "BACKUP_TABLE_CHECKSUMS": "true" if checksums else "false",
        }
        started = time.monotonic()
        done = subprocess.run(["/usr/bin/python3", str(TOOL), "create"], env=env, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        manifest = json.loads(Path(json.loads(done.stdout)["manifest"]).read_text())
        assert ("table_checksums" in manifest) == checksums
        return elapsed


def _queries_alone(url: str, checksums: bool) -> float:
    """The tool's own query, in a snapshot of its own, with no pg_dump beside it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("weddingflo_backup", TOOL)
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    sys.modules["weddingflo_backup"] = tool
    spec.loader.exec_module(tool)
    settings = tool.Settings(database_url=url, backup_dir=Path("/nonexistent"), pg_bindir=server_bindir())
    session = tool.connect(settings, tool.Database.from_url(url))
    try:
        session.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        started = time.monotonic()
        tool.table_contents(session, settings.schemas, checksums)
        elapsed = time.monotonic() - started
        session.query("COMMIT")
        return elapsed
    finally:
        session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sandbox = Path(os.environ.get("WFOPS_SANDBOX_DIR") or REPO / ".sandbox")
    url = (sandbox / "database_url").read_text().strip()
    times: dict[str, list[float]] = {"create": [], "create_checksums": [], "counts": [], "counts_checksums": []}
    for run in range(args.runs):
        for checksums in (run % 2 == 0, run % 2 != 0):
            times["create_checksums" if checksums else "create"].append(_create(url, checksums))
            times["counts_checksums" if checksums else "counts"].append(_queries_alone(url, checksums))
    medians = {name: round(statistics.median(values), 2) for name, values in times.items()}
    load = os.getloadavg()
    print(
        json.dumps(
            {
                "runs": args.runs,
                "seconds": {name: [round(v, 2) for v in values] for name, values in times.items()},
                "medians": medians,
                "create_overhead_pct": round(100 * (medians["create_checksums"] / medians["create"] - 1), 1),
                "load_average_after": [round(value, 2) for value in load],
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
