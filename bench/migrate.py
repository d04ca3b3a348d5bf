"""`python -m bench.migrate`: wfops's migrator beside drizzle-orm's own migrate() on a folder of >= 150 migrations
written by real drizzle-kit, each on a fresh database, side by side in every run (issue 18's last target).

Variants, each a whole process, timed from start to exit:
- drizzle-orm: `node tests/drizzle_folders/drizzle_migrate.cjs` (drizzle-orm's migrate() on node-postgres);
- module: the wfops_drizzle_migrate module's own process as a host runs it (python, AnsibleModule, the folder read on
  the host), without the controller; target <= 1.0x drizzle-orm;
- role: `ansible-playbook` of a play holding only the migrate role, pointed at the folder and the database (the files
  read on the controller and sent to the module); target <= 1.5x drizzle-orm;
- ad hoc: `ansible localhost -m wfops_drizzle_migrate` (the module through the ansible CLI; shown, not a target);
- floor: `ansible-playbook` of one ping task, what any role pays before doing anything (shown, not a target).

The folder is generated once per size (drizzle-kit generate per step, ~1-2 s each) and kept in --cache. The
databases live in a throwaway cluster of the benchmark's own (fsync on, as a server would run); each is reached over
its unix socket with no password, so no secret is ever written. Results: bench/MIGRATE.md and MIGRATE.json.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg2

from bench.report import spread
from bench.sandbox import REPO, applied_migrations, log
from wfops.pgcluster import PostgresCluster, free_port

sys.path.insert(0, str(REPO / "tests"))  # the tests' drizzle-kit driver: one helper, not a copy
from drizzle_kit import Step, drizzle_orm_migrate, generate_folder

VENV_BIN = Path(sys.executable).parent
TARGETS = {"module": 1.0, "role": 1.5}
VARIANTS = ("drizzle-orm", "module", "role", "ad hoc", "floor")
PLAY = "- name: Migrate\n  hosts: localhost\n  gather_facts: false\n  roles:\n    - role: migrate\n"
# What any role pays before its first task: ansible-playbook with one ping task (no database work).
FLOOR = (
    "- name: Floor\n  hosts: localhost\n  gather_facts: false\n"
    "  tasks:\n    - name: Ping\n      ansible.builtin.ping:\n"
)
# The module's process as Ansible starts it on a host: python, the module utils, the module file as __main__.
MODULE_PROCESS = (
    "import runpy, sys; import wfops.drizzle; sys.argv = [sys.argv[1], sys.argv[2]];"
    " runpy.run_path(sys.argv[0], run_name='__main__')"
)


# --- the folder: a schema that grows the way an app's does, one drizzle-kit generate per step -------------------


@dataclass
class Schema:
    enum_values: list[str] = field(default_factory=lambda: ["new", "active"])
    tables: dict[str, list[str]] = field(default_factory=dict)
    extras: dict[str, list[str]] = field(default_factory=dict)

    def evolve(self, step: int) -> None:
        names = list(self.tables)
        kind = step % 5
        if not names or kind in (0, 1):
            name = f"t{step:03d}"
            columns = [
                "id: serial('id').primaryKey()",
                "name: text('name').notNull()",
                "state: state('state').default('new').notNull()",
                "amount: numeric('amount', { precision: 12, scale: 2 }).default('0').notNull()",
                "createdAt: timestamp('created_at', { withTimezone: true }).defaultNow().notNull()",
            ]
            if names:
                columns.append(f"parentId: integer('parent_id').references(() => {names[-1]}.id)")
                self.extras[name] = [f"index('{name}_parent_idx').on(t.parentId)"]
            self.tables[name] = columns
        elif kind == 2:
            target = names[step % len(names)]
            self.tables[target] += [
                f"note{step}: text('note_{step}')",
                f"count{step}: integer('count_{step}').default(0).notNull()",
            ]
        elif kind == 3:
            target = names[step % len(names)]
            self.extras.setdefault(target, []).append(
                f"uniqueIndex('{target}_name_{step}_key').on(sql`lower(${{t.name}})`, t.createdAt)"
            )
        else:
            self.enum_values.append(f"v{step}")

    def render(self) -> str:
        lines = [
            "import { sql } from 'drizzle-orm';",
            "import { index, integer, numeric, pgEnum, pgTable, serial, text, timestamp, uniqueIndex }"
            " from 'drizzle-orm/pg-core';",
            "",
            f"export const state = pgEnum('state', {json.dumps(self.enum_values)});",
        ]
        for name, columns in self.tables.items():
            body = ",\n  ".join(columns)
            extras = self.extras.get(name)
            tail = f", (t) => [{', '.join(extras)}]" if extras else ""
            lines.append(f"\nexport const {name} = pgTable('{name}', {{\n  {body},\n}}{tail});")
        return "\n".join(lines) + "\n"


def folder_for(count: int, cache: Path) -> Path:
    """The generated folder of `count` migrations, from the cache when this generator made it before."""
    digest = hashlib.sha256(inspect.getsource(Schema).encode()).hexdigest()[:10]  # a new schema, a new folder
    folder = cache / f"drizzle-{count}-{digest}"
    if (folder / "meta" / "_journal.json").is_file():
        return folder
    schema, steps = Schema(), []
    for number in range(count):
        schema.evolve(number)
        steps.append(Step(f"step_{number:03d}", schema=schema.render()))
    log(f"generating {count} migrations with drizzle-kit (once; kept in {folder}) ...")
    started = time.monotonic()
    generate_folder(steps, folder.with_suffix(".partial"))
    folder.with_suffix(".partial").rename(folder)
    log(f"generated in {time.monotonic() - started:.0f}s")
    return folder


# --- the measurements -------------------------------------------------------------------------------------------


@dataclass
class Measure:
    variant: str
    run: int
    wall_s: float
    ok: bool
    load: float
    inner_ms: float | None = None
    error: str | None = None


@dataclass
class Bench:
    cluster: PostgresCluster
    folder: Path
    work: Path

    def database(self) -> str:
        name = f"m_{time.monotonic_ns()}"
        self._admin(f"CREATE DATABASE {name}")
        return name

    def drop(self, name: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def _admin(self, sql: str) -> None:
        connection = psycopg2.connect(self.cluster.admin_dsn())
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql)
        connection.close()

    def applied(self, name: str) -> int:
        return applied_migrations(self.cluster.admin_dsn(name))

    def pg_env(self, name: str) -> dict[str, str]:
        return {
            "PGHOST": str(self.cluster.socket_dir),
            "PGPORT": str(self.cluster.port),
            "PGUSER": self.cluster.superuser,
            "PGDATABASE": name,
        }

    def module_args(self, name: str) -> dict[str, object]:
        return {"migrations_dir": str(self.folder), "database_url": self.cluster.admin_dsn(name)}

    def run(self, variant: str, name: str) -> tuple[float, float | None]:
        """The variant on database `name`: wall seconds, and drizzle-orm's own time inside migrate()."""
        env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_LOCALHOST_WARNING": "0"}
        started = time.perf_counter()
        if variant == "drizzle-orm":
            result = drizzle_orm_migrate(self.folder, self.pg_env(name))
            if not result["ok"]:
                raise RuntimeError(f"drizzle-orm: {result}")
            return time.perf_counter() - started, float(result["ms"])  # type: ignore[arg-type]
        if variant == "module":
            args = self.work / "args.json"
            args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": self.module_args(name)}))
            module = REPO / "plugins" / "modules" / "wfops_drizzle_migrate.py"
            argv = [str(VENV_BIN / "python"), "-c", MODULE_PROCESS, str(module), str(args)]
        elif variant == "role":
            (self.work / "play.yml").write_text(PLAY)
            variables = {"migrate_database_url": self.cluster.admin_dsn(name), "migrate_source_dir": str(self.folder)}
            (self.work / "vars.json").write_text(json.dumps(variables))
            argv = [
                str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(self.work / "play.yml"),
                "-e", f"@{self.work / 'vars.json'}", "-e", f"ansible_python_interpreter={VENV_BIN / 'python'}",
            ]  # fmt: skip
        elif variant == "floor":
            (self.work / "floor.yml").write_text(FLOOR)
            argv = [
                str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(self.work / "floor.yml"),
                "-e", f"ansible_python_interpreter={VENV_BIN / 'python'}",
            ]  # fmt: skip
        else:
            argv = [
                str(VENV_BIN / "ansible"), "localhost", "-c", "local", "-o", "-m", "wfops_drizzle_migrate",
                "-e", f"ansible_python_interpreter={VENV_BIN / 'python'}", "-a", json.dumps(self.module_args(name)),
            ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, check=False)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{variant} exited {done.returncode}: {(done.stdout + done.stderr)[-800:]}")
        return wall, None


