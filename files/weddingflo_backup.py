#!/usr/bin/env python3
"""weddingflo-backup: verified pg_dump backups of the WeddingFlo database, on the host.

One tool for the release backup, the scheduled backup and the rollback's safety dump. Python standard
library only (it runs with the host's python3); PostgreSQL's own psql, pg_dump and pg_restore do the
work. DATABASE_URL comes from a 0600 env file (--env-file, `-` for stdin) or the environment, never
from argv, and reaches the PostgreSQL tools as libpq environment variables.

  create [--reason release|scheduled|pre-rollback|manual] [--release-ref REF] [--dry-run]
         [--verify [--restore-drill]] [--offsite-copy] [--prune]
  list [--json] [--cached]        --cached: the last known offsite catalogue, without the network
  verify ID [--restore-drill]
  verify ID --offsite             download the offsite copy and check it against its manifest
  prune [--dry-run] [--json]
  restore ID --dbname NAME [--jobs N] [--lock-timeout 30s]
  resolve ID|latest        (latest = the newest verified backup that is not a safety backup)
  compare ID
  changes-since TIME|ID [--sample N]
  offsite copy [ID] [--no-prune] | offsite pull | offsite prune [--dry-run] [--json]
  offsite verify [ID ...]         every offsite copy when none is named (states: verified or MISMATCH)
  offsite key-check               prove OFFSITE_CRYPT_PASSWORD/_SALT open the target
  fetch ID
  drill [ID]
  notify-failure UNIT             what the units' OnFailure= runs: the failure posted to NOTIFY_WEBHOOK_URL

Offsite copies go through rclone (sftp, s3, ...: OFFSITE_REMOTE_* settings), encrypted by rclone's crypt
remote unless OFFSITE_CRYPT=false. The remotes are defined in rclone's environment, never in argv. A backup
that is not on this host but in the offsite catalogue is fetched (and checked against its manifest) by
verify and restore. Every command that reads or writes offsite first opens the target's key check (a small
file the key wrote there, weddingflo-keycheck.bin): a wrong key or salt stops it before anything is read,
written or forgotten.

Exit status: 0 done, 1 failed (one sentence on stderr says why), 2 bad usage.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import datetime as dt
import errno
import fcntl
import getpass
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TOOL = "weddingflo-backup"
DEFAULT_ENV_FILE = "/etc/weddingflo-backup/backup.env"
NAME_PATTERN = re.compile(r"^backup-\d{8}-\d{6}(-\d+)?$")
REASONS = ("release", "scheduled", "pre-rollback", "manual")
# What a caller without a release passes for its ref (Ansible's placeholder): no release at all.
_NO_RELEASE_REFS = ("", "unset")
POOLER_PORT = 6543
# Estimated archive size as a share of the dumped tables' on-disk size, by compression level.
_SIZE_FACTOR_COMPRESSED = 0.6
_SIZE_FACTOR_UNCOMPRESSED = 1.2
_PROGRESS_EVERY_S = 5.0
# Read/write/hash unit of the archive stream.
_CHUNK = 1 << 20


class BackupError(Exception):
    """A failure a person can act on; the message is the one sentence printed."""


class RcloneError(BackupError):
    """rclone failed; `line` is its relevant line (timestamp dropped, secrets scrubbed, never cut)."""

    def __init__(self, message: str, line: str) -> None:
        super().__init__(message)
        self.line = line

    @property
    def authentication_failed(self) -> bool:
        """crypt could not authenticate what it read: a wrong key, or (once the key check passed) damaged bytes.

        A file's last block is short: when it fails authentication, rclone reports the short read (`unexpected EOF`)
        instead of the block message. A connection cut mid-transfer could read the same, but rclone retries the
        whole transfer (OFFSITE_RETRIES, 3) before it gives up, and only then is the copy called damaged."""
        return any(sign in self.line for sign in ("failed to authenticate decrypted block", "unexpected EOF"))


class KeyMismatch(BackupError):
    """The crypt password or salt does not open this offsite target: nothing may be read, written or forgotten."""


# --------------------------------------------------------------------------- configuration


@dataclass
class Settings:
    database_url: str
    backup_dir: Path
    retention_days: int = 7
    retention_min_count: int = 3
    compression: int = 1
    schemas: tuple[str, ...] = ("public", "drizzle")
    metrics_dir: Path | None = None
    pg_bindir: Path | None = None
    drill_database_url: str | None = None
    notify_webhook_url: str | None = None
    offsite: OffsiteSettings | None = None
    # A checksum of every table's contents in the manifest (taken in the dump's snapshot), checked by compare and
    # the drills; off, they compare row counts only.
    table_checksums: bool = True
    # The offsite target once opened (its key checked): one per run, see require_offsite().
    offsite_target: Offsite | None = field(default=None, repr=False)


@dataclass
class OffsiteSettings:
    """Where offsite copies go: an rclone backend (OFFSITE_REMOTE_TYPE=sftp|s3|..., its options) and a path."""

    remote: dict[str, str]
    path: str
    crypt: bool = True
    crypt_password: str = field(default="", repr=False)
    crypt_salt: str = field(default="", repr=False)
    retention_days: int = 7
    retention_min_count: int = 3
    rclone: str = "rclone"
    # rclone's own defaults: a whole operation tried 3 times, each network call 10 times (with backoff).
    retries: int = 3
    low_level_retries: int = 10


_TRUE = ("1", "true", "yes", "on")


def _offsite_settings(values: dict[str, str], retention_days: int, min_count: int) -> OffsiteSettings | None:
    remote = {
        key.removeprefix("OFFSITE_REMOTE_").lower(): value
        for key, value in values.items()
        if key.startswith("OFFSITE_REMOTE_") and value.strip()
    }
    if values.get("OFFSITE_ENABLED", "true" if remote else "false").strip().lower() not in _TRUE:
        return None
    if "type" not in remote:
        raise BackupError("OFFSITE_ENABLED is on but OFFSITE_REMOTE_TYPE (sftp, s3, ...) is not set in the env file")
    crypt = values.get("OFFSITE_CRYPT", "true").strip().lower() in _TRUE
    password = values.get("OFFSITE_CRYPT_PASSWORD", "")
    if crypt and not password:
        raise BackupError(
            "OFFSITE_CRYPT_PASSWORD is not set: offsite copies are encrypted by default; put the key from the vault "
            "in the env file (or set OFFSITE_CRYPT=false to copy unencrypted)"
        )
    return OffsiteSettings(
        remote=remote,
        path=values.get("OFFSITE_PATH", "").strip().rstrip("/") or "weddingflo-backups",
        crypt=crypt,
        crypt_password=password,
        crypt_salt=values.get("OFFSITE_CRYPT_SALT", ""),
        retention_days=int(values.get("OFFSITE_RETENTION_DAYS") or retention_days),
        retention_min_count=int(values.get("OFFSITE_RETENTION_MIN_COUNT") or min_count),
        rclone=values.get("OFFSITE_RCLONE", "").strip() or "rclone",
        retries=int(values.get("OFFSITE_RETRIES") or 3),
        low_level_retries=int(values.get("OFFSITE_LOW_LEVEL_RETRIES") or 10),
    )


def _parse_env_lines(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise BackupError(f"env file line {number} is not KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def read_env_file(path: str | None) -> dict[str, str]:
    """KEY=VALUE lines from a private file, or from stdin with `-`."""
    if path == "-":
        return _parse_env_lines(sys.stdin.read())
    candidate = Path(path or DEFAULT_ENV_FILE)
    if not candidate.exists():
        if path:
            raise BackupError(f"env file {candidate} does not exist")
        return {}
    mode = candidate.stat().st_mode & 0o777
    if mode & 0o077:
        raise BackupError(f"env file {candidate} is readable by others (mode {mode:o}): chmod 600 {candidate}")
    return _parse_env_lines(candidate.read_text())


def load_settings(env_file: str | None) -> Settings:
    values = {
        **read_env_file(env_file),
        **{
            k: v
            for k, v in os.environ.items()
            if k.startswith(("BACKUP_", "DATABASE_URL", "PG_BINDIR", "OFFSITE_", "NOTIFY_WEBHOOK_URL"))
        },
    }
    url = values.get("DATABASE_URL", "").strip()
    if not url:
        raise BackupError("DATABASE_URL is not set: put it in the env file (mode 0600) or the environment")
    directory = values.get("BACKUP_DIR", "").strip()
    if not directory:
        raise BackupError("BACKUP_DIR is not set: put it in the env file or the environment")
    try:
        retention_days = int(values.get("BACKUP_RETENTION_DAYS", "7"))
        retention_min_count = int(values.get("BACKUP_RETENTION_MIN_COUNT", "3"))
        return Settings(
            database_url=url,
            backup_dir=Path(directory),
            retention_days=retention_days,
            retention_min_count=retention_min_count,
            compression=int(values.get("BACKUP_COMPRESSION", "1")),
            schemas=tuple(s.strip() for s in values.get("BACKUP_SCHEMAS", "public,drizzle").split(",") if s.strip()),
            metrics_dir=Path(values["BACKUP_METRICS_DIR"]) if values.get("BACKUP_METRICS_DIR") else None,
            pg_bindir=Path(values["PG_BINDIR"]) if values.get("PG_BINDIR") else None,
            drill_database_url=values.get("BACKUP_DRILL_DATABASE_URL") or None,
            notify_webhook_url=values.get("NOTIFY_WEBHOOK_URL") or None,
            offsite=_offsite_settings(values, retention_days, retention_min_count),
            table_checksums=values.get("BACKUP_TABLE_CHECKSUMS", "true").strip().lower() in _TRUE,
        )
    except ValueError as exc:
        raise BackupError(f"a numeric BACKUP_*/OFFSITE_* setting is not a number: {exc}") from exc


# --------------------------------------------------------------------------- the database

# The connection rule of plugins/module_utils/wfops_pg.py, for the host: the string is parsed by libpq itself (here
# the host's libpq, the one psql, pg_dump and pg_restore load), every parameter reaches them unchanged, a transaction
# pooler is refused, and no message ever holds the password. tests/test_connection.py holds both to the same answers.
_POOLER_FLAG = re.compile(r"(?:^|[?&\s])pgbouncer\s*=\s*'?(true|1|yes)\b", re.IGNORECASE)
_UNENCODED_PASSWORD = re.compile(r"^postgres(?:ql)?://[^/?#@:]*:(?![0-9,]*[/?#])[^/?#@]*[/?#][^@]*@", re.IGNORECASE)
_QUOTED = re.compile(r'"([^"]*)"')
_SERVICE = "weddingflo-backup"


class _ConninfoOption(ctypes.Structure):
    _fields_ = [
        ("keyword", ctypes.c_char_p),
        ("envvar", ctypes.c_char_p),
        ("compiled", ctypes.c_char_p),
        ("val", ctypes.c_char_p),
        ("label", ctypes.c_char_p),
        ("dispchar", ctypes.c_char_p),
        ("dispsize", ctypes.c_int),
    ]


class Libpq:
    """The host's libpq, asked how it reads a connection string (PQconninfoParse) and which PG* variable carries
    each parameter (PQconndefaults), so the tool hands pg_dump exactly what the string says."""

    def __init__(self, pg_bindir: Path | None) -> None:
        candidates = [str(pg_bindir.parent / "lib" / "libpq.so.5")] if pg_bindir is not None else []
        candidates.append("libpq.so.5")
        for candidate in candidates:
            try:
                self._lib = ctypes.CDLL(candidate)
                break
            except OSError:
                continue
        else:
            raise BackupError("libpq is not installed on this host: install postgresql-client (or set PG_BINDIR)")
        self._lib.PQconninfoParse.restype = ctypes.POINTER(_ConninfoOption)
        self._lib.PQconninfoParse.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
        self._lib.PQconndefaults.restype = ctypes.POINTER(_ConninfoOption)
        self._lib.PQconninfoFree.argtypes = [ctypes.POINTER(_ConninfoOption)]
        self._lib.PQfreemem.argtypes = [ctypes.c_void_p]
        self.version_number = int(self._lib.PQlibVersion())
        self.envvars = {keyword: envvar for keyword, envvar, _ in self._options(self._lib.PQconndefaults())}

    @property
    def version(self) -> str:
        return f"{self.version_number // 10000}.{self.version_number % 10000}"

    def _options(self, options: Any) -> list[tuple[str, str | None, str | None]]:
        found = []
        index = 0
        while options[index].keyword:
            option = options[index]
            found.append(
                (
                    option.keyword.decode(),
                    option.envvar.decode() if option.envvar else None,
                    option.val.decode() if option.val is not None else None,
                )
            )
            index += 1
        self._lib.PQconninfoFree(options)
        return found

    def parse(self, text: str) -> dict[str, str]:
        error = ctypes.c_char_p()
        options = self._lib.PQconninfoParse(text.encode(), ctypes.byref(error))
        if not options:
            message = (error.value or b"out of memory").decode(errors="replace")
            if error.value is not None:
                self._lib.PQfreemem(error)
            # What libpq quotes may be part of the string (the password too): only parameter names are kept.
            reason = _QUOTED.sub(
                lambda m: m.group(0) if re.fullmatch(r"[A-Za-z_]\w*|=", m.group(1)) else '"..."',
                " ".join(message.split()),
            )
            raise BackupError(
                f"the database URL is not a connection string the host's libpq {self.version} can read ({reason}): "
                "use postgresql://user:password@host:5432/dbname?param=value with parameters libpq "
                f"{self.version} knows"
            )
        return {keyword: value for keyword, _, value in self._options(options) if value is not None}


_LIBPQ: dict[Path | None, Libpq] = {}


def host_libpq(pg_bindir: Path | None) -> Libpq:
    if pg_bindir not in _LIBPQ:
        _LIBPQ[pg_bindir] = Libpq(pg_bindir)
    return _LIBPQ[pg_bindir]


@dataclass(frozen=True)
class Database:
    """Where a connection string points, as the host's libpq reads it; the password never leaves libpq_env() and
    the private service file."""

    params: tuple[tuple[str, str], ...]
    envvars: tuple[tuple[str, str], ...] = field(repr=False)

    @classmethod
    def from_url(cls, url: str, pg_bindir: Path | None = None, what: str = "DATABASE_URL") -> Database:
        text = url.strip()
        if _POOLER_FLAG.search(text):
            raise BackupError(
                f"{what} is flagged pgbouncer=true, a transaction pooler: pg_dump and its snapshot need a session "
                "connection; use Supabase's direct connection on port 5432"
            )
        if _UNENCODED_PASSWORD.match(text):
            raise BackupError(
                f"{what}'s password holds a '/', '?', '#' or '@' that is not percent-encoded, so libpq would read "
                "part of it as the host or the database: encode them (/ as %2F, ? as %3F, # as %23, @ as %40)"
            )
        libpq = host_libpq(pg_bindir)
        try:
            params = libpq.parse(text)
        except BackupError as exc:
            raise BackupError(str(exc).replace("the database URL", what, 1)) from None
        return cls(tuple(sorted(params.items())), tuple(sorted((k, v) for k, v in libpq.envvars.items() if v)))

    def get(self, keyword: str) -> str:
        return dict(self.params).get(keyword, "")

    @property
    def host(self) -> str:
        return (self.get("host") or self.get("hostaddr") or os.environ.get("PGHOST", "")).split(",")[0] or "localhost"

    @property
    def port(self) -> str:
        return (self.get("port") or os.environ.get("PGPORT", "")).split(",")[0].strip() or "5432"

    @property
    def user(self) -> str:
        return self.get("user") or os.environ.get("PGUSER") or getpass.getuser()

    @property
    def dbname(self) -> str:
        return self.get("dbname") or self.user

    def refuse_pooler(self) -> None:
        """pg_dump's snapshot and session state need a direct/session connection, not a pooler."""
        if str(POOLER_PORT) in [port.strip() for port in self.get("port").split(",")]:
            raise BackupError(
                f"DATABASE_URL points at a transaction pooler ({self.host}:{self.port}): pg_dump and its "
                "snapshot need a session connection; use Supabase's direct connection on port 5432"
            )

    def libpq_env(self, dbname: str | None = None) -> dict[str, str]:
        """Every parameter of the string as the PG* variable libpq reads it; the few without one (sslpassword,
        keepalives, ...) in a 0600 service file of this process's own."""
        envvars = dict(self.envvars)
        env = {"PGAPPNAME": TOOL, "PGCONNECT_TIMEOUT": "10"}
        rest: dict[str, str] = {}
        for keyword, value in self.params:
            if keyword in envvars:
                env[envvars[keyword]] = value
            else:
                rest[keyword] = value
        if dbname:
            env["PGDATABASE"] = dbname
        if rest:
            if "PGSERVICE" in env:
                raise BackupError(
                    f"DATABASE_URL names the service {env['PGSERVICE']} and also {', '.join(sorted(rest))}, which "
                    "libpq reads from no variable: put them in that service's entry instead"
                )
            env["PGSERVICEFILE"] = str(_service_file(rest))
            env["PGSERVICE"] = _SERVICE
        return env

    @property
    def secrets(self) -> list[str]:
        return [value for keyword, value in self.params if keyword in ("password", "sslpassword") and value]

    def describe(self) -> dict[str, Any]:
        port = int(self.port) if self.port.isdigit() else self.port
        return {"host": self.host, "port": port, "name": self.dbname, "user": self.user}


