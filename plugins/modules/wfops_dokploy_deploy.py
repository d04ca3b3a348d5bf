#!/usr/bin/python
"""Ansible module: deploy a release through Dokploy's API (or return to an earlier one) and wait until it is healthy."""

from __future__ import annotations

DOCUMENTATION = r"""
module: wfops_dokploy_deploy
short_description: Deploy through Dokploy's API (queue, find, wait) or roll back, then wait for the app's health
description:
  - Queues a deploy with a unique title (Dokploy returns no id), polls deployment.all until that title appears (a
    lost job fails the task), then until it is done, error or cancelled (on error, the last log lines are shown).
    With I(rollback_id), calls Dokploy's rollback.rollback instead (synchronous; it adds no deployment row).
  - Dokploy marks a deployment done when the swarm service is updated, not when the app is healthy, so it then
    polls the health URL until it answers 200 and the version at I(commit_field) (a JSON path) names I(code) - its
    ref, its commit, another name it was seen with, or the same commit as a SHA prefix (7+ characters).
  - Returns what served before (I(previous), from the ledger; observed from Dokploy and the health URL when the
    ledger knows nothing yet) and what serves after (C(deployed)), the ledger's record of each.
  - In check mode, reports what serves and deploys nothing.
options:
  api_url: {description: Dokploy's base URL (https://dokploy.example.com)., type: str, required: true}
  api_key: {description: Dokploy API key (sent as x-api-key)., type: str, required: true}
  service_type: {description: The kind of service., type: str, choices: [application, compose], default: application}
  service_id: {description: The applicationId or composeId., type: str, required: true}
  title: {description: A title unique to this run., type: str, required: true}
  description: {description: The deployment's description., type: str, default: ""}
  poll_interval: {description: Seconds between polls., type: float, default: 2}
  appear_timeout: {description: Seconds for the queued deployment to appear., type: float, default: 120}
  deploy_timeout: {description: Seconds for the deployment to finish., type: float, default: 1200}
  health_url: {description: The app's health URL; empty skips the health wait., type: str, default: ""}
  health_timeout: {description: Seconds for the app to become healthy., type: float, default: 300}
  code:
    description: >-
      The code being put in place (a ledger serving record) - release_run, ref, commit; for a rollback also what it
      reported before and its Dokploy ids.
    type: dict
    default: {}
  match_version: {description: Require the health answer to name I(code)., type: bool, default: true}
  aliases:
    description: Other names of I(code)'s commit the app may report (the tags pointing at it).
    type: list
    elements: str
    default: []
  commit_field: {description: JSON path of the version in the health answer (version.sha)., type: str, default: commit}
  previous: {description: What serves now, from the ledger; empty = observe it., type: dict, default: {}}
  log_tail: {description: Log lines read from a failed deployment., type: int, default: 100}
  attempts: {description: Attempts per API call on 5xx or network errors., type: int, default: 3}
  rollback_id:
    description: Instead of deploying, roll back to this Dokploy rollbackId (rollback.rollback), then wait for health.
    type: str
    default: ""
attributes:
  check_mode: {support: full, description: Reports what serves; deploys nothing.}
  diff_mode: {support: none}
author: wfops
"""

EXAMPLES = r"""
- name: Deploy the release
  wfops_dokploy_deploy:
    api_url: https://dokploy.example.com
    api_key: "{{ wfops_dokploy_api_key }}"
    service_id: "{{ deploy_service_id }}"
    title: "wfops {{ wfops_release_ref }} {{ wfops_run_id }}"
    health_url: https://app.example.com/api/health
    code: {release_run: "{{ wfops_run_id }}", ref: "{{ wfops_release_ref }}"}
"""

RETURN = r"""
previous:
  description: What served before (release_run, ref, commit, deployment_id, rollback_id, reported, healthy).
  type: dict
  returned: always
  sample: {release_run: 20261125-031500-ab12, ref: v1.4.0, commit: 3f1c2e9a, deployment_id: dpl-1, healthy: true}
deployed: {description: What serves now (the same shape)., type: dict, returned: success, sample: {ref: v1.5.0}}
deployment: {description: The new deployment row (id, title, status, times, rollbackId)., type: dict, returned: success}
health: {description: The last health answer (url, last, checks, field, reported)., type: dict, returned: success}
queue_s: {description: Seconds until the deployment appeared., type: float, returned: success, sample: 1.2}
build_s: {description: Seconds until it finished., type: float, returned: success, sample: 48.0}
health_s: {description: Seconds until the app was healthy., type: float, returned: success, sample: 6.5}
"""

from dataclasses import asdict

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.wfops_dokploy import (
    DeployError,
    Dokploy,
    Expected,
    Health,
    Service,
    Timing,
    deploy_release,
    rollback_to,
)
from ansible.module_utils.wfops_ledger import Serving


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "api_url": {"type": "str", "required": True},
            "api_key": {"type": "str", "required": True, "no_log": True},
            "service_type": {"type": "str", "choices": ["application", "compose"], "default": "application"},
            "service_id": {"type": "str", "required": True},
            "title": {"type": "str", "required": True},
            "description": {"type": "str", "default": ""},
            "poll_interval": {"type": "float", "default": 2},
            "appear_timeout": {"type": "float", "default": 120},
            "deploy_timeout": {"type": "float", "default": 1200},
            "health_url": {"type": "str", "default": ""},
            "health_timeout": {"type": "float", "default": 300},
            "code": {"type": "dict", "default": {}},
            "match_version": {"type": "bool", "default": True},
            "aliases": {"type": "list", "elements": "str", "default": []},
            "commit_field": {"type": "str", "default": "commit"},
            "previous": {"type": "dict", "default": {}},
            "log_tail": {"type": "int", "default": 100},
            "attempts": {"type": "int", "default": 3},
            "rollback_id": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    p = module.params
    timing = Timing(
        poll_interval_s=p["poll_interval"],
        appear_timeout_s=p["appear_timeout"],
        deploy_timeout_s=p["deploy_timeout"],
        health_timeout_s=p["health_timeout"],
        attempts=p["attempts"],
    )
    client = Dokploy(Service(p["api_url"], p["api_key"], p["service_type"], p["service_id"]), timing)
    code = Serving.from_dict(p["code"]) or Serving()
    known = [name for name in (code.reported, *p["aliases"]) if name]
    expected = Expected(code.ref, code.commit, known) if p["match_version"] else None
    health = Health(p["health_url"], expected if expected and expected.candidates() else None, p["commit_field"])
    previous = Serving.from_dict(p["previous"])
    try:
        if p["rollback_id"] and not module.check_mode:
            result = rollback_to(client, p["rollback_id"], code, previous, health if p["health_url"] else None)
        else:
            result = deploy_release(
                client,
                code=code,
                previous=previous,
                title=p["title"],
                description=p["description"],
                health=health if p["health_url"] else None,
                log_tail=p["log_tail"],
                check_mode=module.check_mode,
            )
    except DeployError as exc:
        module.fail_json(msg=str(exc), **exc.facts)
    module.exit_json(changed=not module.check_mode, **asdict(result))


if __name__ == "__main__":
    main()
