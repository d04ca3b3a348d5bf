"""`python -m wfops.sandbox.push REF [--repo DIR]`: the sandbox's `git push` — puts REF on the Dokploy stand-in's
deploy branch, with the commit (and tag) it names in the app checkout DIR when it is a git ref there, as a push
transmits the commit itself."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import urllib.request

from wfops.sandbox.service import SandboxError, services


def _git(repo: str, *args: str) -> str | None:
    """One line of git's answer in `repo`, or None when git says no (not a repository, an unknown ref)."""
    try:
        answer = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, check=False, timeout=10)
    except OSError:
        return None
    return answer.stdout.strip() or None if answer.returncode == 0 else None


def resolve(ref: str, repo: str | None) -> dict[str, str | None]:
    """The ref, the commit it names in `repo`, and a tag pointing at that commit (the ref itself when it is one)."""
    commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}") if repo else None
    tag = None
    if commit and repo:
        tag = ref if _git(repo, "rev-parse", "--verify", "--quiet", f"refs/tags/{ref}") else None
        tag = tag or _git(repo, "describe", "--tags", "--exact-match", commit)
    return {"ref": ref, "commit": commit, "tag": tag}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="wfops.sandbox.push")
    parser.add_argument("ref")
    parser.add_argument("--repo", help="the app checkout the ref is resolved in")
    args = parser.parse_args(argv[1:])
    described = services()
    if described is None:
        raise SandboxError("the sandbox's stand-ins are not running: `wfops sandbox up` first")
    request = urllib.request.Request(  # noqa: S310 - a loopback URL of our own
        described["dokploy_url"] + "/__standin/source",
        data=json.dumps(resolve(args.ref, args.repo)).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        print(json.dumps(json.loads(response.read())["source"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
