"""The benchmark harness itself (bench/), on a small real sandbox: it measures both sides, writes its report
with a verdict per target, and leaks no password. The numbers are not judged here: timings belong in bench/."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, VENV_BIN

SCENARIOS = "release,rollback,normalize,backup"
TARGET_ROWS = (
    "normalisation phase <= 1.2x the four plain UPDATEs",
    "writer max latency during wfops normalisation <= 100 ms",
    "backup phase <= 0.6x bare `pg_dump -Fc`",
    "backup archive <= 1.15x the bare archive's size",
    "release <= 1.3x the bare script",
    "database rollback <= 1.3x bare dump + restore",
)


@pytest.fixture
def bench_run(tmp_path: Path) -> Iterator[tuple[subprocess.CompletedProcess[str], Path, Path]]:
    sandbox_dir, out = tmp_path / "bench-sandbox", tmp_path / "report" / "RESULTS.md"
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    try:
        done = subprocess.run(
            [str(VENV_BIN / "python"), "-m", "bench", "--guests", "2000", "--runs", "1", "--scenarios", SCENARIOS,
             "--sandbox-dir", str(sandbox_dir), "--out", str(out)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        yield done, out, sandbox_dir
    finally:
        subprocess.run(
            [str(VENV_BIN / "wfops"), "sandbox", "down"],
            cwd=REPO, env={**env, "WFOPS_SANDBOX_DIR": str(sandbox_dir)}, capture_output=True, check=False,
        )  # fmt: skip


def test_the_harness_measures_both_sides_and_writes_a_verdict_per_target(bench_run: tuple) -> None:
    done, out, sandbox_dir = bench_run
    assert done.returncode == 0, done.stderr[-3000:]
    raw = json.loads(out.with_suffix(".json").read_text())
    measured = {(m["scenario"], m["variant"]): m for m in raw["measures"]}
    for scenario in SCENARIOS.split(","):
        for variant in ("wfops", "bare"):
            m = measured[(scenario, variant)]
            assert m["wall_s"] > 0 and m["writer"]["writes"] > 0, m
            assert m["ok"] or (scenario, variant) == ("rollback", "bare"), m
    # wfops's own commands must succeed, and the writer beside them must never fail.
    for scenario in SCENARIOS.split(","):
        wfops = measured[(scenario, "wfops")]
        assert wfops["ok"] and wfops["writer"]["errors"] == 0, wfops
    assert measured[("release", "wfops")]["phases"].keys() >= {"backup", "migrate", "normalize", "deploy", "smoke"}

    report = out.read_text()
    for row in TARGET_ROWS:
        line = next((line for line in report.splitlines() if line.startswith(f"| {row}")), None)
        assert line is not None, f"no target row {row!r}"
        assert re.search(r"\| [0-9.]+( \([0-9.]+-[0-9.]+\))? \| (PASS|MISS by )", line), line
    assert "Side by side, per run" in report

    url = (sandbox_dir / "database_url").read_text().strip()
    password = re.sub(r"^[^:]+://[^:]+:([^@]+)@.*$", r"\1", url)
    assert password and password != url
    secrets = [password, *((sandbox_dir / name).read_text().strip() for name in ("dokploy_api_key", "smoke_password"))]
    for text in (report, out.with_suffix(".json").read_text(), done.stdout, done.stderr):
        assert not [secret for secret in secrets if secret in text]
