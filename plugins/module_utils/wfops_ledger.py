"""The host's ledger: one JSON line per release, standalone deploy, rollback, freeze and unfreeze.

It is the record of what serves. Every release, deploy and rollback writes the deployment that serves when it
ends (`serving`: ref, resolved commit, Dokploy deploymentId and rollbackId, the version the health endpoint
reported), so a rollback plans from the host alone. Rollbacks walk back like Ansistrano's: the target is the
last release that ended healthy before the one being left, and a release that was rolled back from is dropped,
so rolling back twice walks back two healthy releases and never lands on a release that was rolled back from.

The ledger is read by the roles (through the wfops_ledger module) and by the wrapper (src/wfops/ledger.py);
both use this file, so an entry has one shape. Lines of the earlier shape (`previous_deployment` /
`new_deployment`) are read too.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

# The runs that change which code serves; rollbacks change it back.
DEPLOYING_KINDS = ("release", "deploy")
# `release_run` of what served before the ledger's first deploy (observed by that deploy, not released by wfops).
BEFORE_LEDGER = "before-ledger"
_SHA = re.compile(r"[0-9a-fA-F]{7,64}")


class LedgerError(Exception):
    """A ledger that cannot answer the question asked; the message is one sentence for people."""


def is_sha(text: str) -> bool:
    return bool(_SHA.fullmatch(text))


def same_commit(one: str | None, other: str | None) -> bool:
    """Equal, or two SHAs of which one is a prefix of the other (7 characters at least, either way)."""
    if not one or not other:
        return False
    a, b = str(one).strip(), str(other).strip()
    if a == b:
        return True
    return is_sha(a) and is_sha(b) and (a.lower().startswith(b.lower()) or b.lower().startswith(a.lower()))


@dataclass
class Serving:
    """A deployment of the app: which code (ref, commit), where in Dokploy, and what its health endpoint said."""

    release_run: str | None = None  # the run that released this code, or BEFORE_LEDGER
    ref: str | None = None
    commit: str | None = None
    deployment_id: str | None = None
    rollback_id: str | None = None
    reported: str | None = None  # the version the health endpoint reported
    healthy: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Serving | None:
        if not data:
            return None
        texts = {f.name for f in fields(cls)} - {"healthy"}
        values: dict[str, Any] = {
            key: str(value) for key, value in data.items() if key in texts and value not in ("", None)
        }
        return cls(**values, healthy=bool(data.get("healthy")))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def version(self) -> str | None:
        """What names this code for a redeploy: its ref, else its commit, else what the app reported."""
        return self.ref or self.commit or self.reported

    def candidates(self) -> list[str]:
        """Every value the health endpoint may report for this code."""
        return [str(value) for value in (self.ref, self.commit, self.reported) if value]

    def same_release(self, other: Serving | None) -> bool:
        if other is None:
            return False
        if self.release_run and other.release_run:
            return self.release_run == other.release_run
        if self.rollback_id and other.rollback_id:
            return self.rollback_id == other.rollback_id
        if self.deployment_id and other.deployment_id:
            return self.deployment_id == other.deployment_id
        return bool(self.version) and self.version == other.version

    def describe(self) -> str:
        name = self.ref or self.commit or self.reported or "an unknown version"
        details = []
        if self.commit and self.commit != name:
            details.append(f"commit {self.commit[:12]}")
        if self.deployment_id:
            details.append(f"deployment {self.deployment_id}")
        if self.release_run == BEFORE_LEDGER:
            details.append("serving before the ledger began")
        elif self.release_run:
            details.append(f"released by run {self.release_run}")
        return f"{name} ({', '.join(details)})" if details else name


@dataclass
class Entry:
    """One line of the ledger."""

    kind: str  # release | deploy | rollback | freeze | unfreeze
    run_id: str = ""
    env: str = ""
    ref: str | None = None
    who: str = ""
    started_at: str = ""
    finished_at: str = ""
    status: str = ""  # successful | failed | interrupted
    failed_phase: str | None = None
    # An interrupted run: what stopped it (SIGINT, SIGTERM, SIGKILL, a lock released by force).
    interrupted_by: str | None = None
    phases: dict[str, str] = field(default_factory=dict)
    backup_id: str | None = None
    # A resumed release: the run whose earlier phases (and backup) it carries on from.
    resumed_from: str | None = None
    # release/deploy: what served before the run, and what it deployed.
    previous: Serving | None = None
    deployed: Serving | None = None
    # What serves when the run ended; None = unchanged by this run.
    serving: Serving | None = None
    # A code rollback (or a release that rolled itself back): the run whose code was left.
    rolled_back_run: str | None = None
    rollback: dict[str, Any] | None = None
    staged_run: str | None = None
    overrides: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    until: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values.setdefault("kind", "release")
        for key in ("previous", "deployed", "serving"):
            values[key] = Serving.from_dict(values.get(key))
        values["phases"] = dict(values.get("phases") or {})
        values["overrides"] = list(values.get("overrides") or [])
        entry = cls(**values)
        if "serving" not in data and ("new_deployment" in data or "previous_deployment" in data or entry.rollback):
            _read_earlier_shape(entry, data)
        return entry

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def healthy(self) -> bool:
        """A release or deploy that ended successful with its deployment healthy."""
        return self.status == "successful" and self.deployed is not None and self.deployed.healthy

    @property
    def restored_database(self) -> bool:
        """A rollback whose restore ran (its report exists only when the rollback phase completed)."""
        database = (self.rollback or {}).get("database") or {}
        return self.kind == "rollback" and bool(database.get("backup")) and not (self.rollback or {}).get("check_mode")


def _read_earlier_shape(entry: Entry, data: dict[str, Any]) -> None:
    """Lines written before `serving` existed: previous_deployment / new_deployment and the rollback's report."""
    new, old = data.get("new_deployment") or {}, data.get("previous_deployment") or {}
    if old and entry.previous is None:
        entry.previous = Serving(deployment_id=old.get("deploymentId"), rollback_id=old.get("rollbackId"), healthy=True)
    if new and new.get("status") == "done" and entry.deployed is None:
        entry.deployed = Serving(
            release_run=entry.run_id,
            ref=entry.ref,
            deployment_id=new.get("deploymentId"),
            rollback_id=new.get("rollbackId"),
            healthy=entry.phases.get("deploy") == "ok",
        )
        entry.serving = entry.deployed
    code = (entry.rollback or {}).get("code") or {}
    if entry.rollback and code.get("target") and (entry.rollback.get("status") or entry.status) in ("ok", "successful"):
        dokploy = code.get("method") == "dokploy rollback"
        entry.serving = Serving(ref=code.get("ref"), rollback_id=code["target"] if dokploy else None, healthy=True)
        entry.rolled_back_run = entry.run_id if entry.kind != "rollback" else entry.rollback.get("rolled_back_release")
    if entry.kind == "rollback" and entry.ref == "database only":
        entry.ref = None


