"""The vault, as ansible-playbook takes it: --vault-password-file, --vault-id, --ask-vault-pass and the
ANSIBLE_VAULT_PASSWORD_FILE / ANSIBLE_VAULT_IDENTITY_LIST variables (which name files, not secrets).

Before anything runs, every encrypted file the environment's plays will load is decrypted once here, so a
missing or wrong password is one sentence and exit 2 instead of a failed play. A password typed at the prompt
reaches ansible-playbook through a named pipe in a private directory outside runs/: it is never written to a
file, an argument, the environment or a run artifact.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PASSWORD_FILE = "ANSIBLE_VAULT_PASSWORD_FILE"  # noqa: S105 - the variable naming the file
ENV_IDENTITY_LIST = "ANSIBLE_VAULT_IDENTITY_LIST"
DEFAULT_ID = "default"
PROMPT = "prompt"
VAULT_HEADER = b"$ANSIBLE_VAULT;"
HOW_TO_GIVE = (
    "--ask-vault-pass, --vault-password-file FILE, --vault-id [LABEL@]FILE|prompt, "
    f"or {ENV_PASSWORD_FILE} / {ENV_IDENTITY_LIST}"
)


class VaultError(ValueError):
    """A missing, unreadable or wrong vault password: bad input, found before anything ran."""


@dataclass(frozen=True)
class VaultSource:
    """One vault identity: a label and where its password comes from (a file, a script, or the prompt)."""

    label: str
    source: str
    # Given through ANSIBLE_VAULT_*: ansible-playbook reads those variables itself.
    from_environment: bool = False

    @classmethod
    def parse(cls, slug: str, from_environment: bool = False) -> VaultSource:
        label, at, source = slug.partition("@")
        if not at:
            label, source = DEFAULT_ID, slug
        if not source.strip():
            raise VaultError(f"--vault-id {slug!r} names no password source (LABEL@FILE or LABEL@prompt)")
        return cls(label or DEFAULT_ID, source, from_environment)


@dataclass
class Vault:
    """The vault identities of one wfops command, their passwords loaded once (a prompt is asked once)."""

    sources: list[VaultSource] = field(default_factory=list)
    _prompted: dict[str, bytes] = field(default_factory=dict, repr=False)
    _secrets: list[tuple[str, Any]] | None = field(default=None, repr=False)

    @classmethod
    def from_options(
        cls, password_files: list[str], vault_ids: list[str], ask: bool, environ: dict[str, str] | None = None
    ) -> Vault:
        environ = dict(os.environ) if environ is None else environ
        sources = [VaultSource.parse(slug, True) for slug in environ.get(ENV_IDENTITY_LIST, "").split(",") if slug]
        if environ.get(ENV_PASSWORD_FILE):
            sources.append(VaultSource(DEFAULT_ID, environ[ENV_PASSWORD_FILE], True))
        sources += [VaultSource.parse(slug) for slug in vault_ids]
        sources += [VaultSource(DEFAULT_ID, path) for path in password_files]
        if ask:
            sources.append(VaultSource(DEFAULT_ID, PROMPT))
        return cls(sources)

    def load(self) -> list[tuple[str, Any]]:
        """Every identity's secret, read (or asked for) once; VaultError names the source that failed."""
        if self._secrets is not None:
            return self._secrets
        from ansible.errors import AnsibleError
        from ansible.parsing.dataloader import DataLoader
        from ansible.parsing.vault import VaultSecret, get_file_vault_secret

        loader = DataLoader()
        secrets: list[tuple[str, Any]] = []
        for index, source in enumerate(self.sources):
            if source.source == PROMPT:
                password = _ask(source.label)
                self._prompted[f"{index}"] = password
                secrets.append((source.label, VaultSecret(password)))
                continue
            try:
                secret = get_file_vault_secret(filename=source.source, vault_id=source.label, loader=loader)
                secret.load()
            except AnsibleError as exc:
                raise VaultError(
                    f"cannot read the vault password of {source.label!r} from {source.source}: "
                    f"{' '.join(str(exc.message).split())}"
                ) from None
            secrets.append((source.label, secret))
        self._secrets = secrets
        return secrets

    def check(self, files: list[Path], root: Path) -> None:
        """Decrypt each encrypted file (or inline !vault value) in `files`; VaultError for the first that fails."""
        encrypted = [path for path in files if _holds_vault_data(path)]
        if not encrypted:
            return
        root = root.resolve()
        first = encrypted[0].relative_to(root) if encrypted[0].is_relative_to(root) else encrypted[0]
        if not self.sources:
            raise VaultError(f"{first} is encrypted and no vault password was given: give it with {HOW_TO_GIVE}")
        from ansible.errors import AnsibleError
        from ansible.parsing.dataloader import DataLoader
        from ansible.parsing.vault import VaultLib

        secrets = self.load()
        loader = DataLoader()
        loader.set_vault_secrets(secrets)
        labels = ", ".join(sorted({source.label for source in self.sources}))
        for path in encrypted:
            shown = path.relative_to(root) if path.is_relative_to(root) else path
            try:
                _decrypt_inline_values(loader.load_from_file(str(path), cache="none"), VaultLib(secrets))
            except AnsibleError:
                raise VaultError(
                    f"the vault password ({labels}) does not decrypt {shown}: check it, or give the right one with "
                    f"{HOW_TO_GIVE}"
                ) from None

    @contextmanager
    def playbook_arguments(self) -> Iterator[list[str]]:
        """--vault-id arguments for one ansible-playbook run; a prompted password goes through a named pipe."""
        if not self.sources:
            yield []
            return
        self.load()
        # Only a typed password needs the pipe (and its private directory); a file is named as it is.
        private = Path(tempfile.mkdtemp(prefix="wfops-vault-")) if self._prompted else None
        writers: list[tuple[Path, threading.Thread]] = []
        try:
            arguments: list[str] = []
            for index, source in enumerate(self.sources):
                if source.from_environment:
                    continue  # ansible-playbook reads ANSIBLE_VAULT_* from its environment itself
                if source.source != PROMPT:
                    arguments += ["--vault-id", f"{source.label}@{source.source}"]
                    continue
                assert private is not None
                pipe = private / f"vault-{index}"
                os.mkfifo(pipe, 0o600)
                writer = threading.Thread(target=_write_once, args=(pipe, self._prompted[f"{index}"]), daemon=True)
                writer.start()
                writers.append((pipe, writer))
                arguments += ["--vault-id", f"{source.label}@{pipe}"]
            yield arguments
        finally:
            for pipe, writer in writers:
                if writer.is_alive():
                    # ansible-playbook never read it (it failed before): open the reading end so the writer ends.
                    os.close(os.open(pipe, os.O_RDONLY | os.O_NONBLOCK))
                    writer.join(timeout=5)
            if private is not None:
                shutil.rmtree(private, ignore_errors=True)


