"""Nothing leaked: a release and a rollback with sentinel secrets, then every byte they produced is searched."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, SandboxHandle, start_sandbox, stop_sandbox

SENTINELS = {
    "WFOPS_SANDBOX_OPS_PASSWORD": "SentinelDbPassw0rd7f3a",
    "WFOPS_SANDBOX_APP_PASSWORD": "SentinelAppPassw0rd91c2",
    "WFOPS_SANDBOX_DOKPLOY_KEY": "SentinelDokployKey5e8d",
    "WFOPS_SANDBOX_SMOKE_PASSWORD": "SentinelSmokePassw0rd3b1",
}


class CommandLineSampler:
    """Reads every process's argv from /proc, over and over, while a run goes on."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        self.seen.add((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
                    except OSError:
                        continue
            time.sleep(0.01)

    def __enter__(self) -> CommandLineSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def box(tmp_path: Path) -> Iterator[SandboxHandle]:
    saved = {key: os.environ.get(key) for key in SENTINELS}
    os.environ.update(SENTINELS)
    try:
        handle = start_sandbox(tmp_path / "box", guests=500)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    yield handle
    stop_sandbox(handle)


def _files_under(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()] if directory.exists() else []


def test_no_secret_reaches_output_artifacts_manifests_ledger_logs_or_process_arguments(box: SandboxHandle) -> None:
    with CommandLineSampler() as sampler:
        release = box.wfops("release", "--env", "local", "--ref", "sec-1", "--from", "backup", "--json")
        assert release.returncode == 0, release.stderr
        backup_id = next(p for p in json.loads(release.stdout)["phases"] if p["name"] == "backup")["result"]["id"]
        rollback = box.wfops("rollback", "--env", "local", "--database", "--confirm", backup_id, "--json")
        assert rollback.returncode == 0, rollback.stderr
    # The sampler really saw the database tools run, so its silence below means something.
    tools = {name for name in ("pg_dump", "pg_restore", "psql") if any(f"/{name} " in line for line in sampler.seen)}
    assert tools == {"pg_dump", "pg_restore", "psql"}

    host = box.directory / "host"
    by_design = {  # files whose job is to hold a secret: checked for their mode instead
        box.directory / "database_url",
        box.directory / "app_database_url",
        box.directory / "dokploy_api_key",
        box.directory / "smoke_password",
        box.directory / "app_secret",
        host / "etc" / "weddingflo-backup" / "backup.env",
    }
    searched = {
        "terminal output": release.stdout + release.stderr + rollback.stdout + rollback.stderr,
        "process arguments": "\n".join(sampler.seen),
    }
    run_ids = [json.loads(release.stdout)["run_id"], json.loads(rollback.stdout)["run_id"]]
    files = [f for run_id in run_ids for f in _files_under(REPO / "runs" / run_id)]
    files += [
        f
        for f in _files_under(box.directory)
        if f not in by_design and "pg" not in f.relative_to(box.directory).parts[:1]
    ]
    assert any(f.name == "command" for f in files) and any("job_events" in f.parts for f in files)
    assert any(f.name == "ledger.jsonl" for f in files) and any(
        f.suffix == ".json" and "backups" in f.parts for f in files
    )
    assert any(f.name == "app.log" for f in files) and any(f.name == "manual-checklist.md" for f in files)
    for path in files:
        if path.suffix != ".dump":
            searched[str(path)] = path.read_text(errors="replace")
    for where, text in searched.items():
        for name, sentinel in SENTINELS.items():
            assert sentinel not in text, f"{name} leaked into {where}"

    for path in by_design:
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o600, path
        assert info.st_uid == os.getuid(), path


# --------------------------------------------------------------------------- the one list of secret variables


def _vault_example_keys() -> set[str]:
    import yaml

    keys: set[str] = set()
    for example in REPO.glob("group_vars/*/vault.yml.example"):
        keys |= set(yaml.safe_load(example.read_text()))
    return keys


def test_the_list_holds_every_secret_the_roles_declare_and_the_ones_the_filter_once_missed() -> None:
    from wfops.secrets import declared_secrets

    declared = declared_secrets(REPO)
    once_missed = {"backup_offsite_ssh_key", "backup_offsite_crypt_salt", "notify_webhook_url", "monitor_webhook_url"}
    assert once_missed <= declared
    assert {"wfops_database_url", "wfops_dokploy_api_key", "wfops_smoke_password", "deploy_api_key"} <= declared


def test_every_role_variable_that_looks_like_a_secret_is_marked_no_log() -> None:
    """The list is only as good as the marks: a role option named like a secret must carry no_log."""
    import yaml

    from wfops.secrets import NAMES_A_FILE, SECRET_LOOKING

    unmarked = []
    for spec_file in REPO.glob("roles/*/meta/argument_specs.yml"):
        for entry in (yaml.safe_load(spec_file.read_text())["argument_specs"] or {}).values():
            for name, option in ((entry or {}).get("options") or {}).items():
                looks = SECRET_LOOKING.search(name) and not NAMES_A_FILE.search(name)
                if looks and not (option or {}).get("no_log"):
                    unmarked.append(f"{spec_file.parts[-3]}: {name}")
    assert unmarked == []


def _every_secret_variable() -> list[str]:
    from wfops.secrets import declared_secrets

    return sorted(declared_secrets(REPO) | _vault_example_keys())


@pytest.mark.parametrize("name", _every_secret_variable())
def test_every_secret_variable_of_every_role_is_refused_by_dash_e(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from wfops.cli import main

    # No sandbox here: a value that slipped through would end at exit 3, never at a play.
    monkeypatch.setenv("WFOPS_SANDBOX_DIR", str(tmp_path / "no-sandbox"))
    runs_before = set((REPO / "runs").glob("*")) if (REPO / "runs").exists() else set()
    code = main(["run", "backup", "--env", "local", "-e", f"{name}=SentinelValue-{name}"])
    assert code == 2
    assert f"-e {name}=...: secrets are not accepted on the command line" in capsys.readouterr().err
    assert (set((REPO / "runs").glob("*")) if (REPO / "runs").exists() else set()) == runs_before


def test_the_environment_scrub_reads_the_same_list(monkeypatch: pytest.MonkeyPatch) -> None:
    from wfops.runner import environment_without_secrets

    monkeypatch.setenv("NOTIFY_WEBHOOK_URL", "https://hooks.example/T0/B0/secret")
    monkeypatch.setenv("BACKUP_OFFSITE_CRYPT_SALT", "salt")
    monkeypatch.setenv("VAULT_WFOPS_DATABASE_URL", "postgresql://u:pw@h/d")
    # These name files, not secrets: ansible-playbook must still see them.
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", "/etc/wfops/vault-pass")
    monkeypatch.setenv("ANSIBLE_VAULT_IDENTITY_LIST", "prod@/etc/wfops/vault-pass")
    with environment_without_secrets() as removed:
        assert {"NOTIFY_WEBHOOK_URL", "BACKUP_OFFSITE_CRYPT_SALT", "VAULT_WFOPS_DATABASE_URL"} <= set(removed)
        assert os.environ["ANSIBLE_VAULT_PASSWORD_FILE"] == "/etc/wfops/vault-pass"
        assert os.environ["ANSIBLE_VAULT_IDENTITY_LIST"] == "prod@/etc/wfops/vault-pass"
    assert os.environ["NOTIFY_WEBHOOK_URL"] == "https://hooks.example/T0/B0/secret"
