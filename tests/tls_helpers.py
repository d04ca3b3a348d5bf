"""A database shaped like Supabase's: TLS only, the project's own CA, optionally client certificates.

A throwaway certificate authority issues the server's certificate (for 127.0.0.1 and localhost), a client
certificate, and two revocation lists: one empty and one revoking the server's certificate. `enable_tls`
turns a running sandbox into a TLS-only cluster (`hostssl` lines only) and rewrites its URL files so every
client connects with `sslmode=verify-full`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wfops.pgcluster import PostgresCluster

_VALID = dt.timedelta(days=2)


@dataclass(frozen=True)
class Pki:
    """Files of a throwaway CA and what it issued (every key 0600)."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def ca_cert(self) -> Path:
        return self.path("ca.crt")

    @property
    def server_cert(self) -> Path:
        return self.path("server.crt")

    @property
    def server_key(self) -> Path:
        return self.path("server.key")

    @property
    def client_cert(self) -> Path:
        return self.path("client.crt")

    @property
    def client_key(self) -> Path:
        return self.path("client.key")

    @property
    def crl_empty(self) -> Path:
        return self.path("empty.crl")

    @property
    def crl_revoking_server(self) -> Path:
        return self.path("revoked-server.crl")

    @property
    def other_ca_cert(self) -> Path:
        """A second CA's certificate, which did not sign the server's: verify-full must refuse it."""
        return self.path("other-ca.crt")


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.write_bytes(data)
    path.chmod(mode)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALID)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    now: dt.datetime,
    alt_names: list[x509.GeneralName] | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALID)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _crl(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, now: dt.datetime, revoked: list[int]) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + _VALID)
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        )
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def make_pki(directory: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1/localhost, a client certificate, and two CRLs."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory)
    now = dt.datetime.now(dt.UTC)
    ca_key, ca_cert = _ca("wfops throwaway CA", now)
    server_key, server_cert = _issue(
        ca_key,
        ca_cert,
        "localhost",
        now,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    client_key, client_cert = _issue(ca_key, ca_cert, "wfops-client", now)
    _, other_ca = _ca("another CA", now)
    pem = serialization.Encoding.PEM
    _write(pki.ca_cert, ca_cert.public_bytes(pem))
    _write(pki.other_ca_cert, other_ca.public_bytes(pem))
    _write(pki.server_cert, server_cert.public_bytes(pem))
    _write(pki.server_key, _key_pem(server_key), 0o600)
    _write(pki.client_cert, client_cert.public_bytes(pem))
    _write(pki.client_key, _key_pem(client_key), 0o600)
    _write(pki.crl_empty, _crl(ca_key, ca_cert, now, []))
    _write(pki.crl_revoking_server, _crl(ca_key, ca_cert, now, [server_cert.serial_number]))
    return pki


def tls_url(url: str, pki: Pki, *, client_cert: bool = False, crl: Path | None = None, **extra: str) -> str:
    """`url` with verify-full against the throwaway CA (and a client certificate and a CRL when asked)."""
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.update({"sslmode": "verify-full", "sslrootcert": str(pki.ca_cert)})
    if client_cert:
        query.update({"sslcert": str(pki.client_cert), "sslkey": str(pki.client_key)})
    if crl is not None:
        query["sslcrl"] = str(crl)
    query.update(extra)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def enable_tls(sandbox_dir: Path, pki: Pki, *, require_client_cert: bool = False) -> PostgresCluster:
    """Restart the sandbox's cluster TLS-only (hostssl, TLS 1.3 at least) and point its URL files at it."""
    port = int(json.loads((sandbox_dir / "state.json").read_text())["port"])
    cluster = PostgresCluster(base_dir=sandbox_dir / "pg", port=port)
    data = cluster.data_dir
    for source, name in ((pki.server_cert, "server.crt"), (pki.server_key, "server.key"), (pki.ca_cert, "ca.crt")):
        _write(data / name, source.read_bytes(), 0o600)
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            "\n# TLS only, as Supabase\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
            "ssl_ca_file = 'ca.crt'\nssl_min_protocol_version = 'TLSv1.3'\n"
        )
    client = " clientcert=verify-ca" if require_client_cert else ""
    (data / "pg_hba.conf").write_text(
        f"# TLS only: no plain host lines\nlocal all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256{client}\n"
    )
    cluster.stop()
    cluster.start()
    for name in ("database_url", "app_database_url"):
        path = sandbox_dir / name
        path.write_text(tls_url(path.read_text().strip(), pki, client_cert=require_client_cert))
        path.chmod(0o600)
    return cluster