_SERVICE_FILES: dict[tuple[tuple[str, str], ...], Path] = {}


def _service_file(params: dict[str, str]) -> Path:
    """A private service file (0600, in a 0700 directory removed at exit) holding parameters no variable carries."""
    key = tuple(sorted(params.items()))
    if key not in _SERVICE_FILES:
        directory = Path(tempfile.mkdtemp(prefix=f"{TOOL}-libpq-"))
        atexit.register(shutil.rmtree, directory, True)
        path = directory / "pg_service.conf"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(f"[{_SERVICE}]\n" + "".join(f"{k}={v}\n" for k, v in key))
        _SERVICE_FILES[key] = path
    return _SERVICE_FILES[key]


def _tool_path(settings: Settings, name: str) -> str:
    if settings.pg_bindir is not None:
        return str(settings.pg_bindir / name)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed: install postgresql-client (or set PG_BINDIR)")
    return found


def _child_env(database: Database, dbname: str | None = None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    return {**base, **database.libpq_env(dbname), "LC_ALL": "C"}


class PsqlSession:
    """One psql process kept open, so a transaction (and its exported snapshot) outlives each query."""

    _MARK = "__weddingflo_backup_end__"

    def __init__(self, settings: Settings, database: Database, dbname: str | None = None) -> None:
        self._process = subprocess.Popen(
            [_tool_path(settings, "psql"), "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_child_env(database, dbname),
            bufsize=1,
        )

    def query(self, sql: str) -> list[list[str]]:
        assert self._process.stdin is not None and self._process.stdout is not None
        try:
            self._process.stdin.write(f"{sql.rstrip().rstrip(';')};\n\\echo {self._MARK}\n")
            self._process.stdin.flush()
        except BrokenPipeError:
            raise BackupError(f"the database session ended: {self._error()}") from None
        rows: list[list[str]] = []
        for line in self._process.stdout:
            if line.rstrip("\n") == self._MARK:
                return rows
            if line.strip():
                rows.append(line.rstrip("\n").split("\t"))
        raise BackupError(f"the database session ended: {self._error()}")

    def _error(self) -> str:
        self._process.wait(timeout=10)
        assert self._process.stderr is not None
        message = " ".join(self._process.stderr.read().split())
        return message or f"psql exited with {self._process.returncode}"

    def close(self) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(BrokenPipeError, OSError):
                assert self._process.stdin is not None
                self._process.stdin.write("\\q\n")
                self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()


def connect(settings: Settings, database: Database, dbname: str | None = None) -> PsqlSession:
    session = PsqlSession(settings, database, dbname)
    try:
        session.query("SELECT 1")
    except BackupError as exc:
        session.close()
        reason = str(exc).removeprefix("the database session ended: ")
        for secret in sorted(database.secrets, key=len, reverse=True):
            reason = reason.replace(secret, "***")
        raise BackupError(
            f"cannot reach the database {database.dbname} at {database.host}:{database.port} as {database.user}: "
            f"{reason}"
        ) from None
    return session


def _quoted_list(values: tuple[str, ...]) -> str:
    return "ARRAY[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


# A table's contents as one number: the sum over its rows of the first 64 bits of md5(the row as text). One pass, no
# sort, the same whatever the rows' order; the row counts ride along in the same scan. The text form of a value
# depends on a few session settings, fixed here so that any server prints the same rows the same way.
CHECKSUM_KIND = "sum64-md5-row-text-v1"
_CHECKSUM_SESSION = (
    # A restore's own session runs with an empty search_path (pg_restore sets it): the same for every session.
    "SET search_path = pg_catalog",
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 1",
    "SET bytea_output = 'hex'",
    "SET lc_monetary = 'C'",
)


@dataclass(frozen=True)
class TableContents:
    """Every table's row count and, when taken, its checksum (CHECKSUM_KIND), in one snapshot."""

    counts: dict[str, int]
    checksums: dict[str, str] | None


def _contents_sql(schemas: tuple[str, ...], checksums: bool) -> str:
    """One query: a row (table, count, checksum or '') per table of the schemas."""
    inner = (
        "'SELECT count(*) AS c, coalesce(sum((''x'' || left(md5(t::text), 16))::bit(64)::bigint), 0) AS s FROM %I.%I t'"
        if checksums
        else "'SELECT count(*) AS c, NULL AS s FROM %I.%I'"
    )
    return (
        "SELECT format('%I.%I', n.nspname, c.relname), (xpath('/row/c/text()', x))[1]::text,"
        " coalesce((xpath('/row/s/text()', x))[1]::text, '')"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,"
        f" LATERAL query_to_xml(format({inner}, n.nspname, c.relname), false, true, '') x"
        f" WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY({_quoted_list(schemas)}) ORDER BY 1"
    )


def _contents_from_rows(rows: list[list[str]], checksums: bool) -> TableContents:
    return TableContents(
        counts={name: int(count) for name, count, _ in rows},
        checksums={name: digest for name, _, digest in rows} if checksums else None,
    )


def table_contents(session: PsqlSession, schemas: tuple[str, ...], checksums: bool) -> TableContents:
    """count(*) (and the checksum) of every table in the schemas, in the session's snapshot, in one query."""
    if checksums:
        for statement in _CHECKSUM_SESSION:
            session.query(statement)
    return _contents_from_rows(session.query(_contents_sql(schemas, checksums)), checksums)


def manifest_contents(manifest: dict[str, Any]) -> TableContents:
    """What a manifest recorded; checksums only when taken the way this tool takes them."""
    checksums = manifest.get("table_checksums") if manifest.get("checksum_kind") == CHECKSUM_KIND else None
    return TableContents(counts=manifest.get("row_counts", {}), checksums=checksums)


def content_mismatches(expected: TableContents, found: TableContents, verb: str = "") -> list[str]:
    """Tables whose row count, or else contents, differ from the manifest's (`verb`: "restored " in a drill)."""
    mismatches = []
    sums_expected, sums_found = expected.checksums or {}, found.checksums or {}
    for table in sorted(set(expected.counts) | set(found.counts)):
        rows = found.counts.get(table)
        if rows != expected.counts.get(table):
            mismatches.append(f"{table}: {verb}{rows} rows, the manifest says {expected.counts.get(table)}")
        elif (
            expected.checksums is not None
            and found.checksums is not None
            and sums_found.get(table) != sums_expected.get(table)
        ):
            mismatches.append(
                f"{table}: {verb}{rows} rows as the manifest says, but other contents "
                f"(checksum {sums_found.get(table)}, the manifest says {sums_expected.get(table)})"
            )
    return mismatches


def compared(expected: TableContents, found: TableContents) -> dict[str, int]:
    """How much was compared: tables by row count, and by checksum when both sides have them."""
    both = expected.checksums is not None and found.checksums is not None
    return {"tables_compared": len(expected.counts), "checksums_compared": len(expected.checksums or {}) if both else 0}


# One query, also where the table may not exist (the restore's own transaction): '' fields when it does not.
# One row always, never a blank line (the session drops those): `none` when Drizzle's table does not exist.
_MIGRATION_HEAD_SQL = (
    "SELECT coalesce((xpath('/row/n/text()', x))[1]::text, 'none'),"
    " coalesce((xpath('/row/c/text()', x))[1]::text, ''),"
    " coalesce((xpath('/row/h/text()', x))[1]::text, '')"
    " FROM (SELECT CASE WHEN to_regclass('drizzle.__drizzle_migrations') IS NOT NULL THEN query_to_xml("
    "'SELECT count(*) AS n, (SELECT created_at FROM drizzle.__drizzle_migrations ORDER BY created_at DESC, id DESC"
    " LIMIT 1) AS c, (SELECT hash FROM drizzle.__drizzle_migrations ORDER BY created_at DESC, id DESC LIMIT 1) AS h"
    " FROM drizzle.__drizzle_migrations', false, true, '') END AS x) AS head"
)


def _migration_head_from_row(row: list[str]) -> dict[str, Any] | None:
    count, created_at, digest = row
    if count == "none":
        return None
    return {"applied": int(count), "created_at": int(created_at) if created_at else None, "hash": digest or None}


def migration_head(session: PsqlSession) -> dict[str, Any] | None:
    """Drizzle's newest applied migration (created_at = the journal's `when`) and how many there are."""
    return _migration_head_from_row(session.query(_MIGRATION_HEAD_SQL)[0])


# --------------------------------------------------------------------------- archives and manifests


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def toc_entries(settings: Settings, path: Path) -> int:
    """How many entries pg_restore reads in the archive's table of contents."""
    result = subprocess.run(
        [_tool_path(settings, "pg_restore"), "--list", str(path)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BackupError(f"pg_restore cannot read {path.name}: {' '.join(result.stderr.split())[:300]}")
    return sum(1 for line in result.stdout.splitlines() if line and not line.startswith(";"))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically (temp file, fsync, rename), mode 0600."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    _fsync_dir(path.parent)


@dataclass
class Backup:
    """A finished backup: the archive and its manifest beside it."""

    backup_id: str
    directory: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def archive(self) -> Path:
        return self.directory / f"{self.backup_id}.dump"

    @property
    def manifest_path(self) -> Path:
        return self.directory / f"{self.backup_id}.json"

    @property
    def created_at(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.manifest["created_at"])

    @property
    def good(self) -> bool:
        """Present, the size the manifest says, and never failed a verification."""
        verification = self.manifest.get("verification") or {}
        return (
            self.archive.is_file()
            and self.archive.stat().st_size == self.manifest.get("size_bytes")
            and verification.get("result") != "failed"
        )


def ensure_backup_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if directory.stat().st_mode & 0o077:
        directory.chmod(0o700)


def list_backups(directory: Path) -> list[Backup]:
    """Every finished backup (an archive with its manifest), newest first."""
    backups = []
    if not directory.is_dir():
        return backups
    for manifest_path in directory.glob("backup-*.json"):
        backup_id = manifest_path.stem
        if not NAME_PATTERN.match(backup_id):
            continue
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        backups.append(Backup(backup_id, directory, manifest))
    return sorted(backups, key=lambda b: (b.manifest.get("created_at", ""), b.backup_id), reverse=True)


def find_backup(directory: Path, backup_id: str) -> Backup:
    if backup_id == "latest":
        found = list_backups(directory)
        if not found:
            raise BackupError(f"there are no backups in {directory}")
        return found[0]
    for backup in list_backups(directory):
        if backup.backup_id == backup_id:
            return backup
    known = ", ".join(b.backup_id for b in list_backups(directory)[:5]) or "none"
    raise BackupError(f"no backup {backup_id!r} in {directory} (newest: {known}); see `{TOOL} list`")


# --------------------------------------------------------------------------- progress and metrics


def progress(message: str) -> None:
    print(f"{TOOL}: {message}", file=sys.stderr, flush=True)


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


class Metrics:
    """A Prometheus textfile for node_exporter's textfile collector (written atomically)."""

    NAME = "weddingflo_backup.prom"

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def _read(self) -> dict[str, str]:
        if self.directory is None or not (self.directory / self.NAME).is_file():
            return {}
        values = {}
        for line in (self.directory / self.NAME).read_text().splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.partition(" ")
                values[key] = value
        return values

    def record(self, success: bool, size: int = 0, duration_s: float = 0.0) -> None:
        now = f"{time.time():.0f}"
        values = {
            "weddingflo_backup_last_run_timestamp_seconds": now,
            "weddingflo_backup_last_run_success": "1" if success else "0",
        }
        if success:
            values["weddingflo_backup_last_success_timestamp_seconds"] = now
            values["weddingflo_backup_last_size_bytes"] = str(size)
            values["weddingflo_backup_last_duration_seconds"] = f"{duration_s:.3f}"
        self._write(values)

    def record_job(self, job: str, success: bool, duration_s: float, **extra: float) -> None:
        """weddingflo_backup_<job>_last_{run_timestamp_seconds,result,duration_seconds,success_timestamp_seconds}."""
        now = f"{time.time():.0f}"
        prefix = f"weddingflo_backup_{job}_last"
        values = {
            f"{prefix}_run_timestamp_seconds": now,
            f"{prefix}_result": "1" if success else "0",
            f"{prefix}_duration_seconds": f"{duration_s:.3f}",
        }
        if success:
            values[f"{prefix}_success_timestamp_seconds"] = now
            values.update({f"{prefix}_{name}": f"{value:g}" for name, value in extra.items()})
        self._write(values)

    def _write(self, new_values: dict[str, str]) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        values = {**self._read(), **new_values}
        lines = ["# weddingflo-backup: last backup, offsite copy and restore drill (node_exporter textfile collector)"]
        lines += [f"{key} {value}" for key, value in sorted(values.items())]
        temporary = self.directory / f".{self.NAME}.{os.getpid()}"
        temporary.write_text("\n".join(lines) + "\n")
        temporary.chmod(0o644)
        temporary.replace(self.directory / self.NAME)


# --------------------------------------------------------------------------- create


def notify_failure(settings: Settings, event: str, message: str) -> None:
    """Tell the team (Slack-compatible webhook) that unattended work failed; a dead webhook only earns a line."""
    url = settings.notify_webhook_url or ""
    if not url.startswith(("https://", "http://")):
        return
    host = os.uname().nodename
    payload = {
        "text": f"WeddingFlo {host}: {event}: {message}",
        "wfops": {
            "event": event,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "fields": {"host": host},
        },
    }
    request = urllib.request.Request(  # noqa: S310 - an http(s) URL the operator configured
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - the operator's own webhook
            pass
    except (OSError, ValueError) as exc:
        progress(f"could not notify the webhook of {event} ({type(exc).__name__}); the failure above stands")


def notify_unit_failure(settings: Settings, unit: str) -> dict[str, Any]:
    """What a unit's OnFailure= runs: the failed unit and how it ended (systemd's MONITOR_* variables) posted to the
    team's webhook. A timeout or a kill gets no word from the tool itself; this reports those too."""
    result = os.environ.get("MONITOR_SERVICE_RESULT") or "unknown"
    code, status = os.environ.get("MONITOR_EXIT_CODE"), os.environ.get("MONITOR_EXIT_STATUS")
    how = f"{result}: {code} {status}" if code and status else result
    message = f"{unit} failed ({how}); see journalctl -u {unit}"
    progress(message)
    notify_failure(settings, "unit-failed", message)
    return {"unit": unit, "result": result, "message": message, "notified": bool(settings.notify_webhook_url)}


def _reserve_backup_id(directory: Path, now: dt.datetime) -> str:
    """The runbook's name for this second, claimed atomically (O_EXCL) so two runs never share it."""
    base = now.strftime("backup-%Y%m%d-%H%M%S")
    suffix = 0
    while True:
        candidate = base if suffix == 0 else f"{base}-{suffix}"
        suffix += 1
        if (directory / f"{candidate}.dump").exists() or (directory / f"{candidate}.json").exists():
            continue
        try:
            os.close(os.open(directory / f".{candidate}.reserved", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            continue
        return candidate


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(directory: Path) -> list[str]:
    """Temporary archives left by a create that was killed (its pid is gone), and old id claims."""
    removed = []
    for claim in directory.glob(".backup-*.reserved"):
        if time.time() - claim.stat().st_mtime > 3600:
            claim.unlink(missing_ok=True)
    for partial in directory.glob(".backup-*.partial"):
        match = re.search(r"\.(\d+)\.partial$", partial.name)
        if match and _pid_alive(int(match.group(1))):
            continue
        partial.unlink(missing_ok=True)
        removed.append(partial.name)
    return removed


class _Interrupted(Exception):
    pass


def _raise_interrupted(signum: int, _frame: Any) -> None:
    raise _Interrupted(signal.Signals(signum).name)


def _dump_table_bytes(session: PsqlSession, schemas: tuple[str, ...]) -> int:
    """The tables' size from the catalog (relpages, kept by (auto)vacuum): no lock is taken, so a
    migration holding a table lock cannot stall the estimate."""
    rows = session.query(
        "SELECT (coalesce(sum(c.relpages + coalesce(t.relpages, 0)), 0) * current_setting('block_size')::bigint)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_class t ON t.oid = c.reltoastrelid"
        f" WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname = ANY({_quoted_list(schemas)})"
    )
    return int(rows[0][0])


def _estimate(settings: Settings, table_bytes: int) -> int:
    factor = _SIZE_FACTOR_UNCOMPRESSED if settings.compression == 0 else _SIZE_FACTOR_COMPRESSED
    return int(table_bytes * factor)


def _check_free_space(settings: Settings, estimated: int, table_bytes: int) -> int:
    free = shutil.disk_usage(settings.backup_dir).free
    if free < estimated:
        raise BackupError(
            f"not enough free disk in {settings.backup_dir}: {_human(free)} free, the dump needs about "
            f"{_human(estimated)} (for {_human(table_bytes)} of table data); free space or move BACKUP_DIR"
        )
    return free


class PgDump:
    """pg_dump --format=custom of the exported snapshot, streamed through a pipe into a temporary file (0600) and
    hashed as it arrives, so the archive is never read again for its sha256. Progress is shown while it runs."""

    def __init__(self, settings: Settings, database: Database, snapshot: str, partial: Path) -> None:
        command = [
            _tool_path(settings, "pg_dump"),
            "--format=custom",
            f"--compress={settings.compression}",
            f"--snapshot={snapshot}",
            "--no-password",
        ]
        command += [f"--schema={schema}" for schema in settings.schemas]
        self._partial = partial
        self._stderr: list[str] = []
        self._digest = hashlib.sha256()
        self._write_error: OSError | None = None
        self.size = 0
        self._started = time.monotonic()
        # O_EXCL: the claimed name is ours alone; 0600 from the first byte.
        self._out = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            self._process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_child_env(database)
            )
        except BaseException:
            os.close(self._out)
            raise
        assert self._process.stdout is not None
        with contextlib.suppress(OSError):
            # A 1 MiB pipe instead of 64 KiB: fewer wake-ups between pg_dump and the writer.
            fcntl.fcntl(self._process.stdout.fileno(), fcntl.F_SETPIPE_SZ, _CHUNK)
        self._threads = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._write_and_hash, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def _read_stderr(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self._stderr.append(line.decode(errors="replace"))

    def _write_and_hash(self) -> None:
        assert self._process.stdout is not None
        try:
            while chunk := self._process.stdout.read(_CHUNK):
                self._digest.update(chunk)
                _write_all(self._out, chunk)
                self.size += len(chunk)
        except OSError as exc:
            self._write_error = exc
            # pg_dump stops on the closed pipe instead of filling it.
            self._process.stdout.close()

    def wait(self) -> None:
        """Wait for pg_dump and the writer, showing progress; then fsync. BackupError when either failed."""
        while True:
            try:
                self._process.wait(timeout=_PROGRESS_EVERY_S)
                break
            except subprocess.TimeoutExpired:
                progress(f"pg_dump running for {time.monotonic() - self._started:.0f}s, {_human(self.size)} written")
        # pg_dump has ended, so the writer meets the end of the stream: every byte is on its way to the file.
        for thread in self._threads:
            thread.join()
        if self._write_error is not None:
            raise BackupError(f"writing the archive failed: {_write_failure(self._write_error)}")
        code = self._process.returncode
        if code != 0:
            if code < 0:
                reason = f"killed by {signal.Signals(-code).name}"
            else:
                reason = " ".join("".join(self._stderr).split())[-400:] or f"exit status {code}"
            raise BackupError(f"pg_dump failed: {reason}")
        os.fsync(self._out)

    def stop(self) -> None:
        """End pg_dump if it still runs and close the archive (on success and failure alike)."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for thread in self._threads:
            thread.join(timeout=10)
        if self._out >= 0:
            os.close(self._out)
            self._out = -1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_failure(exc: OSError) -> str:
    if exc.errno == errno.EFBIG:
        # Python ignores SIGXFSZ, so the limit arrives as EFBIG on write.
        return "the archive hit the file size limit (ulimit -f); no space for the backup"
    return exc.strerror or str(exc)


def _pg_dump_version(settings: Settings) -> str:
    result = subprocess.run([_tool_path(settings, "pg_dump"), "--version"], capture_output=True, text=True, check=False)
    return result.stdout.strip()


def release_pin(reason: str, release_ref: str | None) -> bool:
    """A release backup is pinned by retention: one taken by a release, naming the release it protects."""
    return reason == "release" and (release_ref or "").strip() not in _NO_RELEASE_REFS


def create(settings: Settings, reason: str, release_ref: str | None, dry_run: bool) -> dict[str, Any]:
    if (release_ref or "").strip() in _NO_RELEASE_REFS:
        release_ref = None
    if reason == "release" and release_ref is None:
        raise BackupError(
            "a release backup names the release it protects: pass --release-ref REF (or --reason manual for a backup "
            "outside a release)"
        )
    database = Database.from_url(settings.database_url, settings.pg_bindir)
    database.refuse_pooler()
    if not dry_run:
        ensure_backup_dir(settings.backup_dir)
    elif not settings.backup_dir.exists():
        settings.backup_dir = _nearest_existing(settings.backup_dir)
    started = time.monotonic()
    now = dt.datetime.now(dt.UTC)
    session = connect(settings, database)
    partial: Path | None = None
    reservation: Path | None = None
    previous_handlers = {
        sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    }
    try:
        session.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = session.query("SELECT pg_export_snapshot()")[0][0]
        server_version = session.query("SHOW server_version")[0][0]
        table_bytes = _dump_table_bytes(session, settings.schemas)
        estimated = _estimate(settings, table_bytes)
        free = _check_free_space(settings, estimated, table_bytes)
        if dry_run:
            tls = session.query(
                "SELECT ssl, coalesce(version, ''), coalesce(cipher, '') FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            )
            return {
                "dry_run": True,
                "libpq": host_libpq(settings.pg_bindir).version,
                "pg_dump_version": _pg_dump_version(settings),
                "tls": {"ssl": tls[0][0] == "t", "version": tls[0][1], "cipher": tls[0][2]},
                "sslmode": database.get("sslmode") or "prefer",
                "backup_dir": str(settings.backup_dir),
                "free_bytes": free,
                "table_bytes": table_bytes,
                "estimated_size_bytes": estimated,
                "database": database.describe(),
                "server_version": server_version,
                "compression": settings.compression,
                "schemas": list(settings.schemas),
            }
        stale = remove_stale_partials(settings.backup_dir)
        if stale:
            progress(f"removed {len(stale)} partial archive(s) left by an interrupted run: {', '.join(stale)}")
        backup_id = _reserve_backup_id(settings.backup_dir, now)
        reservation = settings.backup_dir / f".{backup_id}.reserved"
        partial = settings.backup_dir / f".{backup_id}.{os.getpid()}.partial"
        progress(f"pg_dump of {database.dbname} ({_human(table_bytes)} of tables) into {partial.name}")
        dump = PgDump(settings, database, snapshot, partial)
        try:
            # The counts and checksums run in the exporting transaction, so they see exactly the rows pg_dump writes.
            contents = table_contents(session, settings.schemas, settings.table_checksums)
            head = migration_head(session)
            dump.wait()
        except BackupError as exc:
            raise BackupError(f"the backup failed while pg_dump ran, nothing was kept: {exc}") from None
        finally:
            dump.stop()
        session.query("COMMIT")
        entries = toc_entries(settings, partial)
        size, digest = dump.size, dump.sha256
        if partial.stat().st_size != size:
            raise BackupError(f"{partial.name} holds {partial.stat().st_size} bytes, pg_dump wrote {size}")
        backup = Backup(backup_id, settings.backup_dir)
        partial.chmod(0o600)
        # link() never replaces an existing file, unlike rename().
        os.link(partial, backup.archive)
        partial.unlink()
        partial = None
        _fsync_dir(settings.backup_dir)
        manifest = {
            "id": backup_id,
            "created_at": now.isoformat(timespec="seconds"),
            "reason": reason,
            "release_ref": release_ref,
            "pinned": release_pin(reason, release_ref),
            "database": database.describe(),
            "server_version": server_version,
            "pg_dump_version": _pg_dump_version(settings),
            "format": "custom",
            "compression": settings.compression,
            "schemas": list(settings.schemas),
            "size_bytes": size,
            "sha256": digest,
            "toc_entries": entries,
            "migration_head": head,
            "row_counts": contents.counts,
            **(
                {"table_checksums": contents.checksums, "checksum_kind": CHECKSUM_KIND}
                if contents.checksums is not None
                else {}
            ),
            "duration_s": round(time.monotonic() - started, 3),
            "verification": {
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "result": "ok",
                "kind": "toc",
            },
        }
        try:
            write_private_json(backup.manifest_path, manifest)
        except BaseException:
            backup.archive.unlink(missing_ok=True)
            raise
        progress(f"{backup_id}: {_human(size)}, {entries} TOC entries, sha256 {digest[:12]}…")
        return {
            "id": backup_id,
            "path": str(backup.archive),
            "manifest": str(backup.manifest_path),
            "size_bytes": size,
            "sha256": digest,
            "toc_entries": entries,
            "duration_s": manifest["duration_s"],
            "reason": reason,
            "release_ref": release_ref,
        }
    except _Interrupted as exc:
        raise BackupError(f"interrupted by {exc}; no backup was written") from None
    except OSError as exc:
        raise BackupError(f"cannot write the backup in {settings.backup_dir}: {exc.strerror or exc}") from None
    finally:
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
        if partial is not None:
            partial.unlink(missing_ok=True)
        if reservation is not None:
            reservation.unlink(missing_ok=True)
        session.close()


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


# --------------------------------------------------------------------------- verify, drill, restore


def verify(settings: Settings, backup: Backup, restore_drill: bool) -> dict[str, Any]:
    """sha256 and TOC against the manifest; with a drill, a real restore compared table by table."""
    findings: list[str] = []
    if not backup.archive.is_file():
        findings.append(f"{backup.archive.name} is missing")
    else:
        digest = sha256_of(backup.archive)
        if digest != backup.manifest.get("sha256"):
            findings.append(f"sha256 is {digest}, the manifest says {backup.manifest.get('sha256')}")
        try:
            entries = toc_entries(settings, backup.archive)
            if entries != backup.manifest.get("toc_entries"):
                findings.append(f"{entries} TOC entries, the manifest says {backup.manifest.get('toc_entries')}")
        except BackupError as exc:
            findings.append(str(exc))
    drill: dict[str, Any] | None = None
    if restore_drill and not findings:
        drill = restore_drill_into_scratch(settings, backup)
        findings += drill["mismatches"]
    result = {
        "id": backup.backup_id,
        "result": "failed" if findings else "ok",
        "kind": "restore-drill" if restore_drill else "sha256+toc",
        "findings": findings,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if drill is not None:
        result["drill"] = {k: v for k, v in drill.items() if k != "mismatches"}
    backup.manifest["verification"] = {k: result[k] for k in ("at", "result", "kind")}
    write_private_json(backup.manifest_path, backup.manifest)
    return result


def restore_drill_into_scratch(settings: Settings, backup: Backup) -> dict[str, Any]:
    """Restore into a new scratch database, count (and checksum) every table, drop it again."""
    target_url = settings.drill_database_url or settings.database_url
    database = Database.from_url(target_url, settings.pg_bindir)
    production = Database.from_url(settings.database_url, settings.pg_bindir)
    scratch = f"wf_drill_{backup.backup_id.replace('-', '_')[7:]}_{secrets.token_hex(3)}"
    started = time.monotonic()
    progress(f"restore drill: {backup.backup_id} into scratch database {scratch}")
    expected = manifest_contents(backup.manifest)
    schemas = tuple(backup.manifest.get("schemas", settings.schemas))
    found = restore_and_measure(
        settings, database, database.dbname, scratch, backup.archive, schemas, expected, marked=False
    )
    return {
        "scratch_database": scratch,
        "server": f"{database.host}:{database.port}",
        "same_server_as_production": (database.host, database.port) == (production.host, production.port),
        **compared(expected, found),
        "rows_restored": sum(found.counts.values()),
        "duration_s": round(time.monotonic() - started, 3),
        "mismatches": content_mismatches(expected, found, "restored "),
    }


# A scratch database a drill made carries this comment; a drill drops no database without it.
_DRILL_MARK = "weddingflo-backup restore drill scratch database"


def restore_and_measure(
    settings: Settings,
    server: Database,
    admin_dbname: str,
    scratch: str,
    archive: Path,
    schemas: tuple[str, ...],
    expected: TableContents,
    *,
    marked: bool,
) -> TableContents:
    """Create `scratch` on `server`, restore the archive into it, count every table (and checksum it when the
    manifest has checksums), drop it again.

    marked: the scratch database has a fixed name (the drill's): recreate it only when a drill made it.
    """
    admin = connect(settings, server, admin_dbname)
    quoted = scratch.replace('"', '""')
    try:
        if marked:
            literal = scratch.replace("'", "''")
            found = admin.query(
                f"SELECT 'db:' || coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database"
                f" WHERE datname = '{literal}'"
            )
            if found and found[0][0] != f"db:{_DRILL_MARK}":
                raise BackupError(
                    f"the scratch database {scratch} exists and was not made by a restore drill: refusing to drop "
                    "it; point BACKUP_DRILL_DATABASE_URL at a database name of its own"
                )
            admin.query(f'DROP DATABASE IF EXISTS "{quoted}" WITH (FORCE)')
        admin.query(f'CREATE DATABASE "{quoted}"')
        try:
            if marked:
                admin.query(f"COMMENT ON DATABASE \"{quoted}\" IS '{_DRILL_MARK}'")
            _pg_restore(settings, server, scratch, archive, clean=False, jobs=2, single_transaction=False)
            check = connect(settings, server, scratch)
            try:
                return table_contents(check, schemas, checksums=expected.checksums is not None)
            finally:
                check.close()
        finally:
            admin.query(f'DROP DATABASE IF EXISTS "{quoted}" WITH (FORCE)')
    finally:
        admin.close()


# The public schema exists in every database (and on Supabase holds more than the app's tables):
# restoring must neither CREATE it (it exists) nor, with --clean, DROP it.
_KEPT_SCHEMA_ENTRY = re.compile(r"^\d+; \d+ \d+ SCHEMA - public ")


def _restore_list(settings: Settings, archive: Path, directory: Path) -> Path:
    listing = subprocess.run(
        [_tool_path(settings, "pg_restore"), "--list", str(archive)], capture_output=True, text=True, check=False
    )
    if listing.returncode != 0:
        raise BackupError(f"pg_restore cannot read {archive.name}: {' '.join(listing.stderr.split())[:300]}")
    lines = [line for line in listing.stdout.splitlines() if not _KEPT_SCHEMA_ENTRY.match(line)]
    path = directory / f".restore-{os.getpid()}.list"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


_TABLE_ENTRY = re.compile(r"^\d+; \d+ \d+ TABLE (\S+) (\S+) ")


def _drop_tables_sql(list_file: Path, lock_timeout: str) -> str:
    """DROP TABLE ... CASCADE for every table of the archive.

    pg_restore --clean drops the archive's own objects, but objects created after the backup (a foreign key a
    later migration added, a policy) still depend on them and make those drops fail: CASCADE removes them with
    the tables they hang on, and the restore recreates everything the backup had.
    """
    statements = [f"SET lock_timeout = '{lock_timeout}';" if lock_timeout else ""]
    for line in list_file.read_text().splitlines():
        match = _TABLE_ENTRY.match(line)
        if match:
            schema, table = (name.replace('"', '""') for name in match.groups())
            statements.append(f'DROP TABLE IF EXISTS "{schema}"."{table}" CASCADE;')
    return "\n".join(statements) + "\n"


@dataclass(frozen=True)
class Measured:
    """What the restore's own transaction found before it committed: no other session's write can be in it."""

    contents: TableContents
    migration_head: dict[str, Any] | None


_MEASURE_MARK = "__weddingflo_backup_measure__"


def _measure_script(schemas: tuple[str, ...], checksums: bool) -> str:
    """psql input that prints the contents and the migration head between marks (unaligned, tab-separated)."""
    settings = [f"{statement};" for statement in _CHECKSUM_SESSION] if checksums else []
    return "\n".join(
        [
            *settings,
            f"\\echo {_MEASURE_MARK}",
            _contents_sql(schemas, checksums) + ";",
            f"\\echo {_MEASURE_MARK}",
            _MIGRATION_HEAD_SQL + ";",
            "",
        ]
    )


def _measured_from(output: str, checksums: bool) -> Measured:
    _, contents, head = output.split(_MEASURE_MARK + "\n")
    rows = [line.split("\t") for line in contents.splitlines() if line]
    return Measured(_contents_from_rows(rows, checksums), _migration_head_from_row(head.splitlines()[0].split("\t")))


def _pg_restore(
    settings: Settings,
    database: Database,
    dbname: str,
    archive: Path,
    *,
    clean: bool,
    jobs: int,
    single_transaction: bool,
    lock_timeout: str = "",
    measure: tuple[tuple[str, ...], bool] | None = None,
    client_check_ms: int = 0,
) -> Measured | None:
    """pg_restore into `dbname`. With `measure` (schemas, checksums) and one transaction, the tables are counted (and
    checksummed) and the migration head read inside that transaction, before it commits."""
    use_list = _restore_list(settings, archive, archive.parent)
    env = _child_env(database, dbname)
    if lock_timeout:
        # Waiting for the app's locks forever would stall the rollback: give up instead, with the reason.
        env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} -c lock_timeout={lock_timeout}".strip()
    if client_check_ms:
        # A restore whose client was killed is abandoned (and rolled back) by the server at once, even mid-statement.
        env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} -c client_connection_check_interval={client_check_ms}".strip()
    restore = [_tool_path(settings, "pg_restore"), "--no-password", f"--use-list={use_list}"]
    if clean:
        restore += ["--clean", "--if-exists"]
    psql = [_tool_path(settings, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-password", "-d", dbname]
    measured_in_transaction = measure is not None and clean and single_transaction
    try:
        if clean and single_transaction:
            # One transaction around the drops and the whole restore: a failure leaves the database as it was.
            result = _restore_through_psql(
                [*restore, "--file=-", str(archive)],
                [*psql, "--single-transaction", "--no-align", "--tuples-only", "--field-separator=\t"],
                env,
                _drop_tables_sql(use_list, lock_timeout),
                _measure_script(*measure) if measure is not None else "",
            )
        else:
            if clean:
                prelude = subprocess.run(
                    psql,
                    input=_drop_tables_sql(use_list, lock_timeout),
                    capture_output=True,
                    text=True,
                    env=env,
                    check=False,
                )
                if prelude.returncode != 0:
                    raise BackupError(
                        f"dropping the old tables in {dbname} failed: {' '.join(prelude.stderr.split())[-400:]}"
                    )
            command = [*restore, "--exit-on-error", f"--dbname={dbname}"]
            command += ["--single-transaction"] if single_transaction else ([f"--jobs={jobs}"] if jobs > 1 else [])
            result = subprocess.run([*command, str(archive)], capture_output=True, text=True, env=env, check=False)
    finally:
        use_list.unlink(missing_ok=True)
    if result.returncode != 0:
        raise BackupError(f"pg_restore into {dbname} failed: {' '.join(result.stderr.split())[-400:]}")
    if measured_in_transaction:
        assert measure is not None
        return _measured_from(result.stdout, measure[1])
    return None


def _restore_through_psql(
    restore: list[str], psql: list[str], env: dict[str, str], prelude: str, postlude: str = ""
) -> subprocess.CompletedProcess[str]:
    """pg_restore's SQL, between `prelude` and `postlude`, piped into one psql transaction; psql's output returned."""
    reader = subprocess.Popen(restore, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    writer = subprocess.Popen(psql, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert reader.stdout is not None and writer.stdin is not None and writer.stdout is not None
    output: list[bytes] = []
    # psql prints as it goes (the restore's own SELECTs too): read it meanwhile, or a full pipe would stall it.
    printed = writer.stdout
    collector = threading.Thread(target=lambda: output.append(printed.read()), daemon=True)
    collector.start()
    try:
        writer.stdin.write(prelude.encode())
        shutil.copyfileobj(reader.stdout, writer.stdin, 1 << 20)
        writer.stdin.write(postlude.encode())
    except BrokenPipeError:
        pass  # psql stopped at the first error; its stderr says which
    finally:
        with contextlib.suppress(BrokenPipeError):
            writer.stdin.close()
    psql_errors = writer.stderr.read() if writer.stderr else b""
    writer.wait()
    collector.join()
    reader.stdout.close()
    reader.wait()
    reader_errors = reader.stderr.read() if reader.stderr else b""
    code = writer.returncode or reader.returncode
    errors = (psql_errors or b"") + reader_errors
    return subprocess.CompletedProcess(restore, code, b"".join(output).decode(), errors.decode(errors="replace"))


# wfops's one-writer-at-a-time lock (pg_advisory_lock), the key plugins/module_utils/wfops_pg.py's WRITER_LOCK_KEY
# (migrate, normalize and stats-repair hold it too; a test keeps the two equal). A restore holds it throughout.
WRITER_LOCK_KEY = int.from_bytes(hashlib.sha256(b"wfops:database-writer").digest()[:8], "big", signed=True)
WRITER_LOCK_WAIT_S = 60.0


def _writer_lock(settings: Settings, database: Database, dbname: str, wait_s: float) -> PsqlSession:
    """A session holding the writer lock of `dbname`; closing it (or this process ending) releases it."""
    session = connect(settings, database, dbname)
    session.query("SET application_name = 'wfops-writer restore'")
    deadline = time.monotonic() + wait_s
    while session.query(f"SELECT pg_try_advisory_lock({WRITER_LOCK_KEY})")[0][0] != "t":
        if time.monotonic() > deadline:
            holder = session.query(
                "SELECT a.application_name || ' (pid ' || a.pid || ')' FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted"
                f" AND ((l.classid::bigint << 32) | l.objid::bigint) = {WRITER_LOCK_KEY}"
            )
            session.close()
            who = holder[0][0] if holder else "a session that has just ended"
            raise BackupError(f"another phase is writing {dbname}: {who} holds wfops's writer lock; retry once it ends")
        time.sleep(0.5)
    return session


def restore(
    settings: Settings,
    backup: Backup,
    dbname: str,
    jobs: int,
    lock_timeout: str = "",
    writer_lock_wait: float = WRITER_LOCK_WAIT_S,
) -> dict[str, Any]:
    """Verify, then pg_restore --clean --if-exists into `dbname` on DATABASE_URL's server, as its only writer, then
    compare it with the manifest (`compare` in the result). In one transaction (jobs 1) the comparison runs inside the
    restore's own transaction, before it commits, so the app's writes after it cannot make a good restore look wrong;
    with parallel jobs it runs right after."""
    check = verify(settings, backup, restore_drill=False)
    if check["result"] != "ok":
        raise BackupError(f"{backup.backup_id} failed verification, not restoring: {'; '.join(check['findings'])}")
    database = Database.from_url(settings.database_url, settings.pg_bindir)
    database.refuse_pooler()
    started = time.monotonic()
    expected = manifest_contents(backup.manifest)
    writer = _writer_lock(settings, database, dbname, writer_lock_wait)
    try:
        server = int(writer.query("SHOW server_version_num")[0][0])
        progress(f"restoring {backup.backup_id} into {dbname} ({'one transaction' if jobs <= 1 else f'{jobs} jobs'})")
        measured = _pg_restore(
            settings,
            database,
            dbname,
            backup.archive,
            clean=True,
            jobs=jobs,
            single_transaction=jobs <= 1,
            lock_timeout=lock_timeout,
            measure=(tuple(backup.manifest.get("schemas", settings.schemas)), expected.checksums is not None),
            client_check_ms=1000 if server >= 140000 else 0,  # PostgreSQL 14+
        )
    finally:
        writer.close()
    duration = round(time.monotonic() - started, 3)
    if measured is None:
        comparison = compare_with_manifest(settings, backup, dbname)
    else:
        comparison = {**_comparison(backup, measured), "when": "inside the restore's transaction"}
    return {"id": backup.backup_id, "dbname": dbname, "duration_s": duration, "compare": comparison}


def _comparison(backup: Backup, measured: Measured) -> dict[str, Any]:
    """What `compare` reports: the measured database against the backup's manifest."""
    expected = manifest_contents(backup.manifest)
    mismatches = content_mismatches(expected, measured.contents)
    if measured.migration_head != backup.manifest.get("migration_head"):
        mismatches.append(
            f"migration head {measured.migration_head}, the manifest says {backup.manifest.get('migration_head')}"
        )
    return {
        "id": backup.backup_id,
        "result": "failed" if mismatches else "ok",
        "mismatches": mismatches,
        **compared(expected, measured.contents),
        "migration_head": measured.migration_head,
    }


def compare_with_manifest(settings: Settings, backup: Backup, dbname: str | None = None) -> dict[str, Any]:
    """The live database (DATABASE_URL's, or `dbname` on its server) against the backup's manifest: Drizzle's
    migration head, every table's row count and, when the manifest has them, every table's checksum. Writes made
    after a restore count as differences: compare a database nobody writes to (or read restore's own compare)."""
    expected = manifest_contents(backup.manifest)
    database = Database.from_url(settings.database_url, settings.pg_bindir)
    session = connect(settings, database, dbname)
    try:
        session.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        schemas = tuple(backup.manifest.get("schemas", settings.schemas))
        found = table_contents(session, schemas, checksums=expected.checksums is not None)
        head = migration_head(session)
        session.query("COMMIT")
    finally:
        session.close()
    return _comparison(backup, Measured(found, head))


def changes_since(settings: Settings, since: str, sample: int) -> dict[str, Any]:
    """Per table, the rows created or updated after `since` (what a restore of an older backup would lose)."""
    database = Database.from_url(settings.database_url, settings.pg_bindir)
    session = connect(settings, database)
    quoted_since = "'" + since.replace("'", "''") + "'::timestamptz"
    try:
        session.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        tables = session.query(
            "SELECT format('%I.%I', c.table_schema, c.table_name),"
            " bool_or(c.column_name = 'created_at' AND c.data_type LIKE 'timestamp%'),"
            " bool_or(c.column_name = 'updated_at' AND c.data_type LIKE 'timestamp%'),"
            " bool_or(c.column_name = 'id')"
            " FROM information_schema.columns c JOIN information_schema.tables t"
            " ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'"
            f" WHERE c.table_schema = ANY({_quoted_list(settings.schemas)})"
            " GROUP BY 1 ORDER BY 1"
        )
        report = []
        for name, has_created, has_updated, has_id in tables:
            stamps = [
                column
                for column, present in (("created_at", has_created), ("updated_at", has_updated))
                if present == "t"
            ]
            if not stamps:
                report.append({"table": name, "rows": None, "note": "no created_at/updated_at: not tracked"})
                continue
            condition = " OR ".join(f"{column} > {quoted_since}" for column in stamps)
            created = f"count(*) FILTER (WHERE created_at > {quoted_since})" if has_created == "t" else "NULL"
            rows = session.query(f"SELECT count(*), {created} FROM {name} WHERE {condition}")
            changed, new = int(rows[0][0]), rows[0][1]
            examples: list[str] = []
            if changed and has_id == "t" and sample:
                examples = [
                    row[0]
                    for row in session.query(
                        f"SELECT id::text FROM {name} WHERE {condition} ORDER BY {stamps[-1]} DESC LIMIT {int(sample)}"
                    )
                ]
            report.append({"table": name, "rows": changed, "created": int(new) if new else None, "examples": examples})
        session.query("COMMIT")
    finally:
        session.close()
    return {"since": since, "tables": report, "rows": sum(t["rows"] or 0 for t in report)}


# --------------------------------------------------------------------------- retention


@dataclass(frozen=True)
class RetentionDecision:
    backup_id: str
    keep: bool
    reasons: tuple[str, ...]


def retention_decisions(backups: list[Backup], now: dt.datetime, days: int, min_count: int) -> list[RetentionDecision]:
    """Which backups to keep and why. Never deletes: the newest backup, one younger than `days`,
    one of the newest `min_count` good backups, or the newest release backup (pinned until a newer
    release backup supersedes it)."""
    ordered = sorted(backups, key=lambda b: (b.created_at, b.backup_id), reverse=True)
    newest_good = {b.backup_id for b in [b for b in ordered if b.good][: max(min_count, 0)]}
    # A manifest from before release_pin() may say pinned for a backup without a release (ref "unset"): not pinned.
    release_backups = [
        b
        for b in ordered
        if b.manifest.get("pinned") and release_pin(b.manifest.get("reason", ""), b.manifest.get("release_ref"))
    ]
    pinned = release_backups[0].backup_id if release_backups else None
    decisions = []
    for index, backup in enumerate(ordered):
        reasons = []
        if index == 0:
            reasons.append("newest backup")
        if now - backup.created_at < dt.timedelta(days=days):
            reasons.append(f"younger than {days} days")
        if backup.backup_id in newest_good:
            reasons.append(f"one of the newest {min_count} good backups")
        if backup.backup_id == pinned:
            reasons.append(f"pinned by release {backup.manifest.get('release_ref')}")
        decisions.append(RetentionDecision(backup.backup_id, bool(reasons), tuple(reasons) or ("past retention",)))
    return decisions


@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    ensure_backup_dir(directory)
    fd = os.open(directory / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def prune(settings: Settings, dry_run: bool) -> dict[str, Any]:
    with directory_lock(settings.backup_dir):
        backups = list_backups(settings.backup_dir)
        decisions = retention_decisions(
            backups, dt.datetime.now(dt.UTC), settings.retention_days, settings.retention_min_count
        )
        deleted = []
        if not dry_run:
            by_id = {b.backup_id: b for b in backups}
            for decision in decisions:
                if not decision.keep:
                    backup = by_id[decision.backup_id]
                    backup.archive.unlink(missing_ok=True)
                    backup.manifest_path.unlink(missing_ok=True)
                    deleted.append(decision.backup_id)
            _fsync_dir(settings.backup_dir)
    return {
        "dry_run": dry_run,
        "decisions": [asdict(d) for d in decisions],
        "deleted": deleted,
        "kept": [d.backup_id for d in decisions if d.keep],
    }


# --------------------------------------------------------------------------- offsite copies and drills


# The key check: a small file the crypt key writes when offsite copies are first set up, and every offsite command
# opens before it trusts the key. Its name is not encrypted (crypt with file names left plain stores it as
# KEY_CHECK.bin), so a wrong key or salt meets the file and fails to decrypt it, instead of listing nothing.
KEY_CHECK = "weddingflo-keycheck"
_KEY_CHECK_PURPOSE = "weddingflo-backup offsite key check"
# rclone's log lines start with a timestamp; the relevant line is what follows it.
_RCLONE_TIMESTAMP = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ")


class Offsite:
    """The offsite target through rclone. The remotes live in rclone's environment (RCLONE_CONFIG_<NAME>_*), so
    no secret reaches argv or a file; the crypt password is obscured through rclone's stdin."""

    BASE = "wfoffsite"
    CRYPT = "wfoffsitecrypt"
    # The same crypt key with file names left plain: only the key check is read and written through it.
    KEYED = "wfoffsitekey"
    _OBSCURED_OPTIONS = ("pass",)

    def __init__(self, config: OffsiteSettings) -> None:
        self.config = config
        self._env: dict[str, str] | None = None
        # ok | created | adopted | unencrypted once the key is known to fit; empty while nothing is there.
        self.key_check: str | None = None

    @property
    def prefix(self) -> str:
        """Where backups go: the crypt remote's root, or the path on the plain remote."""
        return f"{self.CRYPT}:" if self.config.crypt else f"{self.BASE}:{self.config.path}/"

    def describe(self) -> str:
        where = self.config.remote.get("host") or self.config.remote.get("endpoint") or self.config.remote["type"]
        return f"{self.config.remote['type']}://{where}/{self.config.path.lstrip('/')}" + (
            " (encrypted)" if self.config.crypt else " (NOT encrypted)"
        )

    def _base_env(self) -> dict[str, str]:
        # RCLONE_CONFIG=/dev/null: every remote comes from this environment, none from a stray rclone.conf.
        base = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
        return {
            **base,
            "RCLONE_CONFIG": os.devnull,
            "RCLONE_CONTIMEOUT": "30s",
            "RCLONE_RETRIES": str(self.config.retries),
            "RCLONE_LOW_LEVEL_RETRIES": str(self.config.low_level_retries),
            "LC_ALL": "C",
        }

    def _obscure(self, secret: str) -> str:
        result = self._rclone(["obscure", "-"], self._base_env(), stdin=secret.encode() + b"\n", what="obscure")
        return result.stdout.decode().strip()

    def env(self) -> dict[str, str]:
        if self._env is None:
            env = self._base_env()
            for key, value in self.config.remote.items():
                # rclone takes passwords (sftp/ftp/webdav `pass`) only obscured; the env file holds them plain.
                secret = key in self._OBSCURED_OPTIONS
                env[f"RCLONE_CONFIG_{self.BASE.upper()}_{key.upper()}"] = self._obscure(value) if secret else value
            if self.config.crypt:
                password = self._obscure(self.config.crypt_password)
                salt = self._obscure(self.config.crypt_salt) if self.config.crypt_salt else ""
                for name, plain_names in ((self.CRYPT, False), (self.KEYED, True)):
                    crypt = f"RCLONE_CONFIG_{name.upper()}_"
                    env[crypt + "TYPE"] = "crypt"
                    env[crypt + "REMOTE"] = f"{self.BASE}:{self.config.path}"
                    env[crypt + "PASSWORD"] = password
                    if salt:
                        env[crypt + "PASSWORD2"] = salt
                    if plain_names:
                        env[crypt + "FILENAME_ENCRYPTION"] = "off"
            self._env = env
        return self._env

    def _secrets(self) -> list[str]:
        found = [self.config.crypt_password, self.config.crypt_salt]
        found += [v for k, v in (self._env or {}).items() if k.endswith(("_PASSWORD", "_PASSWORD2"))]
        found += [v for k, v in self.config.remote.items() if k in ("pass", "secret_access_key", "key_pem")]
        return [value for value in found if len(value) >= 4]

    def _relevant_line(self, stderr: bytes) -> str:
        """rclone's last error line (its final `Failed to ...` summary, else the last ERROR), whole."""
        lines = [_RCLONE_TIMESTAMP.sub("", line).strip() for line in stderr.decode(errors="replace").splitlines()]
        lines = [line for line in lines if line]
        chosen = next(
            (line for line in reversed(lines) if line.startswith(("Failed to", "Fatal error"))),
            next((line for line in reversed(lines) if line.startswith("ERROR")), lines[-1] if lines else ""),
        )
        for secret in self._secrets():
            chosen = chosen.replace(secret, "***")
        return chosen

    def _rclone(
        self, args: list[str], env: dict[str, str], *, what: str, stdin: bytes | None = None, timeout: float = 6 * 3600
    ) -> subprocess.CompletedProcess[bytes]:
        try:
            result = subprocess.run(
                [self.config.rclone, *args], input=stdin, capture_output=True, env=env, check=False, timeout=timeout
            )
        except FileNotFoundError:
            raise BackupError(f"rclone is not installed ({self.config.rclone}): apt-get install rclone") from None
        except subprocess.TimeoutExpired:
            raise BackupError(f"{what}: rclone did not finish within {timeout:.0f}s") from None
        if result.returncode != 0:
            line = self._relevant_line(result.stderr) or f"rclone exit {result.returncode}"
            raise RcloneError(f"{what} failed ({self.describe()}): {line}", line)
        return result

    def run(self, *args: str, what: str) -> subprocess.CompletedProcess[bytes]:
        return self._rclone(list(args), self.env(), what=what)

    def upload(self, local: Path, name: str) -> None:
        self.run("copyto", str(local), self.prefix + name, what=f"copying {name} offsite")

    def download(self, name: str, local: Path) -> None:
        self.run("copyto", self.prefix + name, str(local), what=f"downloading {name} from offsite")

    def read_text(self, name: str) -> str:
        return self.run("cat", self.prefix + name, what=f"reading {name} offsite").stdout.decode()

    def delete(self, name: str) -> None:
        self.run("deletefile", self.prefix + name, what=f"deleting {name} offsite")

    def _lsjson(self, where: str, what: str) -> dict[str, int]:
        try:
            result = self.run("lsjson", "--files-only", "--no-mimetype", "--no-modtime", where, what=what)
        except RcloneError as exc:
            if "directory not found" in exc.line:
                return {}
            raise
        return {entry["Name"]: int(entry.get("Size", -1)) for entry in json.loads(result.stdout or b"[]")}

    def listing(self) -> dict[str, int]:
        """Name -> size (decrypted size through crypt) of the files in the offsite directory. Through crypt a name
        the key cannot decrypt is left out: call check_key first, so that a wrong key never reads as no copies."""
        return self._lsjson(self.prefix, "listing the offsite copies")

    def stored(self) -> dict[str, int]:
        """The files as the provider stores them (encrypted names and sizes)."""
        return self._lsjson(f"{self.BASE}:{self.config.path}/", "listing the offsite target")

    def check_key(self, *, write: bool) -> str:
        """Prove the crypt key opens this target before anything is read, written or forgotten (KeyMismatch if not).

        A target with a key check: the key must decrypt it. A target without one: empty, or every copy there has a
        name this key decrypts and the newest manifest opens; a command that writes (`write`) then leaves the key
        check there (created on an empty target, adopted on one written before key checks existed).
        """
        if self.key_check in ("ok", "created", "adopted", "unencrypted") or (self.key_check and not write):
            return self.key_check
        if not self.config.crypt:
            self.key_check = "unencrypted"
            return self.key_check
        stored = self.stored()
        if f"{KEY_CHECK}.bin" in stored:
            self._open_key_check()
            self.key_check = "ok"
            return self.key_check
        others = len(stored)
        if others:
            self._read_unchecked_target(others)
        if write:
            self._write_key_check()
            progress(
                f"adopted {self.describe()}: its {others} file(s) open with this key; wrote its key check"
                if others
                else f"set up {self.describe()}: the target was empty; wrote its key check"
            )
        self.key_check = ("adopted" if others else "created") if write else ("readable" if others else "empty")
        return self.key_check

    def _mismatch(self, why: str) -> KeyMismatch:
        return KeyMismatch(
            f"the offsite key does not fit {self.describe()}: {why}; OFFSITE_CRYPT_PASSWORD or OFFSITE_CRYPT_SALT "
            "differs from the key its copies were written with, so copy both exactly from the vault "
            "(backup_offsite_crypt_password and backup_offsite_crypt_salt); nothing was read, written or forgotten"
        )

    def _open_key_check(self) -> None:
        try:
            text = self.run("cat", f"{self.KEYED}:{KEY_CHECK}", what="reading the offsite key check").stdout
        except RcloneError as exc:
            if exc.authentication_failed:
                raise self._mismatch(f"its key check does not decrypt (rclone: {exc.line})") from None
            raise
        try:
            purpose = json.loads(text).get("purpose")
        except (json.JSONDecodeError, AttributeError):
            purpose = None
        if purpose != _KEY_CHECK_PURPOSE:
            raise BackupError(
                f"{self.describe()} holds a {KEY_CHECK}.bin that is not weddingflo-backup's key check: "
                "point OFFSITE_PATH at a directory of its own"
            )

    def _read_unchecked_target(self, files: int) -> None:
        """A target written before key checks existed: the key fits only if it decrypts the copies' names and the
        newest manifest."""
        names = [
            name for name in self.listing() if NAME_PATTERN.match(name.removesuffix(".json").removesuffix(".dump"))
        ]
        if not names:
            raise self._mismatch(f"it holds {files} file(s) without a key check and this key decrypts none of them")
        manifests = sorted(name for name in names if name.endswith(".json"))
        if manifests:
            try:
                json.loads(self.read_text(manifests[-1]))
            except RcloneError as exc:
                if exc.authentication_failed:
                    raise self._mismatch(f"{manifests[-1]} does not decrypt (rclone: {exc.line})") from None
                raise
            except json.JSONDecodeError:
                raise self._mismatch(f"{manifests[-1]} decrypts to something that is not a manifest") from None

    def _write_key_check(self) -> None:
        content = {
            "purpose": _KEY_CHECK_PURPOSE,
            "created_at": _now_iso(),
            "host": os.uname().nodename,
            "path": self.config.path,
        }
        self._rclone(
            ["rcat", f"{self.KEYED}:{KEY_CHECK}"],
            self.env(),
            stdin=json.dumps(content, sort_keys=True).encode(),
            what="writing the offsite key check",
        )


def require_offsite(settings: Settings, *, write: bool = False) -> Offsite:
    """The offsite target, its key proven (see Offsite.check_key); one per run."""
    if settings.offsite is None:
        raise BackupError(
            "no offsite target is configured: set OFFSITE_REMOTE_TYPE and its options in the env file "
            "(backup_offsite_remote in the backup role)"
        )
    if settings.offsite_target is None:
        settings.offsite_target = Offsite(settings.offsite)
    settings.offsite_target.check_key(write=write)
    return settings.offsite_target


class OffsiteCopy(Backup):
    """A backup as the offsite catalogue knows it; good unless its downloaded copy failed the manifest's sha256."""

    @property
    def good(self) -> bool:
        return (self.manifest.get("offsite") or {}).get("sha256_ok") is not False


def catalogue_dir(settings: Settings) -> Path:
    """The manifests of the offsite copies, cached on this host (what `list` shows without the network)."""
    return settings.backup_dir / "offsite"


def catalogue_backups(settings: Settings) -> list[Backup]:
    return [OffsiteCopy(b.backup_id, settings.backup_dir, b.manifest) for b in list_backups(catalogue_dir(settings))]


def all_backups(settings: Settings) -> list[Backup]:
    """Local backups, and the offsite ones not on this host (from the catalogue), newest first."""
    local = list_backups(settings.backup_dir)
    known = {b.backup_id for b in local}
    merged = local + [b for b in catalogue_backups(settings) if b.backup_id not in known]
    return sorted(merged, key=lambda b: (b.manifest.get("created_at", ""), b.backup_id), reverse=True)


def newest_restorable(backups: list[Backup]) -> Backup | None:
    """What `latest` means for a restore: the newest backup whose verification passed, safety dumps excepted."""
    verified = (b for b in backups if (b.manifest.get("verification") or {}).get("result") == "ok")
    return next((b for b in verified if b.manifest.get("reason") != "pre-rollback"), None)


def find_any_backup(settings: Settings, backup_id: str) -> Backup:
    """A backup on this host or offsite (`latest` = the newest restorable of both); the catalogue is refreshed when it
    does not know the backup."""
    for attempt in ("cached", "refreshed"):
        if attempt == "refreshed":
            if settings.offsite is None:
                break
            pull_catalogue(settings, require_offsite(settings))
        found = all_backups(settings)
        if backup_id == "latest" and newest_restorable(found) is not None:
            return newest_restorable(found)
        for backup in found:
            if backup.backup_id == backup_id:
                return backup
    if backup_id == "latest":
        raise BackupError(f"there is no verified backup other than safety backups in {settings.backup_dir}")
    return find_backup(settings.backup_dir, backup_id)  # raises the usual "no backup" sentence


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def record_offsite(settings: Settings, manifest: dict[str, Any], **state: Any) -> dict[str, Any]:
    """Write the offsite state of a backup into the catalogue entry and, when the backup is here, its manifest."""
    backup_id = manifest["id"]
    entry = {**manifest, "offsite": {**(manifest.get("offsite") or {}), **state}}
    ensure_backup_dir(catalogue_dir(settings))
    write_private_json(catalogue_dir(settings) / f"{backup_id}.json", entry)
    local = settings.backup_dir / f"{backup_id}.json"
    if local.is_file():
        local_manifest = json.loads(local.read_text())
        local_manifest["offsite"] = entry["offsite"]
        write_private_json(local, local_manifest)
    return entry


@contextlib.contextmanager
def scratch_dir(settings: Settings) -> Iterator[Path]:
    """A private temporary directory beside the backups (same file system: a fetched copy is renamed in)."""
    ensure_backup_dir(settings.backup_dir)
    path = Path(tempfile.mkdtemp(prefix=".offsite-", dir=settings.backup_dir))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def offsite_lock(settings: Settings) -> Iterator[None]:
    ensure_backup_dir(settings.backup_dir)
    fd = os.open(settings.backup_dir / ".offsite.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class CorruptCopy(BackupError):
    """An offsite copy crypt cannot authenticate or whose sha256 differs from its manifest: MISMATCH, not to be used."""


def _corrupt_sentence(backup_id: str, what: str, error: RcloneError) -> str:
    # rclone guesses "bad password?" for any block that fails authentication; the key check has just shown the key
    # fits, so the guess is dropped: the stored bytes changed.
    line = error.line.replace(" - bad password?", "")
    return (
        f"the offsite copy of {backup_id} is corrupt (MISMATCH): crypt cannot authenticate its {what} although the "
        f"key fits this target (its key check opened), so the stored bytes changed (rclone: {line})"
    )


def download_checked(settings: Settings, offsite: Offsite, manifest: dict[str, Any], directory: Path) -> Path:
    """Download the offsite archive into `directory` and check its sha256 against the manifest. The outcome is
    recorded in the catalogue: verified, or MISMATCH (CorruptCopy) when crypt cannot authenticate it or the sha256
    differs."""
    backup_id = manifest["id"]
    path = directory / f"{backup_id}.dump"
    progress(f"downloading {backup_id} ({_human(manifest.get('size_bytes') or 0)}) from {offsite.describe()}")
    try:
        offsite.download(f"{backup_id}.dump", path)
    except RcloneError as exc:
        if not exc.authentication_failed:
            raise
        problem = _corrupt_sentence(backup_id, "archive", exc)
    else:
        digest = sha256_of(path)
        problem = (
            None
            if digest == manifest.get("sha256")
            else f"the offsite copy of {backup_id} is corrupt (MISMATCH): it has sha256 {digest[:16]}…, its manifest "
            f"says {manifest.get('sha256')}"
        )
    record_offsite(settings, manifest, verified_at=_now_iso(), sha256_ok=problem is None, problem=problem)
    if problem is not None:
        raise CorruptCopy(problem)
    return path


def offsite_copy(settings: Settings, backup_id: str, prune_after: bool) -> dict[str, Any]:
    """Copy a local backup offsite (archive, then manifest), download it again to check it, then apply retention."""
    offsite = require_offsite(settings, write=True)
    backup = find_backup(settings.backup_dir, backup_id)
    if not backup.archive.is_file():
        raise BackupError(f"{backup.backup_id} has no archive on this host ({backup.archive}): nothing to copy")
    digest = sha256_of(backup.archive)
    if digest != backup.manifest.get("sha256"):
        raise BackupError(
            f"{backup.backup_id}'s archive has sha256 {digest[:16]}…, its manifest says "
            f"{backup.manifest.get('sha256')}: not copying a damaged backup offsite"
        )
    started = time.monotonic()
    manifest = {k: v for k, v in backup.manifest.items() if k != "offsite"}
    with offsite_lock(settings), scratch_dir(settings) as scratch:
        progress(f"copying {backup.backup_id} ({_human(manifest['size_bytes'])}) to {offsite.describe()}")
        # The archive first: a manifest offsite means its archive is complete.
        offsite.upload(backup.archive, f"{backup.backup_id}.dump")
        write_private_json(scratch / f"{backup.backup_id}.json", manifest)
        offsite.upload(scratch / f"{backup.backup_id}.json", f"{backup.backup_id}.json")
        copied_at = _now_iso()
        record_offsite(settings, manifest, copied_at=copied_at)
        try:
            download_checked(settings, offsite, {**manifest, "offsite": {"copied_at": copied_at}}, scratch)
        except CorruptCopy as exc:
            raise BackupError(f"{exc}; offsite retention not run") from None
        pruned = offsite_prune_locked(settings, offsite, dry_run=False) if prune_after else None
    return {
        "id": backup.backup_id,
        "target": offsite.describe(),
        "key_check": offsite.key_check,
        "size_bytes": manifest["size_bytes"],
        "sha256_ok": True,
        "copied_at": copied_at,
        "duration_s": round(time.monotonic() - started, 3),
        "pruned": pruned["deleted"] if pruned else None,
    }


def pull_catalogue(settings: Settings, offsite: Offsite) -> dict[str, Any]:
    """Bring the catalogue in line with the offsite target: read new manifests, forget deleted copies.

    The key was checked before (require_offsite), so the listing holds every copy; a copy is forgotten only when
    its files are gone from the target, never because something failed to decrypt."""
    listing = offsite.listing()
    remote = {
        name.removesuffix(".json")
        for name in listing
        if name.endswith(".json") and NAME_PATTERN.match(name.removesuffix(".json"))
        if name.removesuffix(".json") + ".dump" in listing
    }
    directory = catalogue_dir(settings)
    ensure_backup_dir(directory)
    cached = {path.stem for path in directory.glob("backup-*.json")}
    added, unreadable = [], []
    for backup_id in sorted(remote - cached):
        try:
            manifest = json.loads(offsite.read_text(f"{backup_id}.json"))
        except RcloneError as exc:
            if not exc.authentication_failed:
                raise
            progress(_corrupt_sentence(backup_id, "manifest", exc) + ": not catalogued")
            unreadable.append(backup_id)
            continue
        except json.JSONDecodeError:
            progress(f"the offsite manifest of {backup_id} is not JSON: ignored")
            unreadable.append(backup_id)
            continue
        if manifest.get("id") != backup_id:
            progress(f"the offsite manifest of {backup_id} names {manifest.get('id')!r}: ignored")
            unreadable.append(backup_id)
            continue
        size_ok = listing[f"{backup_id}.dump"] == manifest.get("size_bytes")
        record_offsite(settings, manifest, present=True, size_ok=size_ok)
        added.append(backup_id)
    gone = sorted(cached - remote)
    if gone and offsite.config.crypt:
        # Belt and braces: a name crypt cannot decrypt is left out of the listing; while the target holds such a
        # file, a copy missing from the listing may be one of them, so nothing is forgotten.
        hidden = len([name for name in offsite.stored() if name != f"{KEY_CHECK}.bin"]) - len(listing)
        if hidden > 0:
            progress(f"{hidden} file(s) on {offsite.describe()} do not decrypt with this key: nothing forgotten")
            gone = []
    for backup_id in gone:
        (directory / f"{backup_id}.json").unlink(missing_ok=True)
    return {
        "target": offsite.describe(),
        "key_check": offsite.key_check,
        "offsite": sorted(remote),
        "added": added,
        "forgotten": gone,
        "unreadable": unreadable,
    }


def offsite_prune_locked(settings: Settings, offsite: Offsite, dry_run: bool) -> dict[str, Any]:
    """Offsite retention, the same rules as on the host (days, minimum good count, the pinned release backup)."""
    assert settings.offsite is not None
    pull_catalogue(settings, offsite)
    copies = catalogue_backups(settings)
    decisions = retention_decisions(
        copies, dt.datetime.now(dt.UTC), settings.offsite.retention_days, settings.offsite.retention_min_count
    )
    deleted = []
    if not dry_run:
        for decision in decisions:
            if not decision.keep:
                # The manifest first: without it the copy is no longer listed, even if deleting the archive fails.
                offsite.delete(f"{decision.backup_id}.json")
                offsite.delete(f"{decision.backup_id}.dump")
                (catalogue_dir(settings) / f"{decision.backup_id}.json").unlink(missing_ok=True)
                deleted.append(decision.backup_id)
    return {
        "dry_run": dry_run,
        "decisions": [asdict(d) for d in decisions],
        "deleted": deleted,
        "kept": [d.backup_id for d in decisions if d.keep],
    }


def _offsite_entry(settings: Settings, offsite: Offsite, backup_id: str) -> dict[str, Any]:
    path = catalogue_dir(settings) / f"{backup_id}.json"
    if not path.is_file():
        pull_catalogue(settings, offsite)
    if not path.is_file():
        raise BackupError(f"no offsite copy of {backup_id!r} ({offsite.describe()}); see `{TOOL} list`")
    return json.loads(path.read_text())


def verify_offsite(settings: Settings, backup_ids: list[str]) -> list[dict[str, Any]]:
    """Download each offsite copy (every one in the catalogue when none is named) and check it against its
    manifest; nothing is kept. The outcome is each copy's state in `list`: verified or MISMATCH."""
    offsite = require_offsite(settings)
    if not backup_ids:
        pull_catalogue(settings, offsite)
        backup_ids = [copy.backup_id for copy in catalogue_backups(settings)]
    results = []
    for backup_id in backup_ids:
        entry = _offsite_entry(settings, offsite, backup_id)
        findings = []
        with scratch_dir(settings) as scratch:
            try:
                download_checked(settings, offsite, entry, scratch)
            except CorruptCopy as exc:
                findings.append(str(exc))
        results.append(
            {
                "id": backup_id,
                "result": "failed" if findings else "ok",
                "kind": "offsite-sha256",
                "findings": findings,
                "at": _now_iso(),
            }
        )
    return results


def fetch(settings: Settings, backup_id: str) -> Backup:
    """Download an offsite backup onto this host, refusing a copy that does not match its manifest."""
    offsite = require_offsite(settings)
    entry = _offsite_entry(settings, offsite, backup_id)
    backup = Backup(backup_id, settings.backup_dir)
    with offsite_lock(settings), scratch_dir(settings) as scratch:
        try:
            path = download_checked(settings, offsite, entry, scratch)
        except CorruptCopy as exc:
            raise BackupError(f"{exc}: refusing to use it") from None
        path.chmod(0o600)
        path.replace(backup.archive)
        _fsync_dir(settings.backup_dir)
        entry = json.loads((catalogue_dir(settings) / f"{backup_id}.json").read_text())
        backup.manifest = {**entry, "fetched_at": _now_iso()}
        write_private_json(backup.manifest_path, backup.manifest)
    progress(f"{backup_id} fetched from offsite: sha256 matches its manifest")
    return backup


def ensure_local(settings: Settings, backup: Backup) -> Backup:
    """The backup with its archive on this host: fetched from offsite when only the catalogue has it."""
    if backup.archive.is_file() or settings.offsite is None:
        return backup
    if not (catalogue_dir(settings) / f"{backup.backup_id}.json").is_file():
        return backup
    progress(f"{backup.backup_id} is not on this host: fetching its offsite copy")
    return fetch(settings, backup.backup_id)


_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}


def same_database(one: Database, other: Database) -> bool:
    def where(database: Database) -> tuple[str, str, str]:
        host = database.host.lower()
        return ("loopback" if host in _LOOPBACK else host, database.port, database.dbname)

    return where(one) == where(other)


def drill(settings: Settings, backup_id: str | None) -> dict[str, Any]:
    """The scheduled restore drill: the newest offsite backup, downloaded and checked, restored into the scratch
    database, every table's row count and checksum compared with the manifest, the scratch database dropped again."""
    if not settings.drill_database_url:
        raise BackupError(
            "BACKUP_DRILL_DATABASE_URL is not set: the drill restores into a scratch database of its own "
            "(backup_drill_database_url), never the production database"
        )
    scratch_db = Database.from_url(settings.drill_database_url, settings.pg_bindir, "BACKUP_DRILL_DATABASE_URL")
    production = Database.from_url(settings.database_url, settings.pg_bindir)
    if same_database(scratch_db, production):
        raise BackupError(
            f"BACKUP_DRILL_DATABASE_URL names the production database ({production.host}:{production.port}/"
            f"{production.dbname}): the drill drops its scratch database, so it must be another database"
        )
    offsite = require_offsite(settings)
    started = time.monotonic()
    pull_catalogue(settings, offsite)
    copies = catalogue_backups(settings)
    if not copies:
        raise BackupError(f"there is no offsite backup to drill on ({offsite.describe()})")
    backup = copies[0] if backup_id in (None, "latest") else find_backup(catalogue_dir(settings), str(backup_id))
    findings: list[str] = []
    found = TableContents(counts={}, checksums=None)
    # The manifest as it is offsite now (the catalogue only chose the backup): the drill proves what is there.
    manifest = backup.manifest
    try:
        manifest = {**json.loads(offsite.read_text(f"{backup.backup_id}.json")), "offsite": manifest.get("offsite")}
    except RcloneError as exc:
        if not exc.authentication_failed:
            raise
        findings.append(_corrupt_sentence(backup.backup_id, "manifest", exc))
        record_offsite(settings, manifest, verified_at=_now_iso(), sha256_ok=False, problem=findings[-1])
    with scratch_dir(settings) as scratch:
        archive = None
        if not findings:
            try:
                archive = download_checked(settings, offsite, manifest, scratch)
            except CorruptCopy as exc:
                findings.append(str(exc))
        if archive is not None:
            entries = toc_entries(settings, archive)
            if entries != manifest.get("toc_entries"):
                findings.append(f"{entries} TOC entries, the manifest says {manifest.get('toc_entries')}")
        if archive is not None and not findings:
            progress(
                f"restore drill: {backup.backup_id} into {scratch_db.dbname} at {scratch_db.host}:{scratch_db.port}"
            )
            schemas = tuple(manifest.get("schemas", settings.schemas))
            expected = manifest_contents(manifest)
            found = restore_and_measure(
                settings, scratch_db, "postgres", scratch_db.dbname, archive, schemas, expected, marked=True
            )
            findings += content_mismatches(expected, found, "restored ")
    return {
        "id": backup.backup_id,
        "result": "failed" if findings else "ok",
        "kind": "offsite-restore-drill",
        "findings": findings,
        "scratch_database": f"{scratch_db.host}:{scratch_db.port}/{scratch_db.dbname} (dropped)",
        **compared(manifest_contents(manifest), found),
        "rows_restored": sum(found.counts.values()),
        "duration_s": round(time.monotonic() - started, 3),
        "at": _now_iso(),
    }


# --------------------------------------------------------------------------- command line


def _offsite_word(state: dict[str, Any] | None) -> str:
    if state is None:
        return "-"
    if state.get("sha256_ok") is False:
        return "MISMATCH"
    return "verified" if state.get("sha256_ok") else "unverified"


def _print_list(settings: Settings, as_json: bool) -> None:
    offsite = {b.backup_id: b.manifest.get("offsite") or {} for b in catalogue_backups(settings)}
    rows = []
    for b in all_backups(settings):
        present = b.archive.is_file()
        local_check = (b.manifest.get("verification") or {}) if present else {}
        state = offsite.get(b.backup_id)
        rows.append(
            {
                "id": b.backup_id,
                "created_at": b.manifest.get("created_at"),
                "reason": b.manifest.get("reason"),
                "release_ref": b.manifest.get("release_ref"),
                "size_bytes": b.manifest.get("size_bytes"),
                "verification": local_check.get("result", "never") if present else "not here",
                "verified_at": local_check.get("at"),
                "present": present,
                "path": str(b.archive),
                "locations": (["local"] if present else []) + (["offsite"] if state is not None else []),
                "offsite": None
                if state is None
                else {
                    "copied_at": state.get("copied_at"),
                    "verified_at": state.get("verified_at"),
                    "sha256_ok": state.get("sha256_ok"),
                    "verification": _offsite_word(state),
                    "problem": state.get("problem"),
                },
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"{'id':<24} {'created_at (UTC)':<26} {'reason':<13} {'size':>10}  {'where':<14} {'local':<9} "
        f"{'offsite':<10} release"
    )
    for row in rows:
        print(
            f"{row['id']:<24} {row['created_at']:<26} {row['reason']:<13} {_human(row['size_bytes'] or 0):>10}  "
            f"{'+'.join(row['locations']) or 'nowhere':<14} {row['verification']:<9} "
            f"{_offsite_word(row['offsite']):<10} {row['release_ref'] or ''}"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=TOOL, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env-file", help=f"KEY=VALUE settings, mode 0600 (default {DEFAULT_ENV_FILE}; - = stdin)")
    commands = parser.add_subparsers(dest="command", required=True)
    create_cmd = commands.add_parser("create", help="take a verified backup")
    create_cmd.add_argument("--reason", choices=REASONS, default="manual")
    create_cmd.add_argument("--release-ref", default=None)
    create_cmd.add_argument("--dry-run", action="store_true", help="check and estimate; write nothing")
    create_cmd.add_argument("--verify", action="store_true", help="then re-read it against its manifest (as verify)")
    create_cmd.add_argument("--restore-drill", action="store_true", help="then verify with a restore drill")
    create_cmd.add_argument("--offsite-copy", action="store_true", help="then copy it offsite (as offsite copy)")
    create_cmd.add_argument("--prune", action="store_true", help="then apply retention (as prune)")
    list_cmd = commands.add_parser("list", help="backups, newest first")
    list_cmd.add_argument("--json", action="store_true")
    list_cmd.add_argument("--cached", action="store_true", help="the last known offsite catalogue (no network)")
    verify_cmd = commands.add_parser("verify", help="sha256 and TOC against the manifest")
    verify_cmd.add_argument("backup_id", metavar="ID")
    verify_cmd.add_argument("--restore-drill", action="store_true", help="also restore into a scratch database")
    verify_cmd.add_argument("--offsite", action="store_true", help="download the offsite copy and check its sha256")
    prune_cmd = commands.add_parser("prune", help="apply retention")
    prune_cmd.add_argument("--dry-run", action="store_true", help="show the decision for every backup")
    prune_cmd.add_argument("--json", action="store_true")
    restore_cmd = commands.add_parser("restore", help="pg_restore --clean --if-exists a verified backup")
    restore_cmd.add_argument("backup_id", metavar="ID")
    restore_cmd.add_argument("--dbname", required=True, help="database name on DATABASE_URL's server")
    restore_cmd.add_argument("--jobs", type=int, default=1, help="1 = one transaction (all or nothing)")
    restore_cmd.add_argument("--lock-timeout", default="", help="give up when a lock is not had within (e.g. 30s)")
    restore_cmd.add_argument(
        "--writer-lock-wait", type=float, default=WRITER_LOCK_WAIT_S, help="seconds to wait for another wfops writer"
    )
    resolve_cmd = commands.add_parser("resolve", help="the backup an id or latest names (latest: verified, not safety)")
    resolve_cmd.add_argument("backup_id", metavar="ID|latest")
    compare_cmd = commands.add_parser("compare", help="the live database against a backup's manifest")
    compare_cmd.add_argument("backup_id", metavar="ID")
    since_cmd = commands.add_parser("changes-since", help="rows created/updated after a time (or a backup)")
    since_cmd.add_argument("since", metavar="TIME|ID", help="an ISO time, or a backup id (its created_at)")
    since_cmd.add_argument("--sample", type=int, default=3, help="example ids per table")
    offsite_cmd = commands.add_parser("offsite", help="copies on the offsite target")
    offsite_commands = offsite_cmd.add_subparsers(dest="offsite_command", required=True)
    copy_cmd = offsite_commands.add_parser("copy", help="copy a backup offsite, check it, apply offsite retention")
    copy_cmd.add_argument("backup_id", metavar="ID", nargs="?", default="latest")
    copy_cmd.add_argument("--no-prune", action="store_true", help="do not apply offsite retention afterwards")
    offsite_commands.add_parser("pull", help="refresh the offsite catalogue (manifests) on this host")
    offsite_verify_cmd = offsite_commands.add_parser(
        "verify", help="download offsite copies (all when none is named) and check each against its manifest"
    )
    offsite_verify_cmd.add_argument("backup_ids", metavar="ID", nargs="*")
    offsite_commands.add_parser(
        "key-check", help="prove the key opens the target (writes the key check on an empty or readable target)"
    )
    offsite_prune_cmd = offsite_commands.add_parser("prune", help="apply offsite retention")
    offsite_prune_cmd.add_argument("--dry-run", action="store_true")
    offsite_prune_cmd.add_argument("--json", action="store_true")
    fetch_cmd = commands.add_parser("fetch", help="download an offsite backup onto this host, checked")
    fetch_cmd.add_argument("backup_id", metavar="ID")
    drill_cmd = commands.add_parser("drill", help="restore the newest offsite backup into the scratch database")
    drill_cmd.add_argument("backup_id", metavar="ID", nargs="?", default="latest")
    notify_cmd = commands.add_parser("notify-failure", help="post a failed unit to the webhook (its OnFailure=)")
    notify_cmd.add_argument("unit", metavar="UNIT")
    return parser


def _print_prune(result: dict[str, Any], as_json: bool, dry_run: bool) -> None:
    if as_json:
        print(json.dumps(result, sort_keys=True))
        return
    for decision in result["decisions"]:
        verb = "keep  " if decision["keep"] else ("would delete" if dry_run else "delete")
        print(f"{verb} {decision['backup_id']}: {', '.join(decision['reasons'])}")


def _run_timed_job(settings: Settings, metrics: Metrics, job: str, work: Any) -> dict[str, Any]:
    """Run an offsite copy or a drill, recording its outcome in the metrics file whatever happens; a failure is
    posted to the team's webhook (NOTIFY_WEBHOOK_URL) too, since nobody watches a timer's journal."""
    started = time.monotonic()
    try:
        result = work()
    except BackupError as exc:
        metrics.record_job(job, success=False, duration_s=time.monotonic() - started)
        notify_failure(settings, f"{job}-failed", str(exc))
        raise
    ok = result.get("result", "ok") == "ok"
    if not ok:
        notify_failure(settings, f"{job}-failed", "; ".join(str(f) for f in result.get("findings") or []) or "failed")
    extra = {"size_bytes": result["size_bytes"]} if ok and "size_bytes" in result else {}
    metrics.record_job(job, success=ok, duration_s=time.monotonic() - started, **extra)
    return result


def _run_offsite(settings: Settings, metrics: Metrics, args: argparse.Namespace) -> int:
    if args.offsite_command == "copy":
        backup_id = args.backup_id
        if backup_id == "latest":
            backup_id = find_backup(settings.backup_dir, "latest").backup_id
        work = lambda: offsite_copy(settings, backup_id, prune_after=not args.no_prune)  # noqa: E731
        print(json.dumps(_run_timed_job(settings, metrics, "offsite", work), sort_keys=True))
        return 0
    if args.offsite_command == "verify":
        ids = [find_any_backup(settings, backup_id).backup_id for backup_id in args.backup_ids]
        results = verify_offsite(settings, ids)
        print(json.dumps(results, sort_keys=True))
        for failed in (result for result in results if result["result"] != "ok"):
            print(f"{TOOL}: {'; '.join(failed['findings'])}", file=sys.stderr)
        return 0 if all(result["result"] == "ok" for result in results) else 1
    offsite = require_offsite(settings, write=args.offsite_command in ("key-check", "prune"))
    if args.offsite_command == "key-check":
        print(json.dumps({"target": offsite.describe(), "key_check": offsite.key_check}, sort_keys=True))
        return 0
    if args.offsite_command == "pull":
        print(json.dumps(pull_catalogue(settings, offsite), sort_keys=True))
        return 0
    with offsite_lock(settings):
        result = offsite_prune_locked(settings, offsite, args.dry_run)
    _print_prune(result, args.json, args.dry_run)
    return 0


def _run_create(settings: Settings, metrics: Metrics, args: argparse.Namespace) -> int:
    started = time.monotonic()
    if args.offsite_copy and not args.dry_run:
        # The key is proven before the dump: a wrong key or salt stops here, nothing dumped, nothing uploaded.
        try:
            require_offsite(settings, write=True)
        except BackupError as exc:
            metrics.record_job("offsite", success=False, duration_s=time.monotonic() - started)
            raise BackupError(f"no backup was taken: {exc}") from None
    try:
        result = create(settings, args.reason, args.release_ref, args.dry_run)
    except BackupError as exc:
        if not args.dry_run:
            metrics.record(success=False)
            if args.reason == "scheduled":
                notify_failure(settings, "scheduled-backup-failed", str(exc))
        raise
    if not args.dry_run:
        if args.verify or args.restore_drill:
            # Verified before the metrics call it a success: a backup that fails its check is not a good backup.
            try:
                _verify_created(settings, args, result)
            except BackupError:
                metrics.record(success=False)
                print(json.dumps(result, sort_keys=True))
                raise
        metrics.record(success=True, size=result["size_bytes"], duration_s=time.monotonic() - started)
        _follow_up(settings, metrics, args, result)
    print(json.dumps(result, sort_keys=True))
    return 0


def _verify_created(settings: Settings, args: argparse.Namespace, result: dict[str, Any]) -> None:
    """create --verify [--restore-drill]: the new archive checked against its manifest (BackupError if not ok)."""
    backup = find_backup(settings.backup_dir, result["id"])
    result["verification"] = verify(settings, backup, args.restore_drill)
    if result["verification"]["result"] != "ok":
        findings = "; ".join(result["verification"]["findings"])
        raise BackupError(f"{result['id']} failed verification: {findings}")


def _follow_up(settings: Settings, metrics: Metrics, args: argparse.Namespace, result: dict[str, Any]) -> None:
    """create --offsite-copy/--prune: the release's steps after the (verified) dump, in the scheduled unit's order.

    Each step runs only when the one before succeeded, so a failed verification or offsite copy prunes nothing.
    The backup itself is kept whatever fails here; the JSON printed on stdout says what was done, and the
    one sentence on stderr names the backup and the step that failed.
    """
    backup_id = result["id"]
    done = f"{backup_id} was written{' and verified' if 'verification' in result else ''} (kept)"
    try:
        if args.offsite_copy:
            copy = lambda: offsite_copy(settings, backup_id, prune_after=True)  # noqa: E731
            try:
                result["offsite"] = _run_timed_job(settings, metrics, "offsite", copy)
            except BackupError as exc:
                raise BackupError(f"{done}, but its offsite copy failed, nothing was pruned: {exc}") from None
        if args.prune:
            try:
                result["pruned"] = prune(settings, dry_run=False)["deleted"]
            except (BackupError, OSError) as exc:
                reason = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) and exc.strerror else exc
                raise BackupError(f"{done}, but retention failed: {reason}") from None
    except BackupError:
        print(json.dumps(result, sort_keys=True))
        raise


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    metrics = Metrics(settings.metrics_dir)
    if args.command == "create":
        return _run_create(settings, metrics, args)
    if args.command == "list":
        if settings.offsite is not None and not args.cached:
            try:
                pull_catalogue(settings, require_offsite(settings))
            except KeyMismatch:
                raise
            except BackupError as exc:
                progress(f"the offsite catalogue was not refreshed, showing the last known one: {exc}")
        _print_list(settings, args.json)
        return 0
    if args.command == "verify":
        if args.offsite:
            result = verify_offsite(settings, [find_any_backup(settings, args.backup_id).backup_id])[0]
        else:
            backup = ensure_local(settings, find_any_backup(settings, args.backup_id))
            result = verify(settings, backup, args.restore_drill)
        print(json.dumps(result, sort_keys=True))
        if result["result"] != "ok":
            print(f"{TOOL}: {result['id']} failed verification: {'; '.join(result['findings'])}", file=sys.stderr)
        return 0 if result["result"] == "ok" else 1
    if args.command == "prune":
        _print_prune(prune(settings, args.dry_run), args.json, args.dry_run)
        return 0
    if args.command == "restore":
        backup = ensure_local(settings, find_any_backup(settings, args.backup_id))
        result = restore(settings, backup, args.dbname, args.jobs, args.lock_timeout, args.writer_lock_wait)
        print(json.dumps(result, sort_keys=True))
        if result["compare"]["result"] != "ok":
            mismatches = "; ".join(result["compare"]["mismatches"])
            print(
                f"{TOOL}: {backup.backup_id} was restored into {args.dbname}, but it does not match its manifest: "
                f"{mismatches}",
                file=sys.stderr,
            )
            return 1
        return 0
    if args.command == "resolve":
        backup = find_any_backup(settings, args.backup_id)
        keys = ("created_at", "reason", "release_ref")
        described = {"id": backup.backup_id, **{key: backup.manifest.get(key) for key in keys}}
        print(json.dumps({**described, "present": backup.archive.is_file()}, sort_keys=True))
        return 0
    if args.command == "compare":
        result = compare_with_manifest(settings, find_any_backup(settings, args.backup_id))
        print(json.dumps(result, sort_keys=True))
        return 0 if result["result"] == "ok" else 1
    if args.command == "changes-since":
        since = args.since
        if NAME_PATTERN.match(since) or since == "latest":
            since = find_any_backup(settings, since).manifest["created_at"]
        print(json.dumps(changes_since(settings, since, args.sample), sort_keys=True))
        return 0
    if args.command == "offsite":
        return _run_offsite(settings, metrics, args)
    if args.command == "fetch":
        backup = fetch(settings, find_any_backup(settings, args.backup_id).backup_id)
        print(json.dumps({"id": backup.backup_id, "path": str(backup.archive), "sha256_ok": True}, sort_keys=True))
        return 0
    if args.command == "drill":
        result = _run_timed_job(settings, metrics, "drill", lambda: drill(settings, args.backup_id))
        print(json.dumps(result, sort_keys=True))
        return 0 if result["result"] == "ok" else 1
    if args.command == "notify-failure":
        print(json.dumps(notify_unit_failure(settings, args.unit), sort_keys=True))
        return 0
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except BackupError as exc:
        print(f"{TOOL}: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
