"""The benchmark harness itself (bench/), on two small real sandboxes (the cost curve at two sizes): it measures both
sides at each size, writes its report with a verdict per target, the curve's table and its plot, and leaks no
password. The numbers are not judged here: timings belong in bench/."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, VENV_BIN

SCENARIOS = "release,rollback,normalize,backup,migrate"
SIZES = (1000, 2000)
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
            [str(VENV_BIN / "python"), "-m", "bench", "--sizes", ",".join(map(str, SIZES)), "--runs", "1",
             "--scenarios", SCENARIOS, "--sandbox-dir", str(sandbox_dir), "--out", str(out), "--keep-sandboxes"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        yield done, out, sandbox_dir
    finally:
        for size in SIZES:
            subprocess.run(
                [str(VENV_BIN / "wfops"), "sandbox", "down"],
                cwd=REPO, env={**env, "WFOPS_SANDBOX_DIR": f"{sandbox_dir}-{size}"}, capture_output=True, check=False,
            )  # fmt: skip


def test_the_harness_measures_both_sides_and_writes_a_verdict_per_target(bench_run: tuple) -> None:
    done, out, sandbox_dir = bench_run
    assert done.returncode == 0, done.stderr[-3000:]
    raw = json.loads(out.with_suffix(".json").read_text())
    measured = {(m["guests"], m["scenario"], m["variant"]): m for m in raw["measures"]}
    for size in SIZES:
        for scenario in SCENARIOS.split(","):
            for variant in ("wfops", "bare"):
                m = measured[(size, scenario, variant)]
                assert m["wall_s"] > 0 and m["writer"]["writes"] > 0, m
                assert m["ok"] or (scenario, variant) == ("rollback", "bare"), m
        # wfops's own commands must succeed, and the writer beside them must never fail.
        for scenario in SCENARIOS.split(","):
            wfops = measured[(size, scenario, "wfops")]
            assert wfops["ok"] and wfops["writer"]["errors"] == 0, wfops
        phases = measured[(size, "release", "wfops")]["phases"]
        assert phases.keys() >= {"backup", "migrate", "normalize", "deploy", "smoke"}
        backup = measured[(size, "backup", "wfops")]["extra"]
        assert backup["estimated_size_bytes"] > 0 and backup["table_bytes"] > 0, backup
    # Each size seeded its own sandbox with as many guests.
    for size in SIZES:
        state = json.loads((sandbox_dir.parent / f"{sandbox_dir.name}-{size}" / "state.json").read_text())
        assert state["guests"] == size

    report = out.read_text()
    # The curve: a row per phase and side with a time at each size and a fitted line, and the plot beside it.
    for phase in ("release", "normalize", "backup", "rollback", "migrate"):
        for side in ("wfops", "bare"):
            row = next((line for line in report.splitlines() if line.startswith(f"| {phase} | {side} |")), None)
            assert row is not None and re.search(r"\| [0-9.]+ \| [0-9.]+ \| ", row), (phase, side, row)
    assert "fitted s per 1M" in report and "writer's worst stall during the normalisation" in report
    assert (out.parent / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for row in TARGET_ROWS:
        line = next((line for line in report.splitlines() if line.startswith(f"| {row}")), None)
        assert line is not None, f"no target row {row!r}"
        assert re.search(r"\| [0-9.]+( \([0-9.]+-[0-9.]+\))? \| (PASS|MISS by )", line), line
    assert "Side by side, per run" in report

    url = (sandbox_dir.parent / f"{sandbox_dir.name}-{SIZES[0]}" / "database_url").read_text().strip()
    password = re.sub(r"^[^:]+://[^:]+:([^@]+)@.*$", r"\1", url)
    assert password and password != url
    first = sandbox_dir.parent / f"{sandbox_dir.name}-{SIZES[0]}"
    secrets = [password, *((first / name).read_text().strip() for name in ("dokploy_api_key", "smoke_password"))]
    for text in (report, out.with_suffix(".json").read_text(), done.stdout, done.stderr):
        assert not [secret for secret in secrets if secret in text]
