#!/usr/bin/python
"""Ansible module: deploy a release through Dokploy's API and wait until the app is healthy."""

from __future__ import annotations

DOCUMENTATION = r"""
module: wfops_dokploy_deploy
short_description: Deploy through Dokploy's API (queue, find, wait) and wait for the app's health
description:
  - Records the service's last finished deployment (what a rollback returns to), queues a deploy with a unique
    title (Dokploy returns no id), polls deployment.all until that title appears (a lost job fails the task),
    then until it is done, error or cancelled (on error, the last log lines are shown).
  - Dokploy marks a deployment done when the swarm service is updated, not when the app is healthy, so it then
    polls the health URL until it answers 200 (and reports the expected commit, when given).
  - In check mode, reports the current deployment and deploys nothing.
options:
  api_url: {description: Dokploy's base URL (https://dokploy.example.com)., type: str, required: true}
  api_key: {description: Dokploy API key (sent as x-api-key)., type: str, required: true}
  service_type: {description: The kind of service., type: str, choices: [application, compose], default: application}
  service_id: {description: The applicationId or composeId., type: str, required: true}
  title: {description: A title unique to this release run., type: str, required: true}
  description: {description: The deployment's description., type: str, default: ""}
  poll_interval: {description: Seconds between polls., type: float, default: 2}
  appear_timeout: {description: Seconds for the queued deployment to appear., type: float, default: 120}
  deploy_timeout: {description: Seconds for the deployment to finish., type: float, default: 1200}
  health_url: {description: The app's health URL; empty skips the health wait., type: str, default: ""}
  health_timeout: {description: Seconds for the app to become healthy., type: float, default: 300}
  expected_commit: {description: Commit the health answer must report; empty = any., type: str, default: ""}
  commit_field: {description: Field of the health JSON holding the commit., type: str, default: commit}
  log_tail: {description: Log lines read from a failed deployment., type: int, default: 100}
  attempts: {description: Attempts per API call on 5xx or network errors., type: int, default: 3}
  rollback_id:
    description: Instead of deploying, roll back to this Dokploy rollbackId (rollback.rollback), then wait for health.
    type: str
    default: ""
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
"""

RETURN = r"""
previous: {description: The last finished deployment before this one., type: dict, returned: always}
deployment: {description: The new deployment (id, title, status, times, rollbackId)., type: dict, returned: success}
queue_s: {description: Seconds until the deployment appeared., type: float, returned: success}
build_s: {description: Seconds until it finished., type: float, returned: success}
health_s: {description: Seconds until the app was healthy., type: float, returned: success}
"""

from dataclasses import asdict

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.wfops_dokploy import (
    DeployError,
    Dokploy,
    Health,
    Service,
    Timing,
    deploy_release,
    rollback_to,
)


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
            "expected_commit": {"type": "str", "default": ""},
            "commit_field": {"type": "str", "default": "commit"},
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
    health = Health(p["health_url"], p["expected_commit"] or None, p["commit_field"]) if p["health_url"] else None
    try:
        if p["rollback_id"] and not module.check_mode:
            result = rollback_to(client, p["rollback_id"], health)
        else:
            result = deploy_release(
                client,
                title=p["title"],
                description=p["description"],
                health=health,
                log_tail=p["log_tail"],
                check_mode=module.check_mode,
            )
    except DeployError as exc:
        module.fail_json(msg=str(exc), **exc.facts)
    module.exit_json(changed=not module.check_mode, **asdict(result))


if __name__ == "__main__":
    main()
