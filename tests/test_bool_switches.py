"""Every boolean switch is read with `| bool`, in every role and playbook.

`-e backup_schedule_enabled=true` on the command line is the string "true", and "false" is just as truthy: a
switch read bare (`when: x`, `x and y`, `a if x else b`) breaks ansible-core 2.19's conditionals ("Conditionals
must have a boolean result") or silently does the opposite of what was asked. This test parses every Jinja
expression the roles and playbooks render and finds each read of a switch; tests/test_backup_phase.py and
tests/test_offsite.py run the backup phase and recover-host with string booleans to show the outcome.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, nodes

from conftest import REPO

# Keys whose value Ansible evaluates as a bare Jinja expression.
_CONDITIONS = ("when", "changed_when", "failed_when", "until", "that")
# Only parsed, never rendered into HTML: autoescape does not apply.
_JINJA = Environment(extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"], autoescape=False)  # noqa: S701


def _declared_switches() -> set[str]:
    """Variables a role declares `type: bool` in its argument specs."""
    switches = set()
    for spec in REPO.glob("roles/*/meta/argument_specs.yml"):
        for entry_point in yaml.safe_load(spec.read_text())["argument_specs"].values():
            options = (entry_point.get("options") or {}).items()
            switches |= {name for name, option in options if option["type"] == "bool"}
    return switches


def _sources() -> Iterator[tuple[Path, str]]:
    """(file, Jinja template) for every expression the roles and playbooks render."""
    yaml_files = [
        *REPO.glob("roles/*/tasks/*.yml"),
        *REPO.glob("roles/*/handlers/*.yml"),
        *REPO.glob("roles/*/vars/*.yml"),
        *REPO.glob("roles/*/defaults/*.yml"),
        *REPO.glob("playbooks/*.yml"),
        *REPO.glob("*.yml"),
    ]
    for path in sorted(yaml_files):
        for template in _templates_in(yaml.safe_load(path.read_text())):
            yield path, template
    for path in sorted(REPO.glob("roles/*/templates/**/*.j2")):
        yield path, path.read_text()


def _templates_in(data: Any, key: str | None = None) -> Iterator[str]:
    if isinstance(data, dict):
        for name, value in data.items():
            yield from _templates_in(value, name)
    elif isinstance(data, list):
        for item in data:
            yield from _templates_in(item, key)
    elif isinstance(data, str):
        if key in _CONDITIONS and "{{" not in data:
            yield "{{ " + data + " }}"
        elif "{{" in data or "{%" in data:
            yield data


def _parse(template: str) -> nodes.Template:
    # Regex literals such as '\[' in string constants make Jinja's lexer warn while it decodes them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return _JINJA.parse(template)


def _switch_reads(template: str, switches: set[str]) -> Iterator[tuple[str, bool]]:
    """(switch, read with | bool) for every use of a switch in the template."""

    def walk(node: nodes.Node, parent: nodes.Node | None, grandparent: nodes.Node | None) -> Iterator[tuple[str, bool]]:
        if isinstance(node, nodes.Name) and node.name in switches and node.ctx == "load":
            direct = isinstance(parent, nodes.Filter) and parent.name == "bool" and parent.node is node
            # `x | default(false) | bool`: the default applies first, then the reading.
            defaulted = (
                isinstance(parent, nodes.Filter)
                and parent.name == "default"
                and isinstance(grandparent, nodes.Filter)
                and grandparent.name == "bool"
            )
            yield node.name, direct or defaulted
        for child in node.iter_child_nodes():
            yield from walk(child, node, parent)

    yield from walk(_parse(template), None, None)


def _defaulted_switches(template: str) -> set[str]:
    """Variables read as `x | default(true|false)`: switches a playbook or role takes without declaring them (an
    underscore marks a fact the play sets itself, a real boolean, not a switch)."""
    found = set()
    for node in _parse(template).find_all(nodes.Filter):
        literal = node.args[0] if node.name == "default" and node.args else None
        if isinstance(node.node, nodes.Name) and isinstance(literal, nodes.Const) and isinstance(literal.value, bool):
            found.add(node.node.name)
    return {name for name in found if not name.startswith("_")}


def test_every_boolean_switch_is_read_with_the_bool_filter_in_every_role_and_playbook() -> None:
    sources = list(_sources())
    switches = _declared_switches()
    for _, template in sources:
        switches |= _defaulted_switches(template)
    assert {"backup_schedule_enabled", "backup_verify", "rollback_become", "release_auto_rollback"} <= switches

    bare = sorted(
        f"{path.relative_to(REPO)}: {name} in {' '.join(template.split())[:160]}"
        for path, template in sources
        for name, read_as_bool in _switch_reads(template, switches)
        if not read_as_bool
    )

    assert bare == [], "read these switches with `| bool`:\n" + "\n".join(bare)


def test_the_check_finds_a_bare_switch_where_ansible_would_misread_a_string() -> None:
    switches = {"backup_schedule_enabled", "backup_become"}
    reads = dict(_switch_reads("{{ backup_schedule_enabled or backup_become | bool }}", switches))
    assert reads == {"backup_schedule_enabled": False, "backup_become": True}
    assert dict(_switch_reads("{{ 'a' if x | default(false) | bool else 'b' }}", {"x"})) == {"x": True}
    assert _defaulted_switches("{{ rollback_smoke | default(true) }}") == {"rollback_smoke"}