def measure_runs(bench: Bench, runs: int, expected: int) -> list[Measure]:
    measures = []
    for run in range(1, runs + 1):
        # Each run takes the variants in a different order, so a load trend does not favour the same one.
        order = VARIANTS[run % len(VARIANTS) :] + VARIANTS[: run % len(VARIANTS)]
        for variant in order:
            name = bench.database()
            load = round(os.getloadavg()[0], 2)
            try:
                wall, inner = bench.run(variant, name)
                applied = bench.applied(name) if variant != "floor" else expected
                if applied != expected:
                    raise RuntimeError(f"{applied} migrations recorded, {expected} expected")
                measures.append(Measure(variant, run, round(wall, 3), True, load, inner))
                log(f"run {run}: {variant}: {wall:.2f}s (load {load})")
            except RuntimeError as exc:
                measures.append(Measure(variant, run, 0.0, False, load, error=" ".join(str(exc).split())[:600]))
                log(f"run {run}: {variant}: FAILED {exc}")
            finally:
                bench.drop(name)
    return measures


# --- the report ---------------------------------------------------------------------------------------------------


def _ratios(measures: list[Measure], variant: str) -> list[float]:
    by_run: dict[int, dict[str, Measure]] = {}
    for m in measures:
        if m.ok:
            by_run.setdefault(m.run, {})[m.variant] = m
    return [
        round(v[variant].wall_s / v["drizzle-orm"].wall_s, 3)
        for _, v in sorted(by_run.items())
        if variant in v and "drizzle-orm" in v
    ]


