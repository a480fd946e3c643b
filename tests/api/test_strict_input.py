"""Strict names are strict: newlines, carriage returns, tabs, NUL and unicode line separators are refused in
every validated field (a `$` that matches before a final newline once let `db_write\\n` into haproxy.cfg)."""

from __future__ import annotations

import socket

import pytest

from clusters.routes.models import Route
from clusters.routes.spec import fields_of
from tenants.models import ApiToken, Team

pytestmark = [pytest.mark.api, pytest.mark.django_db]

BAD = ["\n", "\r", "\t", "\x00", "\u2028", "\u2029", "\x85", "\x0b"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _variants(value: str):
    """The value with each bad character at its end and in its middle."""
    for ch in BAD:
        yield value + ch
        yield value[: len(value) // 2] + ch + value[len(value) // 2 :]


ROUTES = {
    "haproxy": {
        "runtime_api": "tcp://127.0.0.1:{port}",
        "write_backend": "db_write",
        "read_backend": "db_read",
        "check_user": "haproxy_check",
        "health_url": "http://127.0.0.1:{port}",
        "write_bind": "*:3306",
        "read_bind": "127.0.0.1:3307",
    },
    "powerdns": {
        "api_url": "http://127.0.0.1:{port}",
        "api_key": "pdns-key-123456",
        "server_id": "localhost",
        "zone": "db.example.",
        "write_record": "write.db.example.",
        "read_record": "read.db.example.",
    },
    "script": {"script": "notify-routes"},
    "proxysql": {
        "admin_address": "127.0.0.1:{port}",
        "admin_user": "admin",
        "admin_password": "proxysql-pass",
        "writer_hostgroup": 10,
    },
    "maxscale": {"api_url": "http://127.0.0.1:{port}", "user": "admin", "password": "maxscale-pass"},
    "consul": {
        "api_url": "http://127.0.0.1:{port}",
        "token": "consul-token-1",
        "key_prefix": "dbpilot/prod",
        "service": "db",
        "node": "node-1",
    },
}
# Every kind may declare its client-facing addresses (shown in the cluster's endpoints, never dialled).
for _payload in ROUTES.values():
    _payload.update(
        {"client_address": "db-writer.example:3306", "client_read_address": "db-reader.example:3307"}
    )


def test_every_string_field_of_every_route_kind_is_covered():
    for kind, payload in ROUTES.items():
        strings = {name for name, f in fields_of(kind).items() if name not in ("check",)}
        numeric = {"check_inter_ms", "ttl", "writer_hostgroup", "reader_hostgroup", "save_to_disk"}
        assert strings - numeric <= set(payload), (kind, strings - numeric - set(payload))


@pytest.mark.parametrize("kind", sorted(ROUTES))
def test_route_fields_refuse_control_characters(world, kind):
    client = world.client("alice")
    port = _free_port()
    base = {k: v.format(port=port) if isinstance(v, str) else v for k, v in ROUTES[kind].items()}
    accepted = []
    for field in [*base, "name"]:
        value = base.get(field, "route-name")
        if not isinstance(value, str):
            continue
        for bad in _variants(value):
            response = client.post(
                f"/api/v1/clusters/{world.cluster_x.id}/routes/",
                {"kind": kind, "name": "r1", **base, field: bad},
                format="json",
            )
            if response.status_code != 400 or field not in response.json().get("errors", {}):
                accepted.append((field, repr(bad), response.status_code))
    assert accepted == []
    assert not Route.objects.exists()


@pytest.mark.parametrize("prefix", ["/abs/path", "dbpilot/../other", "..", "./x", "a//b", "dbpilot/./x"])
def test_consul_key_prefix_is_a_relative_path_without_dot_segments(world, prefix):
    response = world.client("alice").post(
        f"/api/v1/clusters/{world.cluster_x.id}/routes/",
        {"kind": "consul", "api_url": f"http://127.0.0.1:{_free_port()}", "key_prefix": prefix},
        format="json",
    )
    assert response.status_code == 400 and "key_prefix" in response.json()["errors"]


def test_registration_fields_refuse_control_characters(world, settings, tmp_path):
    settings.DBPILOT_REGISTRATION_MAX_FAILURES = 10000
    settings.DBPILOT_HOOKS_DIR = tmp_path
    (tmp_path / "pre").write_text("#!/bin/sh\n")
    (tmp_path / "pre").chmod(0o755)
    client = world.client("token:admin")
    base = {
        "name": "newcluster",
        "servers": [{"host": "127.0.0.1", "port": _free_port()}],
        "credentials": {"user": "dbpilot", "password": "pw-123456"},
    }
    cases = {
        "name": lambda bad: {**base, "name": bad},
        "servers[0]": lambda bad: {**base, "servers": [{"host": bad, "port": 3306}]},
        "settings.pre_failover": lambda bad: {**base, "settings": {"pre_failover": bad}},
        "settings.preferred_servers": lambda bad: {**base, "settings": {"preferred_servers": [bad]}},
    }
    values = {
        "name": "newcluster",
        "servers[0]": "127.0.0.1",
        "settings.pre_failover": "pre",
        "settings.preferred_servers": base["servers"][0]["host"] + f":{base['servers'][0]['port']}",
    }
    accepted = []
    for field, make in cases.items():
        for bad in _variants(values[field]):
            response = client.post("/api/v1/clusters/", make(bad), format="json")
            errors = response.json().get("errors", {}) if response.status_code == 400 else {}
            if not any(key.startswith(field.split("[")[0]) for key in errors):
                accepted.append((field, repr(bad), response.status_code))
    assert accepted == []


def test_settings_fields_refuse_control_characters(world, settings, tmp_path):
    settings.DBPILOT_HOOKS_DIR = tmp_path
    (tmp_path / "pre").write_text("#!/bin/sh\n")
    (tmp_path / "pre").chmod(0o755)
    client = world.client("alice")
    server = world.cluster_x.servers.first()
    accepted = []
    for key, value in (
        ("pre_failover", "pre"),
        ("post_failover", "pre"),
        ("fence", "pre"),
        ("preferred_servers", [server.address]),
        ("ignored_servers", [server.address]),
    ):
        text = value[0] if isinstance(value, list) else value
        for bad in _variants(text):
            changed = [bad] if isinstance(value, list) else bad
            response = client.patch(
                f"/api/v1/clusters/{world.cluster_x.id}/", {"settings": {key: changed}}, format="json"
            )
            if response.status_code != 400 or f"settings.{key}" not in response.json().get("errors", {}):
                accepted.append((key, repr(bad), response.status_code))
    assert accepted == []


def test_team_and_token_names_refuse_control_characters(world):
    client = world.client("alice")
    accepted = []
    for bad in _variants("newteam"):
        response = client.post("/api/v1/teams/", {"name": bad, "tenant": world.tenant_a.id}, format="json")
        if response.status_code != 400:
            accepted.append(("team", repr(bad), response.status_code))
        response = client.patch(f"/api/v1/teams/{world.team_a.id}/", {"name": bad}, format="json")
        if response.status_code != 400:
            accepted.append(("team rename", repr(bad), response.status_code))
        response = client.post(
            "/api/v1/tokens/", {"team": world.team_a.id, "name": bad, "scope": "read"}, format="json"
        )
        if response.status_code != 400:
            accepted.append(("token", repr(bad), response.status_code))
    assert accepted == []
    assert not Team.objects.filter(name__contains="newteam").exists()
    assert not ApiToken.objects.filter(name__contains="newteam").exists()
