"""The "Hetzner host" reached over real SSH, set up the production way: an sshd on a loopback high port, a non-root
`deploy` user with sudo, key authentication, pipelining on, become for the backup user and the systemd units, and the
`staging` environment's secrets in an ansible-vault encrypted group_vars/staging/vault.yml. `wfops release` and
`wfops rollback` run over that connection once per way of giving the vault password (a password file, a vault id,
the prompt through a terminal, ANSIBLE_VAULT_PASSWORD_FILE, ANSIBLE_VAULT_IDENTITY_LIST), one host set up for all;
wfops killed mid-migration over SSH leaves nothing running there; and the vault password is found nowhere.

This scenario creates a system user and a sudoers rule, so it needs root (as `make test` has on CI); it fails, it
does not skip, without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pexpect
import pytest

from conftest import REPO, VENV_BIN, SandboxHandle, start_sandbox, stop_sandbox, table_checksums
from faults.processes import processes_of, run_id_of
from faults.test_fault_matrix import _bookkeeping_rows, _holding, _wait_until_waiting
from ssh_host_helpers import BACKUP_USER, DEPLOY_USER, SshHost, deploy_host, staging_project
from test_secrets import CommandLineSampler

ENV = "staging"


@dataclass
class SshScene:
    host: SshHost
    project: Path
    box: SandboxHandle
    password_file: Path
    password: str
    # wfops's own temporary directory (TMPDIR): what its runs leave there is theirs, not another test's.
    tmp: Path
    # Every byte wfops printed, for the secrets scan at the end.
    outputs: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        # The app checkout is given (staging has no sandbox default for it); the sandbox dir only serves the
        # stand-ins' push command.
        return {
            **self.box.env,
            "WFOPS_HOME": str(self.project),
            "WFOPS_APP_DIR": str(REPO / "sandbox-app"),
            "TMPDIR": str(self.tmp),
        }

    def wfops(self, *args: str, extra_env: dict[str, str] | None = None) -> tuple[int, str]:
        completed = subprocess.run(
            [str(VENV_BIN / "wfops"), *args],
            env={**self.env, **(extra_env or {})},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        self.outputs.append(completed.stdout + completed.stderr)
        return completed.returncode, completed.stdout + completed.stderr

    def wfops_asked(self, *args: str) -> tuple[int, str]:
        """wfops with --ask-vault-pass on a terminal of its own (a pty): the password is typed at the prompt."""
        child = pexpect.spawn(
            str(VENV_BIN / "wfops"), [*args, "--ask-vault-pass"], env=self.env, cwd=str(REPO), encoding="utf-8"
        )
        child.expect("Vault password: ", timeout=60)
        child.sendline(self.password)
        child.expect(pexpect.EOF, timeout=900)
        child.close()
        output = str(child.before)
        self.outputs.append(output)
        return int(child.exitstatus if child.exitstatus is not None else -1), output

    def summary(self, output: str) -> dict:
        run_id = run_id_of([line for line in output.splitlines() if " · run " in line])
        return json.loads((self.project / "runs" / run_id / "summary.json").read_text())


@pytest.fixture(scope="module")
def ssh_host() -> Iterator[SshScene]:
    assert os.geteuid() == 0, "the SSH scenario creates the deploy user and a sudoers rule: run it as root"
    # Outside pytest's 0700 temporary tree: the deploy user must reach the host paths and the app's log.
    # Every piece is undone in reverse order however far the setup got (a user or a sudoers rule never leaks).
    with contextlib.ExitStack() as cleanup:
        root = Path(tempfile.mkdtemp(prefix="wfops-ssh-", dir="/tmp"))
        cleanup.callback(shutil.rmtree, root, ignore_errors=True)
        root.chmod(0o755)
        host = cleanup.enter_context(deploy_host(root))
        box = start_sandbox(root / "sandbox", guests=1000)
        cleanup.callback(stop_sandbox, box)
        (root / "sandbox").chmod(0o755)
        password = f"SentinelVaultPassw0rd-{secrets.token_hex(6)}"
        password_file = root / "vault-password"
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        project = staging_project(root / "project", host, root / "sandbox", password_file)
        tmp = root / "tmp"
        tmp.mkdir(mode=0o700)
        yield SshScene(host, project, box, password_file, password, tmp)


def _owner_and_mode(path: Path) -> tuple[str, str]:
    info = path.stat()
    return pwd.getpwuid(info.st_uid).pw_name, oct(stat.S_IMODE(info.st_mode))


def _commit(box: SandboxHandle) -> str:
    url = json.loads((box.directory / "services.json").read_text())["app_url"] + "/api/health"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())["commit"]


def _ledger(host: SshHost) -> list[dict]:
    return [json.loads(line) for line in (host.host_dir / "var/lib/weddingflo/ledger.jsonl").read_text().splitlines()]


def test_release_and_rollback_over_ssh_with_an_encrypted_vault_given_every_way(ssh_host: SshScene) -> None:
    scene, host, box = ssh_host, ssh_host.host, ssh_host.box
    with CommandLineSampler() as sampler:
        _refused_without_the_right_password(scene)
        _a_dry_run_then_a_release_and_a_database_rollback_with_a_password_file(scene, host, box)
        _wfops_killed_mid_migration_leaves_nothing_running_on_the_host(scene, box)
        ways = {
            "--vault-id": lambda *args: scene.wfops(*args, "--vault-id", f"{ENV}@{scene.password_file}"),
            "--ask-vault-pass": scene.wfops_asked,
            "ANSIBLE_VAULT_PASSWORD_FILE": lambda *args: scene.wfops(
                *args, extra_env={"ANSIBLE_VAULT_PASSWORD_FILE": str(scene.password_file)}
            ),
            "ANSIBLE_VAULT_IDENTITY_LIST": lambda *args: scene.wfops(
                *args, extra_env={"ANSIBLE_VAULT_IDENTITY_LIST": f"{ENV}@{scene.password_file}"}
            ),
        }
        for index, (way, wfops) in enumerate(ways.items(), start=2):
            code, output = wfops("release", "--env", ENV, "--ref", f"over-ssh-{index}")
            assert code == 0, f"{way}: {output[-3000:]}"
            assert _commit(box) == f"over-ssh-{index}", way
            code, output = wfops("rollback", "--env", ENV)
            assert code == 0, f"{way}: {output[-3000:]}"
            assert scene.summary(output)["status"] == "successful"
            # Where a code rollback goes is the rollback role's rule (the ledger's previous release); here: away.
            assert _commit(box) != f"over-ssh-{index}", f"{way}: the code went back"
    assert [e["kind"] for e in _ledger(host)][-8:] == ["release", "rollback"] * 4
    _the_vault_password_is_found_nowhere(scene, sampler.seen)
    # The typed password's pipe lives only while its run does (a killed wfops above used a password file).
    assert not list(scene.tmp.glob("wfops-vault-*")), "no pipe left behind"


def _refused_without_the_right_password(scene: SshScene) -> None:
    code, output = scene.wfops("release", "--env", ENV, "--ref", "no-password")
    assert code == 2
    assert "group_vars/staging/vault.yml is encrypted and no vault password was given" in output
    wrong = scene.password_file.with_name("wrong-password")
    wrong.write_text("not-the-password\n")
    code, output = scene.wfops("release", "--env", ENV, "--ref", "x", "--vault-password-file", str(wrong))
    assert code == 2 and "does not decrypt group_vars/staging/vault.yml" in output
    assert not (scene.project / "runs").exists(), "nothing ran"


def _a_dry_run_then_a_release_and_a_database_rollback_with_a_password_file(
    scene: SshScene, host: SshHost, box: SandboxHandle
) -> None:
    vault = ("--vault-password-file", str(scene.password_file))
    before = table_checksums(box)
    # A dry run first: its backup plan looks at the backup user's directory, so it needs become too.
    code, output = scene.wfops("release", "--env", ENV, "--ref", "over-ssh", "--check", *vault)
    assert code == 0, output[-3000:]
    assert table_checksums(box) == before, "a dry run writes nothing, not even a smoke session"
    assert _commit(box) != "over-ssh"

    code, output = scene.wfops("release", "--env", ENV, "--ref", "over-ssh", *vault)
    assert code == 0, output[-3000:]
    assert _commit(box) == "over-ssh"
    assert table_checksums(box) != before, "the release migrated and normalised the database"
    # It came over SSH as deploy, key-authenticated, to the address the vault holds.
    assert f"Accepted publickey for {DEPLOY_USER} from 127.0.0.1" in host.sshd_log.read_text()

    # become: the backup user owns the backups and the settings; root owns the tool and the units.
    backups = sorted((host.host_dir / "var/backups/weddingflo").glob("backup-*.dump"))
    assert len(backups) == 1
    assert _owner_and_mode(backups[0]) == (BACKUP_USER, "0o600")
    assert _owner_and_mode(backups[0].with_suffix(".json")) == (BACKUP_USER, "0o600")
    assert _owner_and_mode(host.host_dir / "etc/weddingflo-backup/backup.env") == (BACKUP_USER, "0o600")
    assert _owner_and_mode(host.host_dir / "etc/weddingflo-backup") == (BACKUP_USER, "0o700")
    assert _owner_and_mode(host.host_dir / "usr/local/bin/weddingflo-backup") == ("root", "0o755")
    for unit in ("weddingflo-backup.service", "weddingflo-backup.timer"):
        assert _owner_and_mode(host.host_dir / "etc/systemd/system" / unit) == ("root", "0o644")
    assert f"User={BACKUP_USER}" in (host.host_dir / "etc/systemd/system/weddingflo-backup.service").read_text()
    assert [(e["kind"], e["ref"], e["status"]) for e in _ledger(host)] == [("release", "over-ssh", "successful")]

    # A database rollback to the release's backup, over the same connection.
    backup_id = backups[0].stem
    code, output = scene.wfops(
        "rollback", "--env", ENV, "--database", "--backup", backup_id, "--confirm", backup_id, *vault
    )
    assert code == 0, output[-3000:]
    assert table_checksums(box) == before, "the pre-release database is back (smoke left no session behind)"
    assert _commit(box) != "over-ssh", "the code went back to the previous deployment"
    safety = sorted((host.host_dir / "var/backups/weddingflo").glob("backup-*.dump"))
    assert len(safety) == 2 and all(_owner_and_mode(path)[0] == BACKUP_USER for path in safety)
    assert [e["kind"] for e in _ledger(host)] == ["release", "rollback"]


def _wfops_killed_mid_migration_leaves_nothing_running_on_the_host(scene: SshScene, box: SandboxHandle) -> None:
    """The migration runs on the host as root (sudo), over SSH: wfops gone, it must notice and stop by itself."""
    assert _bookkeeping_rows(box) == 23, "the database rollback brought back the previous release"
    blocker = _holding(box, "SELECT count(*) FROM clients")  # 0024's ALTER TABLE clients waits on it
    process = subprocess.Popen(
        [
            *(str(VENV_BIN / "wfops"), "run", "migrate", "--env", ENV, "--ref", "killed-over-ssh"),
            *("--vault-password-file", str(scene.password_file), "-e", "migrate_lock_timeout=60s"),
        ],
        env=scene.env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    run_id = run_id_of([process.stderr.readline()])
    _wait_until_waiting(box, "wfops-migrate")
    remote = [p for p in processes_of(run_id) if " python3" in p and "python3.11" not in p]
    assert remote, f"the module runs on the host under the host's python3: {processes_of(run_id)}"
    process.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    process.wait()
    while processes_of(run_id):
        assert time.monotonic() - killed < 30, processes_of(run_id)
        time.sleep(0.1)
    assert time.monotonic() - killed < 5, "every process of the run, here and on the host, ended within 5 s"
    blocker.close()
    assert _bookkeeping_rows(box) == 23, "nothing was applied"


def _the_vault_password_is_found_nowhere(scene: SshScene, process_arguments: set[str]) -> None:
    """Not in any output, run artifact (env/, command, job events, summaries), host file or process argument."""
    searched = {"terminal output": "\n".join(scene.outputs), "process arguments": "\n".join(process_arguments)}
    files = [path for path in (scene.project / "runs").rglob("*") if path.is_file()]
    assert any(path.name == "command" for path in files) and any("job_events" in path.parts for path in files)
    files += [path for path in scene.host.host_dir.rglob("*") if path.is_file() and path.suffix != ".dump"]
    for path in files:
        searched[str(path)] = path.read_text(errors="replace")
    for where, text in searched.items():
        assert scene.password not in text, f"the vault password leaked into {where}"
