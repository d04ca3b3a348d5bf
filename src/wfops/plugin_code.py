"""wfops's Ansible module_utils (plugins/module_utils), loaded as the modules see them.

The database logic lives once, in plugins/module_utils/, because Ansible ships it to the host with each module.
Those files import each other as `ansible.module_utils.<name>`; this loader registers them under that name so
the wrapper, the sandbox and the tests run the very same code.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

MODULE_UTILS = Path(__file__).resolve().parents[2] / "plugins" / "module_utils"


def load(name: str) -> ModuleType:
    """plugins/module_utils/<name>.py as ansible.module_utils.<name>."""
    qualified = f"ansible.module_utils.{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    spec = importlib.util.spec_from_file_location(qualified, MODULE_UTILS / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {MODULE_UTILS / name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return module
