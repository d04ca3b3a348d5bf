"""The one connection rule of the modules (plugins/module_utils/wfops_pg.py): any libpq URL or key=value conninfo,
parsed by libpq itself, every parameter reaching libpq unchanged, poolers refused, and no message ever holding the
password - against a real server."""

from __future__ import annotations

import re
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from conftest import REPO
from wfops.pgcluster import PostgresCluster, free_port
from wfops.plugin_code import load

pg = load("wfops_pg")
PASSWORD = "s3cret pa/ss@word%?&"
ENCODED = urllib.parse.quote(PASSWORD, safe="")


@pytest.fixture
def login(pg_cluster: PostgresCluster, fresh_database: str) -> Iterator[tuple[str, str]]:
    """A password role over TCP (scram) on a fresh database: (role, database)."""
    role = f"r_{uuid.uuid4().hex[:8]}"
    dbname = fresh_database.rsplit("dbname=", 1)[1]
    admin = psycopg2.connect(pg_cluster.admin_dsn())
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} LOGIN PASSWORD %s", (PASSWORD,))
        cursor.execute(f"GRANT ALL ON DATABASE {dbname} TO {role}")
    yield role, dbname
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        cursor.execute(f"DROP ROLE {role}")
    admin.close()


def _url(role: str, port: int, dbname: str, password: str = PASSWORD, query: str = "") -> str:
    return f"postgresql://{role}:{urllib.parse.quote(password, safe='')}@127.0.0.1:{port}/{dbname}{query}"


def test_every_parameter_of_the_url_reaches_libpq_unchanged(
    pg_cluster: PostgresCluster, login: tuple[str, str], tmp_path: Path
) -> None:
    role, dbname = login
    query = (
        f"?sslmode=prefer&sslcrl={tmp_path}/revoked.crl&sslcert={tmp_path}/client.crt&sslkey={tmp_path}/client.key"
        "&channel_binding=prefer&target_session_attrs=read-write&keepalives_idle=30"
        "&options=-c%20statement_timeout%3D4321&application_name=release-by-alice"
    )
    connection = pg.connect(_url(role, pg_cluster.port, dbname, query=query), "wfops-test")
    try:
        used = connection.info.dsn_parameters  # what libpq connected with (PQconninfo), password left out
        assert used["sslcrl"] == f"{tmp_path}/revoked.crl"
        assert (used["sslcert"], used["sslkey"]) == (f"{tmp_path}/client.crt", f"{tmp_path}/client.key")
        assert used["channel_binding"] == "prefer" and used["target_session_attrs"] == "read-write"
        assert used["keepalives_idle"] == "30" and used["connect_timeout"] == "10"
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_user, current_setting('statement_timeout'), current_setting('application_name')"
            )
            # The URL's own application_name wins over the module's default.
            assert cursor.fetchone() == (role, "4321ms", "release-by-alice")
    finally:
        connection.close()


def test_a_unix_socket_reached_as_a_query_host_a_percent_encoded_host_or_key_value_pairs(
    pg_cluster: PostgresCluster, fresh_database: str
) -> None:
    dbname, socket, user, port = (
        fresh_database.rsplit("dbname=", 1)[1],
        str(pg_cluster.socket_dir),
        pg_cluster.superuser,
        pg_cluster.port,
    )
    for url in (
        f"postgresql:///{dbname}?host={socket}&port={port}&user={user}",
        f"postgresql://{user}@{urllib.parse.quote(socket, safe='')}:{port}/{dbname}",
        f"host={socket} port={port} user={user} dbname={dbname}",
    ):
        info = pg.parse_database_url(url)
        assert info.describe() == f"{dbname} at the unix socket in {socket} (port {port}) as {user}"
        connection = pg.connect(url, "wfops-test")
        with connection.cursor() as cursor:
            cursor.execute("SELECT inet_server_addr() IS NULL, current_database()")  # NULL: not over TCP
            assert cursor.fetchone() == (True, dbname)
        connection.close()


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://postgres.abc:{ENCODED}@aws-0-eu-central-1.pooler.supabase.com:6543/postgres",
        f"postgresql://postgres:{ENCODED}@db.example.test:5432/postgres?pgbouncer=true",
        f"host=db.example.test port=6543 user=postgres password='{PASSWORD}'",
        "host=primary.example.test,pooler.example.test port=5432,6543 user=postgres",
    ],
)
def test_a_transaction_pooler_is_refused_before_connecting_without_the_password(url: str) -> None:
    with pytest.raises(pg.DatabaseError, match="transaction pooler") as caught:
        pg.connect(url, "wfops-test")
    assert "direct connection on port 5432" in str(caught.value)
    _assert_no_password(str(caught.value))


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://ops:s3cr%zzet@db.example.test/weddingflo", "invalid percent-encoded token"),
        (f"postgresql://ops:{PASSWORD}@db.example.test:5432/weddingflo", "password holds a '/', '?', '#' or '@'"),
        (f"postgresql://ops:{ENCODED}@db/weddingflo?schema=public", '"schema"'),
        (f"mysql://root:{PASSWORD}@db.example.test/weddingflo", "missing"),
        (f"host=db password='{PASSWORD}' dbname", 'missing "=" after "dbname"'),
        (f"host=db password={ENCODED} sslmode=sideways", "sslmode"),
    ],
)
def test_a_string_libpq_cannot_read_is_refused_in_one_sentence_without_the_password(url: str, says: str) -> None:
    with pytest.raises(pg.DatabaseError) as caught:
        pg.connect(url, "wfops-test")
    message = str(caught.value)
    assert says in message and message.count("\n") == 0
    _assert_no_password(message, "s3cr%zzet")


def test_a_refused_login_and_an_unreachable_server_are_named_without_the_password(
    pg_cluster: PostgresCluster, login: tuple[str, str]
) -> None:
    role, dbname = login
    wrong = "not-" + PASSWORD
    with pytest.raises(pg.DatabaseError) as caught:
        pg.connect(_url(role, pg_cluster.port, dbname, password=wrong), "wfops-test")
    message = str(caught.value)
    assert f"cannot reach the database {dbname} at 127.0.0.1:{pg_cluster.port} as {role}" in message
    assert "password authentication failed" in message
    _assert_no_password(message, wrong)
    port = free_port()
    with pytest.raises(pg.DatabaseError, match=f"at 127.0.0.1:{port} as {role}: connection to server") as caught:
        pg.connect(_url(role, port, dbname), "wfops-test")
    _assert_no_password(str(caught.value))


def _assert_no_password(message: str, *more: str) -> None:
    for secret in (PASSWORD, ENCODED, *more):
        assert secret not in message, message


def test_every_module_connects_through_the_one_rule() -> None:
    """No module or module_util opens its own connection: psycopg2.connect is called in wfops_pg alone, and every
    module taking a database_url connects with wfops_pg.connect."""
    sources = sorted((REPO / "plugins").glob("module*/*.py"))
    direct = [p.name for p in sources if "psycopg2.connect(" in p.read_text() and p.name != "wfops_pg.py"]
    assert direct == []
    for module in sorted((REPO / "plugins" / "modules").glob("*.py")):
        text = module.read_text()
        if '"database_url"' in text:
            assert re.search(r"from ansible\.module_utils\.wfops_pg import \(?[^)]*\bconnect\b", text), module.name
            assert re.search(r"\bconnect\(\s*(p|params|module\.params)\[\"database_url\"\]", text), module.name