def render(machine: dict[str, object], measures: list[Measure]) -> str:
    label: dict[str, str] = {
        "drizzle-orm": "drizzle-orm `migrate()` (node process)",
        "module": "wfops module (its process on the host)",
        "role": "wfops role (`ansible-playbook`, local)",
        "ad hoc": "wfops module ad hoc (`ansible localhost -m`)",
        "floor": "`ansible-playbook` with one ping task (no migration)",
    }
    lines = [
        "# Migrate: wfops beside drizzle-orm's migrate() (bench/migrate.py)",
        "",
        f"{machine['migrations']} migrations generated by drizzle-kit {machine['drizzle_kit']}, applied to a fresh "
        f"database by each variant, {machine['runs']} runs, variants in a rotating order within each run. "
        f"Machine: {machine['nproc']} cores, {machine['platform']}, PostgreSQL {machine['postgres']}, node "
        f"{machine['node']}, Python {machine['python']}. Load average (1 min) at the start {machine['load_at_start']}, "
        f"at the end {machine['load_at_end']}; the cores are shared with other work, so the ratios (taken side by "
        "side in each run) mean more than the absolute times.",
        "",
        "| variant | wall s, median (min-max) | ÷ drizzle-orm per run, median (min-max) | target | verdict | load |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for variant in VARIANTS:
        mine = [m for m in measures if m.variant == variant and m.ok]
        ratios = _ratios(measures, variant)
        target = TARGETS.get(variant)
        verdict = "—"
        if target is not None and ratios:
            value = statistics.median(ratios)
            verdict = "PASS" if value <= target else f"MISS by {value - target:.2f}x"
        loads = [m.load for m in mine]
        lines.append(
            f"| {label[variant]} | {spread([m.wall_s for m in mine])} | "
            f"{'1.00' if variant == 'drizzle-orm' else spread(ratios)} | "
            f"{f'<= {target}x' if target else '—'} | {verdict} | "
            f"{spread(loads) if loads else 'n/a'} |"
        )
    inner = [m.inner_ms / 1000 for m in measures if m.variant == "drizzle-orm" and m.ok and m.inner_ms]
    lines += ["", f"drizzle-orm's time inside `migrate()` alone (s): {spread(inner)}."]
    failed = [m for m in measures if not m.ok]
    if failed:
        lines += ["", "Failures:", *(f"- run {m.run}, {m.variant}: {m.error}" for m in failed)]
    analysis = REPO / "bench" / "MIGRATE-ANALYSIS.md"
    if analysis.is_file():
        lines += ["", analysis.read_text().strip()]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.migrate", description=__doc__)
    parser.add_argument("--migrations", type=int, default=160, help="migrations in the generated folder (160)")
    parser.add_argument("--runs", type=int, default=5, help="repetitions of every variant (5)")
    default_cache = Path("/tmp/wfops-bench-migrate")  # noqa: S108 - generated SQL only, no secret
    parser.add_argument("--cache", type=Path, default=default_cache, help="where generated folders are kept")
    parser.add_argument("--folder", type=Path, help="an existing migrations folder instead of a generated one")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "MIGRATE.md", help="the report to write")
    parser.add_argument("--report-only", action="store_true", help="re-render --out from its JSON (after the analysis)")
    return parser.parse_args(argv)


def _version(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report_only:
        raw = json.loads(args.out.with_suffix(".json").read_text())
        args.out.write_text(render(raw["machine"], [Measure(**m) for m in raw["measures"]]))
        return 0
    args.cache.mkdir(parents=True, exist_ok=True)
    folder = args.folder.resolve() if args.folder else folder_for(args.migrations, args.cache)
    expected = len(json.loads((folder / "meta" / "_journal.json").read_text())["entries"])
    work = Path(tempfile.mkdtemp(prefix="wfops-bench-migrate-"))
    cluster = PostgresCluster(base_dir=work / "pg", port=free_port())
    machine: dict[str, object] = {
        "migrations": expected,
        "runs": args.runs,
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "node": _version(["node", "--version"]),
        "drizzle_kit": json.loads((REPO / "sandbox-app/node_modules/drizzle-kit/package.json").read_text())["version"],
        "load_at_start": [round(v, 2) for v in os.getloadavg()],
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    try:
        cluster.init()
        cluster.start()
        machine["postgres"] = _version(["pg_config", "--version"]).removeprefix("PostgreSQL ")
        measures = measure_runs(Bench(cluster, folder, work), args.runs, expected)
    finally:
        cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)
    machine["load_at_end"] = [round(v, 2) for v in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(
        json.dumps({"machine": machine, "measures": [asdict(m) for m in measures]}, indent=2) + "\n"
    )
    args.out.write_text(render(machine, measures))
    log(f"wrote {args.out}")
    return 0 if all(m.ok for m in measures) else 1


if __name__ == "__main__":
    sys.exit(main())
