"""One address is one server, whatever its spelling (issue: a tenant taking over another tenant's server).

Tenant A owns a "server" that is a listening socket counting its connections. Tenant B registers it under
every spelling of its address: each attempt is refused with exactly the answer of a port where nothing
answers, and the socket never sees a connection (nothing was dialled with B's credentials).
"""

from __future__ import annotations

import socket
from urllib.parse import urlparse

import pytest

from clusters.models import Server
from controlplane import netpolicy

SPELLINGS = [
    "127.0.0.1",
    "localhost",
    "127.1",
    "2130706433",
    "0x7f000001",
    "::ffff:127.0.0.1",
    "127.0.0.01",
    "[::ffff:7f00:1]",
    "017700000001",
    "db.tenant-a.example",
]


class Listener:
    """A socket that takes connections and never answers; `pending()` counts the connections that arrived."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def pending(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1


@pytest.fixture
def listener():
    listening = Listener()
    yield listening
    listening.sock.close()


@pytest.fixture
def resolver(monkeypatch):
    """A host name that resolves to 127.0.0.1, patched at the name-resolution seam only."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "db.tenant-a.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(netpolicy.socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def victim(world, make_cluster, listener):
    return make_cluster(world.team_a, "victim", servers=(("127.0.0.1", listener.port),))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _register(client, host: str, port: int):
    return client.post(
        "/api/v1/clusters/",
        {
            "name": "mine",
            "servers": [{"host": host, "port": port}],
            "credentials": {"user": "root", "password": "guessed-password"},
        },
        format="json",
    )


def _message(value) -> str:
    return value[0] if isinstance(value, list) else value


def _normalised(body: dict, address: str) -> dict:
    return {
        "code": body["code"],
        "errors": {k: _message(v).replace(address, "ADDR") for k, v in body["errors"].items()},
    }


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_another_tenants_server_is_refused_under_every_spelling_without_a_connection(
    world, victim, listener, resolver, settings, spelling
):
    settings.DBPILOT_REGISTRATION_MAX_FAILURES = 1000
    port = listener.port
    client = world.client("token:tenant_b")
    response = _register(client, spelling, port)
    assert response.status_code == 400, response.content
    assert listener.pending() == 0, "dbpilot connected to the other tenant's server"
    # The same answer as an address where nothing answers at all.
    closed = _free_port()
    baseline = _register(client, "127.0.0.1", closed)
    assert baseline.status_code == 400
    refused = _normalised(response.json(), _message(response.json()["errors"]["servers[0]"]).split(": ")[0])
    assert refused == _normalised(baseline.json(), f"127.0.0.1:{closed}")
    assert not Server.objects.filter(cluster__tenant=world.tenant_b, port=port).exists()


def test_the_same_tenant_is_told_which_cluster_has_it(world, victim, listener):
    response = _register(world.client("token:admin"), "127.1", listener.port)
    assert response.status_code == 400
    assert "already registered in another cluster (victim)" in response.json()["detail"]
    assert listener.pending() == 0


def test_the_database_keeps_one_owner_per_address(world, victim, listener):
    from django.db import IntegrityError, transaction

    other = world.cluster_z
    with pytest.raises(IntegrityError), transaction.atomic():
        Server.objects.create(cluster=other, host="localhost", port=listener.port, ip="127.0.0.1")


def test_failed_registrations_are_rate_limited_per_token(world, settings):
    settings.DBPILOT_REGISTRATION_MAX_FAILURES = 3
    client = world.client("token:tenant_b")
    codes = [_register(client, "127.0.0.1", _free_port()).status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    throttled = _register(client, "127.0.0.1", _free_port())
    assert throttled.status_code == 429 and throttled.json()["code"] == "throttled"
    assert int(throttled["Retry-After"]) > 0
    # Another token is not held back by this one's failures.
    assert _register(world.client("token:admin"), "127.0.0.1", _free_port()).status_code == 400


@pytest.mark.parametrize("service", ["redis", "web"])
def test_dbpilots_own_services_are_never_a_server(world, settings, service):
    settings.DBPILOT_WEB_PORTS = [18765]
    port = _redis_port(settings) if service == "redis" else 18765
    for host in ("127.0.0.1", "127.0.0.9", "localhost"):
        response = _register(world.client("token:admin"), host, port)
        assert response.status_code == 400
        assert "dbpilot's own services" in response.json()["detail"]


def _redis_port(settings) -> int:
    """The port of the Redis this run uses (REDIS_URL): the one dbpilot must never let a tenant target."""
    return urlparse(settings.REDIS_URL).port or 6379


def _route(client, cluster, **fields):
    return client.post(f"/api/v1/clusters/{cluster.id}/routes/", fields, format="json")


@pytest.mark.parametrize("spelling", ["127.1", "0x7f000001", "[::ffff:127.0.0.1]", "2130706433"])
def test_a_route_cannot_point_at_another_tenants_server(world, victim, listener, spelling):
    port = listener.port
    response = _route(
        world.client("token:tenant_b"),
        world.cluster_z,
        kind="proxysql",
        admin_address=f"{spelling}:{port}",
        admin_user="admin",
        admin_password="admin-password",
        writer_hostgroup=10,
    )
    assert response.status_code == 400, response.content
    assert "not available to this tenant" in response.json()["detail"]
    assert listener.pending() == 0


def test_a_route_cannot_point_at_dbpilots_redis_or_web_port(world, settings):
    settings.DBPILOT_WEB_PORTS = [18766]
    client = world.client("token:admin")
    for url in (
        f"http://127.0.0.1:{_redis_port(settings)}",
        f"http://127.0.0.3:{_redis_port(settings)}",
        "http://localhost:18766",
        "http://2130706433:18766",
    ):
        response = _route(
            client, world.cluster_x, kind="maxscale", api_url=url, user="admin", password="mx-password"
        )
        assert response.status_code == 400, (url, response.content)
        assert "dbpilot's own services" in response.json()["detail"]