def _ask(label: str) -> bytes:
    """Ask on the terminal, or read a line from stdin when there is none (a pipe, a CI job)."""
    prompt = "Vault password: " if label == DEFAULT_ID else f"Vault password ({label}): "
    try:
        with Path("/dev/tty").open("r+b", buffering=0):
            password = getpass.getpass(prompt)
    except OSError:
        sys.stderr.write(prompt)
        sys.stderr.flush()
        password = sys.stdin.readline().rstrip("\n")
    if not password.strip():
        raise VaultError(f"an empty vault password was given for {label!r}")
    return password.strip().encode()


def _write_once(pipe: Path, password: bytes) -> None:
    # A reader that went away unread (ansible-playbook failed before reading it) is not an error here.
    with contextlib.suppress(OSError), pipe.open("wb") as handle:
        handle.write(password + b"\n")


def _holds_vault_data(path: Path) -> bool:
    try:
        return VAULT_HEADER in path.read_bytes()
    except OSError:
        return False


def _decrypt_inline_values(data: Any, vault: Any) -> None:
    """Decrypt every inline !vault value (the loader leaves them encrypted until first use)."""
    from ansible.parsing.vault import EncryptedString, VaultHelper

    if isinstance(data, dict):
        for value in data.values():
            _decrypt_inline_values(value, vault)
    elif isinstance(data, list):
        for value in data:
            _decrypt_inline_values(value, vault)
    elif isinstance(data, EncryptedString):
        vault.decrypt(VaultHelper.get_ciphertext(data, with_tags=False))


def environment_files(root: Path, env: str) -> list[Path]:
    """The group_vars files an environment's plays load: all, the environment's own, and the host group's."""
    base = (root / "inventory" / "group_vars").resolve()
    found: list[Path] = []
    for name in ("all", env, "weddingflo"):
        for candidate in (base / name, base / f"{name}.yml", base / f"{name}.yaml"):
            if candidate.is_dir():
                found += sorted(p.resolve() for p in candidate.rglob("*") if p.is_file())
            elif candidate.is_file():
                found.append(candidate.resolve())
    return found
