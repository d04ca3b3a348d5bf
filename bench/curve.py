"""The cost curve (issue 24): each phase's time against the number of guests, wfops beside the bare commands, a
straight line fitted to each (slope per million guests, fixed cost), the table for RESULTS.md and the plot."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.scenarios import Measure

# The marginal cost of wfops per million guests may be at most this many times the bare commands'.
SLOPE_LIMIT = 1.3
# The writer's worst stall during the normalisation, at every size.
STALL_LIMIT_MS = 100.0
PLOT = "curve.png"
NA = "n/a"


@dataclass(frozen=True)
class Phase:
    """One phase of the curve: what is timed on each side (None: the measure does not have it)."""

    name: str
    title: str
    scenario: str
    wfops: Callable[[Measure], float | None]
    bare: Callable[[Measure], float | None]


def _phase(name: str) -> Callable[[Measure], float | None]:
    return lambda m: m.phases.get(name)


def _wall(m: Measure) -> float:
    return m.wall_s


PHASES = (
    Phase("release", "release (whole command) vs the bare script", "release", _wall, _wall),
    Phase("normalize", "normalisation phase vs the four plain UPDATEs", "normalize", _phase("normalize"), _wall),
    Phase("backup", "backup phase vs bare pg_dump -Fc", "backup", _phase("backup"), _wall),
    Phase("rollback", "database rollback (whole command, smoke incl.) vs dump + restore", "rollback", _wall, _wall),
    Phase("migrate", "migrate phase vs the migrations through psql -1", "migrate", _phase("migrate"), _wall),
)


@dataclass
class Fit:
    """t = fixed_s + slope_s_per_m * guests / 1e6, by least squares; `r2` how well the line explains the points."""

    slope_s_per_m: float
    fixed_s: float
    r2: float
    points: int

    def at(self, guests: float) -> float:
        return self.fixed_s + self.slope_s_per_m * guests / 1e6


def fit(points: list[tuple[int, float]]) -> Fit | None:
    """The least-squares line through (guests, seconds), or None below two sizes."""
    if len({g for g, _ in points}) < 2:
        return None
    xs, ys = [g / 1e6 for g, _ in points], [t for _, t in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    fixed = my - slope * mx
    total = sum((y - my) ** 2 for y in ys)
    residual = sum((y - (fixed + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    return Fit(round(slope, 3), round(fixed, 3), round(1 - residual / total, 4) if total else 1.0, len(points))


def _median_by_size(measures: list[Measure], scenario: str, variant: str, pick: Callable[[Measure], float | None]):
    by_size: dict[int, list[float]] = {}
    for m in measures:
        if m.scenario == scenario and m.variant == variant and m.ok and (value := pick(m)) is not None:
            by_size.setdefault(m.guests, []).append(float(value))
    return {size: statistics.median(values) for size, values in sorted(by_size.items())}


def series(measures: list[Measure], phase: Phase) -> dict[str, dict[int, float]]:
    """{variant: {guests: median seconds}} for the phase."""
    return {
        "wfops": _median_by_size(measures, phase.scenario, "wfops", phase.wfops),
        "bare": _median_by_size(measures, phase.scenario, "bare", phase.bare),
    }


def writer_max(measures: list[Measure], scenario: str, variant: str) -> dict[int, float]:
    """The writer's worst latency (ms) over the runs at each size."""
    worst: dict[int, float] = {}
    for m in measures:
        if m.scenario == scenario and m.variant == variant and m.ok and m.writer:
            worst[m.guests] = max(worst.get(m.guests, 0.0), float(m.writer["max_ms"]))
    return dict(sorted(worst.items()))


def _segments(points: dict[int, float]) -> str:
    """Seconds per extra million guests between consecutive sizes: a line has them all alike."""
    sizes = sorted(points)
    return ", ".join(f"{(points[b] - points[a]) / ((b - a) / 1e6):.1f}" for a, b in itertools.pairwise(sizes))


def _m(guests: int) -> str:
    return f"{guests / 1e6:g}M" if guests >= 1_000_000 else f"{guests / 1e3:g}k"


