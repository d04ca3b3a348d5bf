"""`python -m wfops.sandbox.push REF`: the sandbox's `git push` — puts REF on the Dokploy stand-in's deploy branch."""

from __future__ import annotations

import json
import sys
import urllib.request

from wfops.sandbox.service import SandboxError, services


def main(argv: list[str]) -> int:
    described = services()
    if described is None:
        raise SandboxError("the sandbox's stand-ins are not running: `wfops sandbox up` first")
    request = urllib.request.Request(  # noqa: S310 - a loopback URL of our own
        described["dokploy_url"] + "/__standin/source",
        data=json.dumps({"ref": argv[1]}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        print(json.loads(response.read())["source_ref"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
