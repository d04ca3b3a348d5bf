#!/usr/bin/python
"""Ansible module: the automated smoke checks of a deployed WeddingFlo (runbook phase 6, flows 1, 7 and 8)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: wfops_smoke
short_description: Automated smoke checks of a deployed WeddingFlo (auth, tenant isolation, real-time)
description:
  - C(auth) (flow 1) signs the smoke account in through Better Auth's endpoints under /api/auth (with an Origin
    header), reads the session, signs out, asks for the Google sign-in URL, and checks a protected page redirects.
  - C(sse) (flow 8) opens the chatbot stream and waits for a first event.
  - C(invariants) (flows 2-4) evaluates the data invariants, each reported under the flow it stands for.
  - C(isolation) (flow 7), in transactions that are always rolled back, acts as the app's role with tenant A set and
    checks nothing of tenant B is visible, updatable or insertable; RLS enabled and forced on every tenant table; no
    login role the app uses bypasses RLS.
  - Reports every check as pass, fail or skip with its evidence; fails when a check fails (unless report_only).
options:
  flows: {description: Which flows to check., type: list, elements: str, default: [auth, invariants, isolation, sse]}
  invariants:
    description: The data invariants (files/invariants.yml) standing for flows 2-4.
    type: list
    elements: dict
    default: []
  non_tenant_tables:
    description: Tables with a company_id that the auth layer reads across tenants (no RLS by design).
    type: list
    elements: str
    default: [users]
  invariant_flows: {description: Invariant name to the runbook flow it stands for., type: dict, default: {}}
  base_url: {description: The app's base URL., type: str, default: ""}
  email: {description: The smoke account's email., type: str, default: ""}
  password: {description: The smoke account's password., type: str, default: ""}
  origin:
    description: Origin header for Better Auth's POSTs (one of its trusted origins); empty = base_url.
    type: str
    default: ""
  protected_path: {description: A page that needs a session., type: str, default: /dashboard}
  health_path:
    description:
      - The app's health path, asked before the HTTP flows; when it is not healthy they are skipped and the check
        says why (a database or TLS failure as the app reports it). Empty = not asked.
    type: str
    default: /api/health
  sse_path: {description: The chatbot's SSE endpoint., type: str, default: /api/chatbot/stream}
  sse_timeout: {description: Seconds for the first event., type: float, default: 5}
  database_url: {description: Any libpq URL or conninfo; its role may SET ROLE to tenant_role., type: str, default: ""}
  tenant_role: {description: The app's runtime role (subject to RLS)., type: str, default: authenticated}
  login_roles: {description: Login roles the app uses; none may bypass RLS., type: list, elements: str, default: []}
  insert_probes:
    description: INSERTs tried with tenant B's ids (table, columns mapping column to SQL with %(company)s, %(client)s).
    type: list
    elements: dict
    default: []
  report_only: {description: Report failures without failing the task., type: bool, default: false}
  dry_run:
    description:
      - Sign in nowhere (flow 1's sign-in, session and sign-out are reported as skipped); check mode does the same.
        Otherwise the session the later flows use is signed out at the end, so smoke leaves no session behind.
    type: bool
    default: false
author: wfops
"""

EXAMPLES = r"""
- name: Smoke-check the deployed app
  wfops_smoke:
    base_url: https://app.example.com
    email: smoke@example.com
    password: "{{ vault_wfops_smoke_password }}"
    database_url: "{{ wfops_database_url }}"
"""

RETURN = r"""
checks: {description: Every check's flow, check, status (pass/fail/skip) and evidence., type: list, returned: always}
failed_checks: {description: The checks that failed., type: list, returned: always}
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.wfops_invariants import evaluate_all
from ansible.module_utils.wfops_pg import PSYCOPG2_HINT, DatabaseError, connect, psycopg2_missing
from ansible.module_utils.wfops_smoke import (
    Check,
    TenantProbe,
    as_dicts,
    auth_flow,
    health_check,
    invariant_checks,
    isolation_flow,
    sign_out,
    sse_flow,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "flows": {"type": "list", "elements": "str", "default": ["auth", "invariants", "isolation", "sse"]},
            "invariants": {"type": "list", "elements": "dict", "default": []},
            "invariant_flows": {"type": "dict", "default": {}},
            "non_tenant_tables": {"type": "list", "elements": "str", "default": ["users"]},
            "base_url": {"type": "str", "default": ""},
            "email": {"type": "str", "default": ""},
            "password": {"type": "str", "default": "", "no_log": True},
            "origin": {"type": "str", "default": ""},
            "protected_path": {"type": "str", "default": "/dashboard"},
            "health_path": {"type": "str", "default": "/api/health"},
            "sse_path": {"type": "str", "default": "/api/chatbot/stream"},
            "sse_timeout": {"type": "float", "default": 5},
            "database_url": {"type": "str", "default": "", "no_log": True},
            "tenant_role": {"type": "str", "default": "authenticated"},
            "login_roles": {"type": "list", "elements": "str", "default": []},
            "insert_probes": {"type": "list", "elements": "dict", "default": []},
            "report_only": {"type": "bool", "default": False},
            "dry_run": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    p = module.params
    checks = []
    cookie = None
    origin = p["origin"] or p["base_url"]
    dry_run = module.check_mode or p["dry_run"]
    http_flows = {"auth", "sse"} & set(p["flows"])
    if http_flows and p["health_path"]:
        health = health_check(p["base_url"], p["health_path"])
        checks.append(health)
        if health.status == "fail":
            # Every HTTP flow would fail for the same reason, named less clearly: skip them, say why.
            names = {"auth": "1 authentication", "sse": "8 real-time sync"}
            for flow in sorted(http_flows):
                checks.append(Check(names[flow], "not run", "skip", "the app is not healthy (see 0 health)"))
            http_flows = set()
    if "auth" in http_flows:
        found, cookie = auth_flow(p["base_url"], p["email"], p["password"], origin, p["protected_path"], dry_run)
        checks += found
    try:
        if "sse" in http_flows:
            checks += sse_flow(p["base_url"], p["sse_path"], cookie, p["sse_timeout"])
    finally:
        # Every session smoke created ends here (the first one was signed out by its own check).
        if cookie is not None:
            checks.append(sign_out(p["base_url"], cookie, origin))
    if {"invariants", "isolation"} & set(p["flows"]):
        missing = psycopg2_missing()
        if missing:
            module.fail_json(msg=missing_required_lib(PSYCOPG2_HINT), exception=missing)
        probes = [TenantProbe(str(probe["table"]), dict(probe["columns"])) for probe in p["insert_probes"]]
        try:
            connection = connect(p["database_url"], "wfops-smoke")
            try:
                if "invariants" in p["flows"]:
                    checks += invariant_checks(evaluate_all(connection, p["invariants"]), p["invariant_flows"])
                if "isolation" in p["flows"]:
                    checks += isolation_flow(
                        connection, p["tenant_role"], p["login_roles"], probes, p["non_tenant_tables"]
                    )
            finally:
                connection.close()
        except DatabaseError as exc:
            module.fail_json(msg=str(exc), checks=as_dicts(checks))
    results = as_dicts(checks)
    failed = [check for check in results if check["status"] == "fail"]
    if failed and not p["report_only"]:
        module.fail_json(
            msg="smoke checks failed: "
            + "; ".join(f"flow {c['flow']}: {c['check']} ({c['evidence']})" for c in failed),
            checks=results,
            failed_checks=failed,
        )
    module.exit_json(changed=False, checks=results, failed_checks=failed)


if __name__ == "__main__":
    main()