def table(measures: list[Measure]) -> list[str]:
    """RESULTS.md's curve section: seconds per size, the fitted line of each side, and the verdicts."""
    sizes = sorted({m.guests for m in measures})
    lines = [
        "| phase | side | " + " | ".join(_m(s) for s in sizes) + " | s per extra 1M, size to size | "
        "fitted s per 1M | fixed s | R² |",
        "| --- | --- | " + " | ".join("---" for _ in sizes) + " | --- | --- | --- | --- |",
    ]
    verdicts = []
    for phase in PHASES:
        sides = series(measures, phase)
        fits = {side: fit(list(points.items())) for side, points in sides.items()}
        if not sides["wfops"] and not sides["bare"]:
            continue
        for side, points in sides.items():
            line = fits[side]
            cells = [f"{points[s]:.2f}" if s in points else "n/a" for s in sizes]
            lines.append(
                f"| {phase.name} | {side} | "
                + " | ".join(cells)
                + f" | {_segments(points) or 'n/a'} | {line.slope_s_per_m if line else 'n/a'} | "
                f"{line.fixed_s if line else 'n/a'} | {line.r2 if line else 'n/a'} |"
            )
        w, b = fits["wfops"], fits["bare"]
        if w and b and b.slope_s_per_m > 0:
            ratio = w.slope_s_per_m / b.slope_s_per_m
            verdict = "PASS" if ratio <= SLOPE_LIMIT else f"MISS ({ratio / SLOPE_LIMIT * 100 - 100:.0f}% over)"
            verdicts.append(
                f"| {phase.title}: wfops's s per 1M ÷ bare's <= {SLOPE_LIMIT} | {w.slope_s_per_m} ÷ "
                f"{b.slope_s_per_m} = {ratio:.2f} (fixed {w.fixed_s} s vs {b.fixed_s} s) | {verdict} |"
            )
    stalls = writer_max(measures, "normalize", "wfops")
    if stalls:
        worst = max(stalls.values())
        shown = ", ".join(f"{_m(s)} {v:.0f}" for s, v in stalls.items())
        verdicts.append(
            f"| writer's worst stall during the normalisation <= {STALL_LIMIT_MS:.0f} ms at every size | {shown} | "
            f"{'PASS' if worst <= STALL_LIMIT_MS else 'MISS'} |"
        )
    for variant in ("wfops", "bare"):
        migrate = writer_max(measures, "migrate", variant)
        if migrate:
            shown = ", ".join(f"{_m(s)} {v:.0f}" for s, v in migrate.items())
            verdicts.append(f"| writer's worst stall during the migrations, {variant} (ms) | {shown} | measured |")
    out = ["| target | measured | verdict |", "| --- | --- | --- |", *verdicts, "", *lines]
    return [*out, "", *backup_disk(measures), "", *limits(measures)]