def read_entries(path: str | Path) -> list[Entry]:
    """Every entry, oldest first; no ledger yet is an empty one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(Entry.from_dict(json.loads(line)))
        except (ValueError, TypeError) as exc:
            raise LedgerError(
                f"line {number} of the ledger {path} is not a ledger entry ({exc}): fix or remove it"
            ) from None
    return entries


def append_entry(path: str | Path, entry: dict[str, Any] | Entry) -> Entry:
    """One JSON line appended in a single write (O_APPEND), flushed to disk; the entry is read into its shape first."""
    typed = entry if isinstance(entry, Entry) else Entry.from_dict(entry)
    ledger = Path(path)
    ledger.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, (json.dumps(typed.to_dict()) + "\n").encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return typed


@dataclass
class RollbackPlan:
    """Where a code rollback goes and which backup a database rollback restores by default."""

    code: str  # "rollback" (to target) | "not needed" | "nowhere"
    note: str
    target: Serving | None = None
    serving: Serving | None = None
    rolled_back_run: str | None = None
    rolled_back_ref: str | None = None
    backup_id: str | None = None
    backup_run: str | None = None
    backup_ref: str | None = None
    release_started_at: str | None = None
    entries: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Ledger:
    """The entries, and what they say: what serves now and which healthy releases a rollback can return to."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.serving: Serving | None = None
        # Healthy releases not rolled back from, oldest first: where rollbacks walk back to.
        self.stack: list[Serving] = []
        self.rolled_back: set[str] = set()
        for entry in entries:
            self._apply(entry)

    def _apply(self, entry: Entry) -> None:
        if entry.kind in DEPLOYING_KINDS:
            if self.serving is None and entry.previous is not None:
                baseline = replace(entry.previous, release_run=entry.previous.release_run or BEFORE_LEDGER)
                self.serving = baseline
                if baseline.healthy:
                    self.stack.append(baseline)
            if entry.healthy and entry.deployed is not None:
                self.stack.append(entry.deployed)
        elif entry.kind != "rollback":
            return
        # A rollback records serving and the run it left only once its code went back (its smoke may fail after).
        if entry.rolled_back_run:
            self.rolled_back.add(entry.rolled_back_run)
        if entry.serving is not None:
            self._now_serves(entry.serving, from_rollback=entry.kind == "rollback")

    def _now_serves(self, serving: Serving, from_rollback: bool) -> None:
        position = next((i for i in range(len(self.stack) - 1, -1, -1) if self.stack[i].same_release(serving)), None)
        if position is not None:
            # Everything released after what serves again is dropped: it was rolled back from (or skipped over).
            self.rolled_back.update(s.release_run for s in self.stack[position + 1 :] if s.release_run)
            del self.stack[position + 1 :]
        elif from_rollback and serving.healthy:
            self.stack.append(serving)
        self.serving = serving

    def code_runs(self) -> list[Entry]:
        return [entry for entry in self.entries if entry.kind in DEPLOYING_KINDS]

    def current_run(self) -> Entry | None:
        """The newest release or deploy not rolled back yet: what a rollback undoes."""
        return next((e for e in reversed(self.code_runs()) if e.run_id not in self.rolled_back), None)

    def known_servings(self) -> list[Serving]:
        """Every deployment the ledger knows, newest first (what --to can name)."""
        found: list[Serving] = []
        for entry in reversed(self.entries):
            for serving in (entry.deployed, entry.serving, entry.previous):
                if serving is not None:
                    found.append(serving)
        return found

    def find(self, ref: str = "", rollback_id: str = "") -> Serving | None:
        """The newest known deployment of a ref (or commit, or reported version) or a Dokploy rollbackId."""
        matches = [
            s
            for s in self.known_servings()
            if (rollback_id and s.rollback_id == rollback_id)
            or (ref and (ref in (s.ref, s.reported) or same_commit(ref, s.commit)))
        ]
        return next((s for s in matches if s.healthy), matches[0] if matches else None)

    def newest_backup(self) -> Entry | None:
        """The newest release that took (or carries) a backup: what a database rollback restores by default."""
        return next((e for e in reversed(self.entries) if e.kind == "release" and e.backup_id), None)

    def rollback_plan(
        self, to_ref: str = "", to_rollback_id: str = "", to_serving: Serving | None = None
    ) -> RollbackPlan:
        current = self.current_run()
        backup = self.newest_backup()
        plan = RollbackPlan(
            code="nowhere",
            note="",
            serving=self.serving,
            rolled_back_run=current.run_id if current else None,
            rolled_back_ref=current.ref if current else None,
            backup_id=backup.backup_id if backup else None,
            backup_run=backup.run_id if backup else None,
            backup_ref=backup.ref if backup else None,
            release_started_at=current.started_at if current else None,
            entries=len(self.entries),
        )
        if to_serving is not None or to_ref or to_rollback_id:
            plan.target = to_serving or self.find(to_ref, to_rollback_id)
            if plan.target is None:
                plan.target = Serving(ref=to_ref or None, rollback_id=to_rollback_id or None)
            elif to_ref and not to_rollback_id and plan.target.ref is None:
                plan.target = replace(plan.target, ref=to_ref)
            plan.code, plan.note = "rollback", f"to {plan.target.describe()}, as asked"
            return plan
        if current is None:
            said = (
                f"every release in the ledger was rolled back from and {self.serving.describe()} serves"
                if self.code_runs() and self.serving
                else "the ledger records no release or deploy"
            )
            plan.note = f"{said}, so there is nothing to return to: name a release with --to REF"
            return plan
        serves = current.deployed is not None and current.deployed.same_release(self.serving)
        if not serves:
            still = self.serving.describe() if self.serving else "the deployment before it"
            plan.code = "not needed"
            plan.note = f"the code of {current.ref} (run {current.run_id}) never served; {still} still serves"
            return plan
        plan.target = next((s for s in reversed(self.stack) if not s.same_release(current.deployed)), None)
        if plan.target is None:
            plan.note = (
                f"no release before {current.ref} (run {current.run_id}) ended healthy in the ledger, so there is "
                "nothing to return to: name one with --to REF (-e rollback_to_ref=REF)"
            )
            return plan
        plan.code = "rollback"
        plan.note = f"from {current.ref} (run {current.run_id}) to {plan.target.describe()}"
        return plan

    def effective_phases(self, entry: Entry, depth: int = 0) -> dict[str, str]:
        """A release's phases, with those of the run it resumed (and that one's) underneath."""
        earlier: dict[str, str] = {}
        if entry.resumed_from and depth < 50:
            base = next((e for e in self.entries if e.kind == "release" and e.run_id == entry.resumed_from), None)
            if base is not None:
                earlier = self.effective_phases(base, depth + 1)
        return {**earlier, **{name: status for name, status in entry.phases.items() if status != "skipped"}}

    def carried_backup(self, entry: Entry) -> str | None:
        seen = 0
        while entry is not None and seen < 50:
            if entry.backup_id:
                return entry.backup_id
            entry = next((e for e in self.entries if e.kind == "release" and e.run_id == entry.resumed_from), None)
            seen += 1
        return None

    def resume_point(self, ref: str, start: str, order: list[str]) -> Entry | None:
        """The interrupted release of `ref` that a release starting at `start` carries on, or LedgerError."""
        if start not in order:
            raise LedgerError(f"--from {start} is not a release phase; a release runs {', '.join(order)}")
        if start == order[0]:
            return None
        fresh = f"release {ref} from the start (--from {order[0]})"
        releases = [e for e in self.entries if e.kind == "release"]
        if not releases:
            raise LedgerError(f"--from {start} resumes a release, but the ledger records none: {fresh}")
        last = releases[-1]
        if last.ref != ref:
            raise LedgerError(
                f"--from {start} resumes the last release on this host, which is {last.ref} (run {last.run_id}), "
                f"not {ref}: {fresh}"
            )
        position = self.entries.index(last)
        restored = next((e for e in self.entries[position + 1 :] if e.restored_database), None)
        if restored is not None:
            raise LedgerError(
                f"the database was restored by rollback run {restored.run_id} after {ref}'s run {last.run_id}, "
                f"so its earlier phases no longer hold: {fresh}"
            )
        phases = self.effective_phases(last)
        missing = [name for name in order[: order.index(start)] if phases.get(name) != "ok"]
        if missing:
            said = ", ".join(f"{name} {phases.get(name, 'not run')}" for name in missing)
            raise LedgerError(
                f"--from {start}: run {last.run_id} of {ref} did not finish every phase before {start} ({said}); "
                f"resume from {missing[0]} (--from {missing[0]})"
            )
        return last
