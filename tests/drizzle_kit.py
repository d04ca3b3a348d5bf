"""Real drizzle-kit and drizzle-orm, from the sandbox app's node_modules, for the differential tests and the benchmark.

- `generate_folder(steps, out)`: `drizzle-kit generate` once per step in a scratch project, as a developer would run
  it: a `.ts` step is the whole schema at that point (drizzle-kit diffs it against its last snapshot; every "created
  or renamed?" question is answered with the first rename, through a terminal, since drizzle-kit asks only on one);
  a `.sql` step is a custom migration (`generate --custom`, then the SQL written below drizzle-kit's header).
- `drizzle_orm_migrate(...)`: drizzle-orm's own `migrate()` on a folder (tests/drizzle_folders/drizzle_migrate.cjs).
- `drizzle_kit_migrate(...)`: `drizzle-kit migrate` with a config naming the folder.

The connection reaches node through libpq's environment variables (`PGHOST`, ...), never argv.

Run as a script, it regenerates the committed folders under tests/drizzle_folders/ from their steps:
`.venv/bin/python tests/drizzle_kit.py [kit custom]` (then review the diff: the `when` values change).
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "sandbox-app"
FOLDERS = REPO / "tests" / "drizzle_folders"
MIGRATE_SCRIPT = FOLDERS / "drizzle_migrate.cjs"
DRIZZLE_KIT = APP / "node_modules" / ".bin" / "drizzle-kit"
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
RENAME_QUESTION = "created or renamed from another"
DOWN, ENTER = b"\x1b[B", b"\r"


@dataclass(frozen=True)
class Step:
    """One `drizzle-kit generate`: the whole schema (TypeScript), or a custom migration's SQL."""

    name: str
    schema: str | None = None
    sql: str | None = None


def steps_of(folder: Path) -> list[Step]:
    """A folder's steps/NN_<name>.ts|.sql in order."""
    steps = []
    for path in sorted((folder / "steps").iterdir()):
        name = path.stem.split("_", 1)[1]
        text = path.read_text()
        steps.append(Step(name, schema=text) if path.suffix == ".ts" else Step(name, sql=text))
    return steps


def _answer_renames(argv: list[str], cwd: Path, timeout_s: float = 120) -> str:
    """drizzle-kit on a terminal of its own, answering each rename question with its first rename option."""
    parent, child = pty.openpty()
    process = subprocess.Popen(argv, cwd=cwd, stdin=child, stdout=child, stderr=child, close_fds=True)
    os.close(child)
    seen, answered, deadline = b"", 0, time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([parent], [], [], 0.2)
            if ready:
                try:
                    data = os.read(parent, 65536)
                except OSError:  # the child closed the terminal
                    break
                seen += data
                questions = _ANSI.sub(b"", seen).decode(errors="replace").count(RENAME_QUESTION)
                if questions > answered:
                    time.sleep(0.3)  # the prompt draws itself before it reads keys
                    os.write(parent, DOWN)
                    time.sleep(0.2)
                    os.write(parent, ENTER)
                    answered += 1
            elif process.poll() is not None:
                break
        else:
            process.kill()
    finally:
        os.close(parent)
        process.wait()
    output = _ANSI.sub(b"", seen).decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[1:])} failed ({process.returncode}): {output[-2000:]}")
    return output


def generate_folder(steps: list[Step], out: Path) -> Path:
    """The migrations folder drizzle-kit writes for these steps, at `out` (replaced)."""
    with tempfile.TemporaryDirectory(prefix="wfops-drizzle-kit-") as scratch:
        project = Path(scratch)
        (project / "node_modules").symlink_to(APP / "node_modules")
        (project / "drizzle.config.cjs").write_text(
            "module.exports = { dialect: 'postgresql', schema: './schema.ts', out: './drizzle' };\n"
        )
        for step in steps:
            argv = [str(DRIZZLE_KIT), "generate", "--config", "drizzle.config.cjs", "--name", step.name]
            if step.schema is not None:
                (project / "schema.ts").write_text(step.schema)
                _answer_renames(argv, project)
            else:
                _answer_renames([*argv, "--custom"], project)
                written = sorted((project / "drizzle").glob(f"*_{step.name}.sql"))[-1]
                written.write_text(written.read_text() + "\n" + (step.sql or ""))
            time.sleep(0.01)  # distinct `when` values even on a fast machine
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(project / "drizzle", out)
    return out


def node_env(pg_env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **pg_env, "WFOPS_APP_DIR": str(APP)}


def drizzle_orm_migrate(folder: Path, pg_env: dict[str, str], schema: str = "drizzle") -> dict[str, object]:
    """drizzle-orm's migrate() on the folder: its JSON line ({"ok", "ms" or "error"}) and the process's wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        ["node", str(MIGRATE_SCRIPT), str(folder), schema],
        capture_output=True,
        text=True,
        env=node_env(pg_env),
        check=False,
        timeout=600,
    )
    wall = time.perf_counter() - started
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"drizzle_migrate.cjs printed nothing (exit {done.returncode}): {done.stderr[-2000:]}")
    return {**json.loads(lines[-1]), "wall_s": wall}


def drizzle_kit_migrate(folder: Path, pg_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`drizzle-kit migrate` (the CLI) on the folder, its connection from the environment."""
    with tempfile.TemporaryDirectory(prefix="wfops-drizzle-kit-") as scratch:
        config = Path(scratch) / "drizzle.config.cjs"
        config.write_text(
            "const e = process.env;\n"
            "module.exports = { dialect: 'postgresql', out: " + json.dumps(str(folder)) + ",\n"
            "  dbCredentials: { host: e.PGHOST, port: Number(e.PGPORT || 5432), user: e.PGUSER,\n"
            "    password: e.PGPASSWORD, database: e.PGDATABASE, ssl: false },\n"
            "  migrations: { schema: 'drizzle', table: '__drizzle_migrations' } };\n"
        )
        return subprocess.run(
            [str(DRIZZLE_KIT), "migrate", "--config", str(config)],
            cwd=APP,
            capture_output=True,
            text=True,
            env=node_env(pg_env),
            check=False,
            timeout=300,
        )


def main(names: list[str]) -> int:
    for name in names or sorted(p.name for p in FOLDERS.iterdir() if (p / "steps").is_dir()):
        out = generate_folder(steps_of(FOLDERS / name), FOLDERS / name / "drizzle")
        print(f"{name}: {len(json.loads((out / 'meta' / '_journal.json').read_text())['entries'])} migrations in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