def backup_disk(measures: list[Measure]) -> list[str]:
    """The archive beside the free-disk check's estimate at each size (what the README's limits are taken from)."""
    rows = [
        m for m in measures if m.scenario == "backup" and m.variant == "wfops" and m.ok and m.extra.get("size_bytes")
    ]
    if not rows:
        return []
    lines = [
        "| guests | database MB | tables MB (catalog) | archive MB | archive ÷ tables | the check's estimate MB |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    seen: set[int] = set()
    for m in sorted(rows, key=lambda m: m.guests):
        if m.guests in seen:
            continue
        seen.add(m.guests)
        size, tables = m.extra["size_bytes"], m.extra.get("table_bytes")
        estimate = m.extra.get("estimated_size_bytes")
        lines.append(
            f"| {m.guests:,} | {(m.extra.get('database_bytes') or 0) / 1e6:.0f} | "
            f"{tables / 1e6 if tables else 0:.0f} | {size / 1e6:.0f} | {size / tables if tables else 0:.2f} | "
            f"{estimate / 1e6 if estimate else 0:.0f} |"
        )
    return lines


LIMIT_SIZES = (1_000_000, 10_000_000)


def _fitted(points: dict[int, float], guests: int) -> float | None:
    line = fit(list(points.items()))
    return line.at(guests) if line else None


def limits(measures: list[Measure]) -> list[str]:
    """What an SRE plans with, read off the fitted lines at 1M and 10M guests: the release and the database rollback
    (whole commands), the backup archive, the backup plus the rollback's safety dump, and what the free-disk check
    asks for (the backup tool's own estimate)."""
    release = series(measures, PHASES[0])["wfops"]
    rollback = series(measures, PHASES[3])["wfops"]
    backups = [m for m in measures if m.scenario == "backup" and m.variant == "wfops" and m.ok]
    archive = {m.guests: float(m.extra["size_bytes"]) for m in backups if m.extra.get("size_bytes")}
    estimate = {
        m.guests: float(m.extra["estimated_size_bytes"]) for m in backups if m.extra.get("estimated_size_bytes")
    }
    database = {m.guests: float(m.extra["database_bytes"]) for m in backups if m.extra.get("database_bytes")}
    if len(release) < 2:
        return []

    def cell(points: dict[int, float], guests: int, scale: float, unit: str) -> str:
        value = _fitted(points, guests)
        return f"{value / scale:.1f} {unit}" if value is not None else NA

    lines = [
        "| guests | release | database rollback | backup archive | archive + safety dump | free-disk check asks "
        "(per dump) | database |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for guests in LIMIT_SIZES:
        both = {g: 2 * v for g, v in archive.items()}
        lines.append(
            f"| {_m(guests)} | {cell(release, guests, 60, 'min')} | {cell(rollback, guests, 60, 'min')} | "
            f"{cell(archive, guests, 1e9, 'GB')} | {cell(both, guests, 1e9, 'GB')} | "
            f"{cell(estimate, guests, 1e9, 'GB')} | {cell(database, guests, 1e9, 'GB')} |"
        )
    return lines


def plot(measures: list[Measure], path: Path) -> Path | None:
    """Time against guests for every phase, wfops and bare with their fitted lines, and the writer's worst stall."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    sizes = sorted({m.guests for m in measures})
    if not sizes:
        return None
    figure, axes = pyplot.subplots(2, 3, figsize=(15, 9))
    for ax, phase in zip(axes.flat, PHASES, strict=False):
        for side, colour in (("wfops", "tab:blue"), ("bare", "tab:orange")):
            points = series(measures, phase)[side]
            if not points:
                continue
            xs = [g / 1e6 for g in points]
            ax.plot(xs, list(points.values()), "o", color=colour, label=side)
            line = fit(list(points.items()))
            if line:
                ends = [0, max(sizes) / 1e6]
                ax.plot(ends, [line.at(e * 1e6) for e in ends], "-", color=colour, alpha=0.6,
                        label=f"{side}: {line.fixed_s:.1f} s + {line.slope_s_per_m:.1f} s/M")  # fmt: skip
        ax.set_title(phase.title, fontsize=9)
        ax.set_xlabel("guests (millions)")
        ax.set_ylabel("seconds")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    stall = axes.flat[len(PHASES)]
    for scenario, variant, style in (
        ("normalize", "wfops", "o-"),
        ("migrate", "wfops", "s-"),
        ("migrate", "bare", "s--"),
    ):
        worst = writer_max(measures, scenario, variant)
        if worst:
            stall.plot([g / 1e6 for g in worst], list(worst.values()), style, label=f"{scenario} {variant}")
    stall.axhline(STALL_LIMIT_MS, color="red", linewidth=0.8, label=f"{STALL_LIMIT_MS:.0f} ms")
    stall.set_yscale("log")
    stall.set_title("the concurrent writer's worst stall", fontsize=9)
    stall.set_xlabel("guests (millions)")
    stall.set_ylabel("ms (log)")
    stall.grid(alpha=0.3)
    stall.legend(fontsize=8)
    figure.suptitle("wfops vs the bare commands against the number of guests (2-core host)")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    pyplot.close(figure)
    return path
