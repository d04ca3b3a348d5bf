"""A copy of the checkout with an environment of its own, `unit`: this machine over a local connection, settings
that satisfy the guard, a host tree under the copy. Tests replace roles in it to drive the wrapper alone."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from checkout import REPO, copy_checkout

# An environment of the copied project's own (environments are the inventories that exist): this machine, over a
# local connection, with settings that satisfy the guard; the stand-in roles never connect.
UNIT_INVENTORY = """---
unit:
  children:
    weddingflo:
      hosts:
        unit-host:
          ansible_connection: local
          ansible_python_interpreter: "{{ ansible_playbook_python }}"
"""
UNIT_VARS = """---
wfops_env: unit
wfops_sandbox: true
wfops_app_dir: /nonexistent-app
wfops_database_url: postgresql://postgres@127.0.0.1:1/weddingflo
wfops_dokploy_url: http://127.0.0.1:1
wfops_dokploy_service_id: unit-app
wfops_dokploy_api_key: not-a-real-key
wfops_app_url: http://127.0.0.1:1
wfops_smoke_email: smoke@weddingflo.test
wfops_smoke_password: not-a-real-password
wfops_host_root: "{{ lookup('ansible.builtin.env', 'WFOPS_UNIT_HOST_ROOT') }}"
release_become: false
# As the sandbox: releases resumed on a host whose ledger records none (a test sets it true to check the rule).
release_check_resume: false
"""


def copy_project(root: Path) -> Path:
    """A copy of the checkout (everything a run reads) with an environment `unit` of its own."""
    copy_checkout(root)
    (root / "inventory" / "unit.yml").write_text(UNIT_INVENTORY)
    (root / "group_vars" / "unit").mkdir()
    (root / "group_vars" / "unit" / "vars.yml").write_text(UNIT_VARS)
    return root


# Stand-in phase roles: one that reports ok (with the facts given), one that fails as a migration would.
FAILING_ROLE = """---
- name: Apply the pending migrations
  ansible.builtin.fail:
    msg: migration 0027 failed half-way
"""


def ok_role(stats_key: str, **facts: object) -> str:
    """A role that only reports `status: ok` (and `facts`) under its set_stats key."""
    report = json.dumps({stats_key: {"status": "ok", "duration_s": 0.1, **facts}})
    return f"---\n- name: Report\n  ansible.builtin.set_stats:\n    data: {report}\n    per_host: false\n"


def replace_role(root: Path, role: str, tasks: str) -> None:
    (root / "roles" / role / "tasks" / "main.yml").write_text(tasks)


def unit_env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a wfops command on the copy runs with."""
    import os

    return {**os.environ, "WFOPS_HOME": str(root), "WFOPS_UNIT_HOST_ROOT": str(root / "host"), **(extra or {})}


def start_wfops(root: Path, *args: str) -> subprocess.Popen[str]:
    """`wfops ARGS` on the copy in the background, in a session of its own, its output on pipes."""
    return subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "wfops"), *args],
        env=unit_env(root),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
