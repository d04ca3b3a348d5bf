"""The ledger's rules, on entries shaped as the roles write them: what serves, where a rollback goes, what a resumed
release carries, and the health check's version match (the same module_utils code the host runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wfops.ledger import BEFORE_LEDGER, Entry, Ledger, LedgerError, Serving, read_entries
from wfops.plugin_code import load
from wfops.results import RunSummary, render_history, render_table

load("wfops_http")  # wfops_dokploy's own import, as Ansible ships it with the module
dokploy = load("wfops_dokploy")

ORDER = ["preflight", "backup", "migrate", "normalize", "deploy", "smoke"]
BASELINE = {"release_run": BEFORE_LEDGER, "reported": "v0", "deployment_id": "d0", "rollback_id": "rb0", "healthy": 1}


class Host:
    """A ledger written the way release, deploy and rollback runs write it."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.deployments = 0

    @property
    def ledger(self) -> Ledger:
        return Ledger([Entry.from_dict(e) for e in self.entries])

    def release(self, ref: str, *, fails_in: str | None = None, backup: bool = True, **extra: Any) -> str:
        run_id = f"run-{len(self.entries) + 1}-{ref}"
        stop = ORDER.index(fails_in) if fails_in else len(ORDER)
        phases = {name: "ok" for name in ORDER[:stop]}
        if fails_in:
            phases[fails_in] = "failed"
        deployed = None
        if "deploy" in phases and not (fails_in == "deploy" and not extra.pop("switched", False)):
            self.deployments += 1
            deployed = {
                "release_run": run_id,
                "ref": ref,
                "commit": f"{self.deployments:07x}aaaa",
                "deployment_id": f"d{self.deployments}",
                "rollback_id": f"rb{self.deployments}",
                "reported": ref,
                "healthy": fails_in != "deploy",
            }
        self.entries.append(
            {
                "kind": "release",
                "run_id": run_id,
                "ref": ref,
                "status": "failed" if fails_in else "successful",
                "failed_phase": fails_in,
                "phases": phases,
                "backup_id": f"backup-{run_id}" if backup and "backup" in phases else None,
                "previous": self.ledger.serving.to_dict() if self.ledger.serving else BASELINE,
                "deployed": deployed,
                "serving": deployed,
                **extra,
            }
        )
        return run_id

    def rollback(self, **asked: str) -> dict[str, Any]:
        plan = self.ledger.rollback_plan(**asked)
        assert plan.code != "nowhere", plan.note
        serving = plan.target.to_dict() if plan.target else None
        self.entries.append(
            {
                "kind": "rollback",
                "run_id": f"run-{len(self.entries) + 1}-rollback",
                "ref": plan.target.version if plan.target else None,
                "status": "successful",
                "serving": serving,
                "rolled_back_run": plan.rolled_back_run,
                "rollback": {"status": "ok", "database": {}},
            }
        )
        return plan.to_dict()

    def serves(self) -> str | None:
        serving = self.ledger.serving
        return serving.version if serving else None


def test_rolling_back_twice_walks_back_two_healthy_releases_and_never_to_a_rolled_back_one() -> None:
    host = Host()
    host.release("A")
    host.release("B")
    assert host.serves() == "B"
    assert host.rollback()["target"]["ref"] == "A"
    assert host.serves() == "A"
    host.release("C")
    plan = host.rollback()
    assert plan["target"]["ref"] == "A", "B was rolled back from: it is never returned to"
    assert plan["rolled_back_ref"] == "C"
    assert host.rollback()["target"]["reported"] == "v0", "before A: what served before the ledger began"
    assert host.serves() == "v0" and host.ledger.serving.rollback_id == "rb0"
    final = host.ledger.rollback_plan()
    assert final.code == "nowhere" and "nothing to return to" in final.note


def test_a_release_whose_smoke_failed_is_left_for_the_last_healthy_one() -> None:
    host = Host()
    host.release("A")
    host.release("B", fails_in="smoke")
    assert host.serves() == "B", "its deploy went through: the bad release serves"
    plan = host.ledger.rollback_plan()
    assert (plan.code, plan.target.ref, plan.rolled_back_ref) == ("rollback", "A", "B")


