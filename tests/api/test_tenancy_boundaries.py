"""A tenant's input never reaches further than the operator allowed: server addresses and sockets stay
inside the allowlists (controlplane/netpolicy.py), checked before any connection is attempted.

(Hooks and script routes, and closed-versus-filtered port errors against live servers, are tested with
the hooks runner and in tests/integration/test_registration_api.py.)
"""

from __future__ import annotations

import json
import socket

import pytest

from clusters.domain.addresses import AddressError
from controlplane.netpolicy import NotAllowed, check_socket_path, pin_host


@pytest.mark.parametrize(
    "host", ["8.8.8.8", "203.0.113.5", "10.0.0.1", "192.168.1.10", "::ffff:8.8.8.8", "2001:db8::1"]
)
def test_addresses_outside_the_allowlist_are_refused(host):
    with pytest.raises(NotAllowed, match="DBPILOT_ALLOWED_NETWORKS"):
        pin_host(host)


def test_loopback_is_allowed_and_pinned():
    assert pin_host("127.0.0.1") == "127.0.0.1"
    assert pin_host("::1") == "::1"


def test_a_name_resolving_outside_the_allowlist_is_refused(monkeypatch):
    def getaddrinfo(host, *args, **kwargs):  # a name whose DNS answer points outside (rebinding)
        assert host == "db.evil.example"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("203.0.113.5", 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(NotAllowed, match="203.0.113.5"):
        pin_host("db.evil.example")


@pytest.mark.parametrize("host", ["", "a b", "127.0.0.1;reboot", "$(id)", "host/../etc"])
def test_malformed_hosts_are_refused(host):
    with pytest.raises((AddressError, NotAllowed)):
        pin_host(host)


def test_sockets_must_lie_in_the_allowed_directories(settings, tmp_path):
    allowed = tmp_path / "sockets"
    allowed.mkdir()
    settings.DBPILOT_ALLOWED_SOCKET_DIRS = [allowed]
    (allowed / "escape.sock").symlink_to("/etc/passwd")
    assert check_socket_path(str(allowed / "haproxy.sock")) == (allowed / "haproxy.sock").resolve()
    for path in (
        "/etc/haproxy.sock",
        f"{allowed}/../../etc/passwd",
        str(allowed / "escape.sock"),
        "/run/dbpilot2/x.sock",
    ):
        with pytest.raises(NotAllowed, match="DBPILOT_ALLOWED_SOCKET_DIRS"):
            check_socket_path(path)


@pytest.mark.django_db
def test_registering_a_server_outside_the_allowlist_is_a_400_without_any_connection(world, monkeypatch):
    attempts = []
    real_connect = socket.socket.connect

    def connect(self, address):
        attempts.append(address)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    response = world.client("alice").post(
        "/api/v1/clusters/",
        data=json.dumps(
            {
                "name": "outside",
                "servers": [{"host": "8.8.8.8", "port": 3306}, {"host": "[::ffff:10.1.2.3]", "port": 3306}],
                "credentials": {"user": "dbpilot", "password": "boundary-test-password"},
            }
        ),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "DBPILOT_ALLOWED_NETWORKS" in response.json()["errors"]["servers[0]"]
    assert "DBPILOT_ALLOWED_NETWORKS" in response.json()["errors"]["servers[1]"]
    assert not [a for a in attempts if not str(a[0]).startswith(("127.", "::1", "/"))], attempts


@pytest.mark.parametrize("hook", ["../../bin/sh", "/bin/sh", "a;rm -rf /", "x y", "$(id)", "..", "a/b"])
@pytest.mark.parametrize("setting", ["pre_failover", "post_failover", "fence"])
@pytest.mark.django_db
def test_a_tenant_admin_cannot_name_a_hook_outside_the_hooks_directory(world, hook, setting):
    response = world.client("alice").patch(
        f"/api/v1/clusters/{world.cluster_x.id}/",
        data=json.dumps({"settings": {setting: hook}}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert setting in response.json()["detail"] and "hooks directory" in response.json()["detail"]
    world.cluster_x.refresh_from_db()
    assert world.cluster_x.settings.get(setting, "") != hook
