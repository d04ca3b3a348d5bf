"""Which variables are secrets: one list, read by the -e filter, the environment scrub and the secrets test.

The list is the roles' own: every option marked `no_log: true` in a role's `meta/argument_specs.yml` (Ansible masks
those in its output, so the same mark keeps them off the command line), plus every `vault_*` key (whatever the
vault holds is secret). A name the roles do not declare is still a secret when it looks like one (password,
token, api key, ...), unless it names a file: ANSIBLE_VAULT_PASSWORD_FILE is a path, not a password.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import yaml

from wfops.project import project_root

VAULT_PREFIX = "vault_"
# Names that hold a secret whatever role (or none) declares them.
SECRET_LOOKING = re.compile(
    r"password|passwd|passphrase|(^|_)pass($|_)|secret|token|api_?key|private_key|ssh_key|database_url|(^|_)dsn($|_)"
    r"|webhook_url|crypt_salt|pgpass",
    re.IGNORECASE,
)
# libyaml's loader when PyYAML has it: every wfops command reads all the roles' specs once (5x faster).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# ...unless the name says it holds where a secret is, not the secret itself.
NAMES_A_FILE = re.compile(r"(file|_path|_dir|_identity_list)$", re.IGNORECASE)


@functools.cache
def declared_secrets(root: Path | None = None) -> frozenset[str]:
    """Every option marked no_log in any role's argument specs (all entry points)."""
    names: set[str] = set()
    for spec_file in sorted((root or project_root()).glob("roles/*/meta/argument_specs.yml")):
        specs = (yaml.load(spec_file.read_text(), Loader=_LOADER) or {}).get("argument_specs") or {}  # noqa: S506 - a safe loader
        for entry_point in specs.values():
            for name, option in ((entry_point or {}).get("options") or {}).items():
                if isinstance(option, dict) and option.get("no_log"):
                    names.add(name)
    return frozenset(names)


def is_secret(name: str, root: Path | None = None) -> bool:
    """Whether a variable (an Ansible variable or an environment variable, any case) holds a secret."""
    lowered = name.strip().lower()
    if lowered in declared_secrets(root) or lowered.startswith(VAULT_PREFIX):
        return True
    return bool(SECRET_LOOKING.search(lowered)) and not NAMES_A_FILE.search(lowered)