def test_a_release_that_failed_before_its_deploy_needs_no_code_rollback_but_names_its_backup() -> None:
    host = Host()
    host.release("A")
    failed = host.release("B", fails_in="migrate")
    plan = host.ledger.rollback_plan()
    assert plan.code == "not needed" and "never served" in plan.note and "A" in plan.note
    assert (plan.backup_id, plan.backup_run) == (f"backup-{failed}", failed)
    host.rollback()
    assert host.ledger.rollback_plan().target.reported == "v0", "then a rollback undoes A"


def test_a_deploy_that_failed_its_health_check_serves_and_is_rolled_back_from() -> None:
    host = Host()
    host.release("A")
    host.release("B", fails_in="deploy", switched=True)
    assert host.serves() == "B" and host.ledger.serving.healthy is False
    assert host.ledger.rollback_plan().target.ref == "A"


def test_a_release_that_rolled_itself_back_is_dropped() -> None:
    host = Host()
    host.release("A")
    run = host.release("B", fails_in="smoke")
    host.entries[-1]["serving"] = host.entries[-1]["previous"]
    host.entries[-1]["rolled_back_run"] = run
    assert host.serves() == "A"
    assert host.ledger.rollback_plan().target.reported == "v0", "B is gone; A is the one to leave"


def test_rollback_to_names_any_release_the_ledger_knows() -> None:
    host = Host()
    host.release("A")
    host.release("B")
    host.release("C")
    plan = host.rollback(to_ref="A")
    assert plan["target"]["deployment_id"] == "d1"
    assert host.ledger.rollback_plan().target.reported == "v0", "B and C were skipped over: dropped"
    commit = host.ledger.find("C").commit
    assert host.ledger.find(commit[:8]).ref == "C", "a commit prefix names it too"
    assert host.ledger.rollback_plan(to_ref="never-released").target.ref == "never-released"


def test_a_database_only_rollback_leaves_the_release_to_roll_back_from() -> None:
    host = Host()
    host.release("A")
    host.release("B")
    host.entries.append({"kind": "rollback", "run_id": "db", "status": "successful", "rollback": {"database": {}}})
    assert host.ledger.rollback_plan().target.ref == "A"


def test_a_resumed_release_carries_the_interrupted_runs_backup() -> None:
    host = Host()
    first = host.release("R", fails_in="deploy")
    assert host.ledger.resume_point("R", "deploy", ORDER).run_id == first
    second = host.release("R", fails_in="smoke", backup=False, resumed_from=first, phases=None)
    host.entries[-1]["phases"] = {"deploy": "ok", "smoke": "failed"}
    point = host.ledger.resume_point("R", "smoke", ORDER)
    assert point.run_id == second and host.ledger.carried_backup(point) == f"backup-{first}"
    assert host.ledger.resume_point("R", "preflight", ORDER) is None


@pytest.mark.parametrize(
    ("scene", "start", "said"),
    [
        ("empty", "migrate", "the ledger records none"),
        ("other ref", "deploy", "which is S (run"),
        ("not finished", "normalize", "did not finish every phase before normalize (migrate failed)"),
        ("restored", "deploy", "the database was restored by rollback run"),
    ],
)
def test_a_resume_the_ledger_cannot_vouch_for_is_refused_in_one_sentence(scene: str, start: str, said: str) -> None:
    host = Host()
    if scene == "other ref":
        host.release("R", fails_in="deploy")
        host.release("S")
    if scene == "not finished":
        host.release("R", fails_in="migrate")
    if scene == "restored":
        host.release("R", fails_in="deploy")
        host.entries.append(
            {"kind": "rollback", "run_id": "rb", "status": "successful", "rollback": {"database": {"backup": "b"}}}
        )
    with pytest.raises(LedgerError, match=r"^(--from|the database)") as refused:
        host.ledger.resume_point("R", start, ORDER)
    assert said in str(refused.value) and str(refused.value).count(". ") == 0


def test_lines_of_the_earlier_shape_are_read(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    old = [
        {
            "kind": "release",
            "run_id": "r1",
            "ref": "A",
            "status": "successful",
            "phases": {"deploy": "ok", "smoke": "ok"},
            "backup_id": "backup-1",
            "previous_deployment": {"deploymentId": "d0", "rollbackId": "rb0"},
            "new_deployment": {"deploymentId": "d1", "rollbackId": "rb1", "status": "done"},
        },
        {
            "kind": "release",
            "run_id": "r2",
            "ref": "B",
            "status": "successful",
            "phases": {"deploy": "ok", "smoke": "ok"},
            "previous_deployment": {"deploymentId": "d1", "rollbackId": "rb1"},
            "new_deployment": {"deploymentId": "d2", "rollbackId": "rb2", "status": "done"},
        },
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in old))
    ledger = Ledger(read_entries(path))
    assert ledger.serving.deployment_id == "d2"
    assert ledger.rollback_plan().target.rollback_id == "rb1"


