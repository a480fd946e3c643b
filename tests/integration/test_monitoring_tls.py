"""Monitoring over TLS on real servers: the pipelined probe reads replies through PyMySQL's TLS socket.

The servers get a certificate from a throwaway CA (made here with `cryptography`); the cluster's `tls`
setting decides: `verify` with the right CA probes and ticks normally, `verify` with another CA fails
every probe, and the session really is encrypted."""

from __future__ import annotations

import datetime
import ipaddress
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from clusters.adapters.mysql import POOL, ConnectOptions, Credentials
from clusters.adapters.probe import probe_many
from clusters.domain import constants as c
from clusters.services.monitoring import monitor_shard
from tests.integration.monitoring_helpers import register, tenant_client

pytestmark = pytest.mark.django_db(transaction=True)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(subject, issuer, public_key, signing_key, *, ca: bool, ip: str | None = None):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
    return builder.sign(signing_key, hashes.SHA256())


def _pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def make_ca(common: str):
    key = ec.generate_private_key(ec.SECP256R1())
    return key, _certificate(_name(common), _name(common), key.public_key(), key, ca=True)


@pytest.fixture
def tls_files(tmp_path):
    """A CA, a server certificate for 127.0.0.1 signed by it, and another CA; readable by mariadbd."""
    ca_key, ca = make_ca("dbpilot test CA")
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate(
        _name("127.0.0.1"), ca.subject, server_key.public_key(), ca_key, ca=False, ip="127.0.0.1"
    )
    directory = tmp_path / "tls"
    directory.mkdir()
    files = {
        "ssl_ca": (directory / "ca.pem", _pem(ca)),
        "ssl_cert": (directory / "server.pem", _pem(server)),
        "ssl_key": (
            directory / "server-key.pem",
            server_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ).decode(),
        ),
    }
    for path, text in files.values():
        path.write_text(text)
        os.chmod(path, 0o644)  # mariadbd runs as mysql: a throwaway key, readable
    for parent in [directory, *directory.parents]:
        if parent == parent.parent:
            break
        os.chmod(parent, os.stat(parent).st_mode | 0o711)
    _, other = make_ca("another CA")
    return {name: str(path) for name, (path, _) in files.items()}, _pem(ca), _pem(other)


def test_a_cluster_with_tls_verify_is_probed_and_ticked_over_tls(sandbox_factory, clean_redis, tls_files):
    config, ca_pem, other_pem = tls_files
    sandbox = sandbox_factory(3, extra_config=config)
    _, created = tenant_client("tls")
    cluster = register(created.team, sandbox, "secure", tls="verify", tls_ca=ca_pem)
    try:
        monitor_shard([cluster.id])
        monitor_shard([cluster.id])
        from clusters import hotstate

        snapshot = hotstate.read_topology(cluster.id)
        assert snapshot["primary"] == f"127.0.0.1:{sandbox.port(1)}"
        assert sorted(s["role"] for s in snapshot["servers"]) == [
            c.ROLE_PRIMARY,
            c.ROLE_REPLICA,
            c.ROLE_REPLICA,
        ]
        assert all(s["state"] == c.STATE_UP for s in snapshot["servers"])

        admin = sandbox.accounts.admin
        credentials = Credentials(admin.user, admin.password)
        address = f"127.0.0.1:{sandbox.port(2)}"
        verified = ConnectOptions(tls="verify", tls_ca=ca_pem)
        result = probe_many([(address, credentials, verified)] * 3, details=False)
        assert all(r.reachable and r.replication for r in result)
        key, conn = POOL.acquire(address, credentials, verified, multi_statements=True)
        try:
            with conn.cursor() as cursor:
                cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                assert cursor.fetchone()["Value"], "the probe session is encrypted"
        finally:
            POOL.release(key, conn)

        wrong = probe_many([(address, credentials, ConnectOptions(tls="verify", tls_ca=other_pem))])[0]
        assert not wrong.reachable and wrong.outcome == "error"
    finally:
        POOL.discard_address(f"127.0.0.1:{sandbox.port(1)}")
        for node in (2, 3):
            POOL.discard_address(f"127.0.0.1:{sandbox.port(node)}")
