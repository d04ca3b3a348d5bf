#!/usr/bin/python
"""Ansible module: the runbook's eight post-release signals (phase 7), each ok / warn / fail with evidence."""

from __future__ import annotations

DOCUMENTATION = r"""
module: wfops_monitor
short_description: The runbook's eight first-day signals, each ok, warn or fail with evidence and the action
description:
  - 500 errors, auth failures, chatbot errors and RLS violations counted in the app's log (the output of
    I(log_command), lines older than the window dropped); slow queries from pg_stat_statements (or
    pg_stat_activity); SSE reachability; client stats drift and legacy enum values from the data invariants.
  - Read-only; runs the same in check mode.
options:
  database_url: {description: Any libpq URL or key=value conninfo (wfops_pg.connect)., type: str, required: true}
  log_command:
    description: argv printing the app's log (docker service logs ...).
    type: list
    elements: str
    default: []
  window: {description: Seconds of log to look at., type: float, default: 900}
  patterns:
    description: Regular expressions per log signal (errors_500, auth_failures, chatbot_errors, rls_violations).
    type: dict
    required: true
  thresholds:
    description:
      - "Per signal, [warn above, fail above] counts in the window."
      - Keys errors_500, auth_failures, chatbot_errors, rls_violations, slow_queries.
    type: dict
    default: {}
  slow_query_ms: {description: A statement slower than this is slow., type: float, default: 5000}
  app_url: {description: The app's base URL (for the SSE check)., type: str, required: true}
  sse_path: {description: The SSE endpoint., type: str, default: /api/chatbot/stream}
  sse_timeout: {description: Seconds for the first SSE event., type: float, default: 5}
  invariants:
    description: The data invariants (files/invariants.yml).
    type: list
    elements: dict
    required: true
author: wfops
"""

EXAMPLES = r"""
- name: Check the eight signals
  wfops_monitor:
    database_url: "{{ wfops_database_url }}"
    log_command: [docker, service, logs, --since, 15m, --timestamps, weddingflo]
    patterns:
      errors_500: ' 5\d\d( |$)'
      auth_failures: '\[auth\]'
      chatbot_errors: 'chatbot.* 5\d\d'
      rls_violations: row-level security
    app_url: https://app.example.com
    invariants: "{{ (lookup('ansible.builtin.file', 'files/invariants.yml') | from_yaml).invariants }}"
"""

RETURN = r"""
signals: {description: Each signal's name, status, evidence, action and example lines., type: list, returned: always}
failed_signals: {description: Names of the failing signals., type: list, returned: always}
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.wfops_monitor import Settings, Thresholds, as_dicts, check_all
from ansible.module_utils.wfops_pg import PSYCOPG2_HINT, DatabaseError, connect, psycopg2_missing


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "database_url": {"type": "str", "required": True, "no_log": True},
            "log_command": {"type": "list", "elements": "str", "default": []},
            "window": {"type": "float", "default": 900},
            "patterns": {"type": "dict", "required": True},
            "thresholds": {"type": "dict", "default": {}},
            "slow_query_ms": {"type": "float", "default": 5000},
            "app_url": {"type": "str", "required": True},
            "sse_path": {"type": "str", "default": "/api/chatbot/stream"},
            "sse_timeout": {"type": "float", "default": 5},
            "invariants": {"type": "list", "elements": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    missing = psycopg2_missing()
    if missing:
        module.fail_json(msg=missing_required_lib(PSYCOPG2_HINT), exception=missing)
    p = module.params
    thresholds = Thresholds(**{key: tuple(value) for key, value in p["thresholds"].items()})
    settings = Settings(
        log_argv=p["log_command"],
        window_s=p["window"],
        patterns=p["patterns"],
        thresholds=thresholds,
        slow_query_ms=p["slow_query_ms"],
        app_url=p["app_url"],
        sse_path=p["sse_path"],
        sse_timeout_s=p["sse_timeout"],
        invariants=p["invariants"],
    )
    try:
        connection = connect(p["database_url"], "wfops-monitor")
        try:
            signals = check_all(connection, settings)
        finally:
            connection.close()
    except DatabaseError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(
        changed=False, signals=as_dicts(signals), failed_signals=[s.name for s in signals if s.status == "fail"]
    )


if __name__ == "__main__":
    main()