def test_a_line_that_is_not_an_entry_is_named(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_text('{"kind": "release", "run_id": "r1"}\nnot json\n')
    with pytest.raises(LedgerError, match="line 2 of the ledger"):
        read_entries(path)


@pytest.mark.parametrize(
    ("reported", "ref", "commit", "matches"),
    [
        ("3f1c2e9a7b5d4c3b2a190817263544536271809a", "v1.4.0", "3f1c2e9a7b5d4c3b2a190817263544536271809a", True),
        ("3f1c2e9", "v1.4.0", "3f1c2e9a7b5d4c3b2a190817263544536271809a", True),
        ("3f1c2e9a7b5d4c3b2a190817263544536271809a", "3f1c2e9a", None, True),
        ("v1.4.0", "v1.4.0", "3f1c2e9a7b5d4c3b2a190817263544536271809a", True),
        ("3f1c2e", "v1.4.0", "3f1c2e9a7b5d4c3b2a190817263544536271809a", False),
        ("4f1c2e9", "v1.4.0", "3f1c2e9a7b5d4c3b2a190817263544536271809a", False),
        ("v1.4", "v1.4.0", None, False),
    ],
)
def test_the_health_check_matches_a_version_by_ref_commit_or_sha_prefix(
    reported: str, ref: str, commit: str | None, matches: bool
) -> None:
    assert dokploy.Expected(ref, commit).matches(reported) is matches


def test_the_health_check_reads_the_version_at_a_json_path() -> None:
    body = {"status": "ok", "build": {"git": {"sha": "abc1234"}}, "items": [{"v": 1}]}
    assert dokploy.json_path(body, "build.git.sha") == "abc1234"
    assert dokploy.json_path(body, "$.build.git.sha") == "abc1234"
    assert dokploy.json_path(body, "items.0.v") == 1
    assert dokploy.json_path(body, "commit") is None and dokploy.json_path(body, "build.nope.sha") is None


def test_a_serving_record_describes_itself_for_people() -> None:
    serving = Serving(release_run="r9", ref="v2", commit="0123456789abcdef", deployment_id="d9")
    assert serving.describe() == "v2 (commit 0123456789ab, deployment d9, released by run r9)"
    assert Serving.from_dict({"ref": "", "healthy": 1, "unknown": "x"}) == Serving(healthy=True)


def test_history_marks_the_release_that_serves_and_names_it_last() -> None:
    host = Host()
    host.release("A")
    host.release("B")
    host.rollback()
    entries = [Entry.from_dict({**e, "finished_at": "2026-12-01T09:00:00Z", "who": "sre"}) for e in host.entries]
    text = render_history(entries, host.ledger.serving)
    lines = text.splitlines()
    marked = [line.split() for line in lines if line.split()[3:4] == ["*"]]
    assert [(parts[1], parts[2]) for parts in marked] == [("release", "A")], text
    assert any(" rollback " in line and "-> A" in line and "left run-2-B" in line for line in lines), text
    assert lines[-1].startswith("* serving now: A (commit 0000001aaaa, deployment d1, released by run run-1-A)")


def test_a_summary_keeps_its_rollback_commands_as_a_list() -> None:
    summary = {
        "run_id": "r1",
        "env": "local",
        "status": "failed",
        "phases": [],
        "started_at": "t0",
        "finished_at": "t1",
        "command": "release",
    }
    listed = RunSummary.from_dict({**summary, "rollback_command": ["wfops rollback --env local", "ansible-playbook x"]})
    table = render_table(listed)
    assert "to roll back:\n  wfops rollback --env local\n  ansible-playbook x" in table
    # summary.json files written before the commands were a list joined them with "|".
    older = RunSummary.from_dict({**summary, "rollback_command": "wfops rollback --env local | ansible-playbook x"})
    assert older.rollback_command == listed.rollback_command
