"""bench/migrate.py itself, on the committed drizzle-kit folder: every variant measured side by side on fresh
databases, a verdict on both targets, nothing secret in the report. Timings are not judged here (bench/ does that)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from conftest import REPO, VENV_BIN
from drizzle_kit import FOLDERS


def test_the_migrate_benchmark_measures_every_variant_and_writes_a_verdict_per_target(tmp_path: Path) -> None:
    out = tmp_path / "MIGRATE.md"
    done = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "bench.migrate", "--folder", str(FOLDERS / "kit" / "drizzle"),
         "--runs", "1", "--cache", str(tmp_path / "cache"), "--out", str(out)],
        cwd=REPO, env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    raw = json.loads(out.with_suffix(".json").read_text())
    assert raw["machine"]["migrations"] == 9 and raw["machine"]["nproc"] >= 1
    measured = {m["variant"]: m for m in raw["measures"]}
    assert set(measured) == {"drizzle-orm", "module", "role", "ad hoc", "floor"}
    assert all(m["ok"] and m["wall_s"] > 0 for m in measured.values()), measured
    assert measured["drizzle-orm"]["inner_ms"] > 0
    report = out.read_text()
    for variant in ("wfops module (its process on the host)", "wfops role (`ansible-playbook`, local)"):
        line = next(line for line in report.splitlines() if line.startswith(f"| {variant}"))
        assert re.search(r"\| <= 1\.[05]x \| (PASS|MISS by [0-9.]+x) \|", line), line
    assert "Load average" in report
    assert not list((tmp_path / "cache").glob("*")), "an existing folder is used as it is, nothing generated"
