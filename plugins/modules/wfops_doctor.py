#!/usr/bin/python
"""Ansible module: what the phases will meet on this host, checked read-only (wfops doctor)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: wfops_doctor
short_description: Check the database, Dokploy and the app as the phases reach them, changing nothing
description:
  - Connects to the database the way every phase does and reports psycopg2's libpq version, the TLS protocol
    and cipher, how the server's certificate is verified, the server version, and the role's rights (owner of
    the tables, BYPASSRLS, advisory locks, the drizzle bookkeeping schema).
  - Asks Dokploy for the service (with the API key) and the app for its health.
  - Each finding is one line, ok or not, with one sentence. The task fails only when I(fail_on_problem) is set.
options:
  database_url: {description: The database's libpq URL or conninfo., type: str, required: true}
  dokploy_url: {description: Dokploy's base URL; empty = not checked., type: str, default: ""}
  dokploy_api_key: {description: Dokploy's API key (x-api-key)., type: str, default: ""}
  service_type: {description: application or compose., type: str, default: application}
  service_id: {description: The Dokploy service id., type: str, default: ""}
  health_url: {description: The app's health URL; empty = not checked., type: str, default: ""}
  fail_on_problem: {description: Fail the task when a finding is not ok., type: bool, default: false}
  connection_string_only:
    description:
      - Only read the connection string by the one rule (libpq's parser, poolers refused), without connecting; the
        task fails with the one sentence when it is refused. Roles call this before they write the URL anywhere.
    type: bool
    default: false
author: wfops
"""

EXAMPLES = r"""
- name: Check what the phases will meet
  wfops_doctor:
    database_url: "{{ wfops_database_url }}"
    dokploy_url: "{{ wfops_dokploy_url }}"
    dokploy_api_key: "{{ wfops_dokploy_api_key }}"
    service_id: "{{ wfops_dokploy_service_id }}"
    health_url: "{{ wfops_app_url }}/api/health"
"""

RETURN = r"""
findings:
  description: Each check's name, ok, detail (one sentence) and facts.
  type: list
  returned: always
ok:
  description: Whether every finding is ok.
  type: bool
  returned: always
"""

import urllib.parse

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.wfops_doctor import Finding, database_findings, http_finding
from ansible.module_utils.wfops_pg import PSYCOPG2_HINT, DatabaseError, parse_database_url, psycopg2_missing


def _dokploy(params: dict) -> Finding:
    field = "composeId" if params["service_type"] == "compose" else "applicationId"
    procedure = "compose.one" if params["service_type"] == "compose" else "application.one"
    query = urllib.parse.urlencode({field: params["service_id"]})
    url = f"{params['dokploy_url'].rstrip('/')}/api/{procedure}?{query}"
    return http_finding("dokploy", url, {"x-api-key": params["dokploy_api_key"]}, f"Dokploy ({procedure})")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "database_url": {"type": "str", "required": True, "no_log": True},
            "dokploy_url": {"type": "str", "default": ""},
            "dokploy_api_key": {"type": "str", "default": "", "no_log": True},
            "service_type": {"type": "str", "default": "application", "choices": ["application", "compose"]},
            "service_id": {"type": "str", "default": ""},
            "health_url": {"type": "str", "default": ""},
            "fail_on_problem": {"type": "bool", "default": False},
            "connection_string_only": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    missing = psycopg2_missing()
    if missing:
        module.fail_json(msg=missing_required_lib(PSYCOPG2_HINT), exception=missing)
    params = module.params
    if params["connection_string_only"]:
        try:
            info = parse_database_url(params["database_url"])
        except DatabaseError as exc:
            module.fail_json(msg=str(exc))
        module.exit_json(changed=False, ok=True, findings=[], database=info.describe())
    findings = database_findings(params["database_url"])
    if params["dokploy_url"]:
        findings.append(_dokploy(params))
    if params["health_url"]:
        findings.append(http_finding("app", params["health_url"], None, f"the app's health ({params['health_url']})"))
    report = {"findings": [finding.as_dict() for finding in findings], "ok": all(f.ok for f in findings)}
    if params["fail_on_problem"] and not report["ok"]:
        problems = "; ".join(f"{f.check}: {f.detail}" for f in findings if not f.ok)
        module.fail_json(msg=f"wfops doctor found problems: {problems}", **report)
    module.exit_json(changed=False, **report)


if __name__ == "__main__":
    main()
