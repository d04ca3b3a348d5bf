#!/usr/bin/python
"""Ansible module: run a host command that ends with the run that started it (ansible.builtin.command does not)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: wfops_command
short_description: Run a command on the host that stops when its run is gone
description:
  - Runs I(argv) like M(ansible.builtin.command) (no shell), in a process group of its own, and returns its rc,
    stdout and stderr; a non-zero rc fails the task.
  - When the run that started it is gone (wfops or ansible-playbook killed, the SSH connection dropped) or the
    module is told to stop (SIGTERM, SIGINT), the command's whole process group gets SIGTERM, then SIGKILL after
    a grace period, so a long restore never goes on writing for nobody. M(ansible.builtin.command) leaves its
    command running in that case.
options:
  argv: {description: The command and its arguments., type: list, elements: str, required: true}
  grace:
    description: Seconds the command gets to stop after SIGTERM before SIGKILL.
    type: float
    default: 2
attributes:
  check_mode: {support: none, description: Like ansible.builtin.command, it runs nothing in check mode.}
  diff_mode: {support: none}
requirements: [python >= 3.9 on the host]
author: wfops
"""

EXAMPLES = r"""
- name: Restore the backup
  wfops_command:
    argv: [/usr/local/bin/weddingflo-backup, restore, backup-20261125-031500, --dbname, postgres]
  changed_when: true
"""

RETURN = r"""
rc: {description: The command's exit status., type: int, returned: always, sample: 0}
stdout: {description: Its standard output., type: str, returned: always, sample: '{"id": "backup-20261125-031500"}'}
stderr: {description: Its standard error., type: str, returned: always, sample: ""}
"""

import contextlib
import os
import signal
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.wfops_owner import OwnerWatch


def _end_group(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM to the command's process group, SIGKILL to what is left after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "argv": {"type": "list", "elements": "str", "required": True},
            "grace": {"type": "float", "default": 2},
        },
        supports_check_mode=False,
    )
    argv = module.params["argv"]
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
    except OSError as exc:
        module.fail_json(msg=f"cannot run {argv[0]}: {exc.strerror or exc}", rc=127, stdout="", stderr="")
    watch = OwnerWatch(lambda _why: _end_group(process, module.params["grace"])).start()
    try:
        stdout, stderr = process.communicate()
    except KeyboardInterrupt:
        _end_group(process, module.params["grace"])
        module.fail_json(msg=f"stopped: {watch.stopped_because}", rc=process.wait(), stdout="", stderr="")
    result = {
        "rc": process.returncode,
        "stdout": stdout.decode(errors="replace"),
        "stderr": stderr.decode(errors="replace"),
        "cmd": argv,
    }
    if process.returncode != 0:
        module.fail_json(msg="non-zero return code", **result)
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
