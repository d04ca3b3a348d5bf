"""Retention never deletes the last good copy: properties over many ages, counts and kinds of backups."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from backup_helpers import load_tool_module, run_tool, tool_env

tool = load_tool_module()
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)

backup_specs = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=60 * 24 * 40),  # age in minutes, up to 40 days
        st.sampled_from(["release", "scheduled", "manual", "pre-rollback"]),
        st.sampled_from(["good", "corrupt", "missing"]),
    ),
    min_size=0,
    max_size=14,
    unique_by=lambda spec: spec[0],
)


def _make_backups(directory: Path, specs: list[tuple[int, str, str]], now: dt.datetime = NOW) -> list:
    backups = []
    for age, reason, state in specs:
        created = now - dt.timedelta(minutes=age)
        backup_id = created.strftime("backup-%Y%m%d-%H%M%S")
        manifest = {
            "id": backup_id,
            "created_at": created.isoformat(),
            "reason": reason,
            "pinned": reason == "release",
            "release_ref": f"ref-{age}",
            "size_bytes": 4,
            "verification": {"result": "failed" if state == "corrupt" else "ok"},
        }
        if state != "missing":
            (directory / f"{backup_id}.dump").write_bytes(b"PGDM")
        (directory / f"{backup_id}.json").write_text(json.dumps(manifest))
        backups.append(tool.Backup(backup_id, directory, manifest))
    return backups


@settings(max_examples=300, deadline=None)
@given(specs=backup_specs, days=st.integers(min_value=0, max_value=14), min_count=st.integers(min_value=0, max_value=5))
def test_retention_keeps_what_it_must(specs, days, min_count) -> None:
    with tempfile.TemporaryDirectory() as directory:
        backups = _make_backups(Path(directory), specs)
        decisions = {d.backup_id: d for d in tool.retention_decisions(backups, NOW, days, min_count)}
        assert set(decisions) == {b.backup_id for b in backups}
        kept = {name for name, decision in decisions.items() if decision.keep}
        newest_first = sorted(backups, key=lambda b: b.created_at, reverse=True)
        if newest_first:
            assert newest_first[0].backup_id in kept, "the newest backup is never deleted"
        for backup in backups:
            if NOW - backup.created_at < dt.timedelta(days=days):
                assert backup.backup_id in kept, "a backup inside the window is never deleted"
        good = [b for b in newest_first if b.good]
        assert {b.backup_id for b in good[:min_count]} <= kept, "the newest good copies are kept"
        assert len(kept & {b.backup_id for b in good}) >= min(min_count, len(good))
        releases = [b for b in newest_first if b.manifest["reason"] == "release"]
        if releases:
            assert releases[0].backup_id in kept, "the latest release backup stays pinned"
        for decision in decisions.values():
            assert decision.keep == (decision.reasons != ("past retention",))


def test_prune_dry_run_shows_every_decision_and_prune_deletes_only_those(tmp_path: Path) -> None:
    directory = tmp_path / "backups"
    directory.mkdir(mode=0o700)
    ages_days = [0, 1, 5, 8, 9, 10, 20, 30]
    specs = [(days * 24 * 60 + 7, "release" if days in (9, 20) else "scheduled", "good") for days in ages_days]
    # Creation times relative to the real clock, as prune uses now().
    backups = _make_backups(directory, specs, now=dt.datetime.now(dt.UTC))
    env = tool_env(
        "postgresql://unused@127.0.0.1:1/x", directory, BACKUP_RETENTION_DAYS="7", BACKUP_RETENTION_MIN_COUNT="4"
    )
    dry = run_tool(env, "prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert len(lines) == len(backups)
    by_age = dict(zip(ages_days, sorted(backups, key=lambda b: b.created_at, reverse=True), strict=True))
    would_delete = {line.split()[2].rstrip(":") for line in lines if line.startswith("would delete")}
    # 0, 1, 5 days: inside the window; 8: fourth newest good copy; 9: the latest release; rest: past.
    assert would_delete == {by_age[d].backup_id for d in (10, 20, 30)}
    assert sorted(p.name for p in directory.glob("*.dump")) == sorted(f"{b.backup_id}.dump" for b in backups)

    pruned = json.loads(run_tool(env, "prune", "--json").stdout)
    assert set(pruned["deleted"]) == would_delete
    remaining = {p.stem for p in directory.glob("backup-*.dump")}
    assert remaining == {b.backup_id for b in backups} - would_delete
    assert not any((directory / f"{name}.json").exists() for name in would_delete)
    assert directory.stat().st_mode & 0o777 == 0o700


def test_a_backup_without_a_release_is_never_pinned_as_a_release_backup(tmp_path: Path) -> None:
    # Past retention, all of them: only the pin could keep one (besides the newest).
    specs = [(20 * 24 * 60, "release", "good"), (30 * 24 * 60, "release", "good"), (40 * 24 * 60, "release", "good")]
    newest, real_release, legacy = _make_backups(tmp_path, specs)
    # What `wfops run backup` used to write for a backup outside any release: reason release, ref "unset", pinned.
    legacy.manifest["release_ref"] = "unset"
    newest.manifest["release_ref"] = None

    decisions = {d.backup_id: d for d in tool.retention_decisions([newest, real_release, legacy], NOW, 7, 0)}

    assert decisions[real_release.backup_id].reasons == (f"pinned by release {real_release.manifest['release_ref']}",)
    assert decisions[legacy.backup_id].keep is False
    assert tool.release_pin("release", "abc123") and not tool.release_pin("release", "unset")
    assert not tool.release_pin("manual", "abc123") and not tool.release_pin("release", None)
