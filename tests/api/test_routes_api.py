"""The routes API: strict validation, allowlists, endpoints owned by one tenant, write-only secrets, the
generated haproxy.cfg, the health key and the health check endpoints, and when routes sync."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from clusters import hotstate
from clusters.models import Event, Finding, Job
from clusters.routes.models import Route
from clusters.services import routing
from tests.integration.routing_helpers import free_port

pytestmark = pytest.mark.django_db


def routes_url(cluster, suffix: str = "") -> str:
    return f"/api/v1/clusters/{cluster.id}/routes/{suffix}"


def haproxy(port: int | None = None, **extra) -> dict:
    return {
        "kind": "haproxy",
        "runtime_api": f"tcp://127.0.0.1:{port or free_port()}",
        "write_backend": "db_write",
        **extra,
    }


def test_a_route_is_shown_flat_and_its_secrets_are_write_only(world):
    alice = world.client("alice")
    body = {
        "kind": "powerdns",
        "api_url": f"http://127.0.0.1:{free_port()}",
        "api_key": "pdns-api-key-that-is-secret",
        "zone": "db.example.",
        "write_record": "write.db.example.",
        "ttl": 10,
    }
    created = alice.post(routes_url(world.cluster_x), body, format="json")
    assert created.status_code == 201, created.content
    route = created.json()
    assert route["kind"] == "powerdns" and route["zone"] == "db.example." and route["ttl"] == 10
    assert "api_key" not in route and route["secrets_set"] == ["api_key"]
    assert route["last_sync"]["ok"] is False and "not reachable" in route["last_sync"]["detail"]
    row = Route.objects.get(pk=route["id"])
    assert "pdns-api-key-that-is-secret" not in row.secrets_encrypted + str(row.settings)
    assert alice.get(routes_url(world.cluster_x)).json()["results"][0]["id"] == route["id"]

    patched = alice.patch(routes_url(world.cluster_x, f"{route['id']}/"), {"ttl": 30}, format="json")
    assert patched.status_code == 200 and patched.json()["ttl"] == 30
    assert routing._stored_spec(Route.objects.get(pk=route["id"])).secrets == {
        "api_key": "pdns-api-key-that-is-secret"
    }
    refused = alice.patch(routes_url(world.cluster_x, f"{route['id']}/"), {"kind": "haproxy"}, format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "invalid"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (haproxy(write_backend="db_write;disable frontend x"), "write_backend", "letters, digits"),
        (
            {"kind": "haproxy", "runtime_api": "unix:///etc/haproxy.sock", "write_backend": "w"},
            "runtime_api",
            "DBPILOT_ALLOWED_SOCKET_DIRS",
        ),
        (
            {"kind": "haproxy", "runtime_api": "tcp://192.0.2.10:9999", "write_backend": "w"},
            "runtime_api",
            "DBPILOT_ALLOWED_NETWORKS",
        ),
        (
            {"kind": "maxscale", "api_url": "http://198.51.100.7:8989", "user": "admin", "password": "p"},
            "api_url",
            "DBPILOT_ALLOWED_NETWORKS",
        ),
        (
            {
                "kind": "powerdns",
                "api_url": "http://u:p@127.0.0.1:8081",
                "api_key": "k",
                "zone": "z.",
                "write_record": "w.z.",
            },
            "api_url",
            "credentials",
        ),
        ({"kind": "script", "script": "../../bin/sh"}, "script", "hooks directory"),
        (
            {"kind": "consul", "api_url": "http://127.0.0.1:8500", "key_prefix": "a b"},
            "key_prefix",
            "letters",
        ),
        ({"kind": "bgp"}, "kind", "must be one of"),
        (haproxy(name="has space"), "name", "letters"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(world, body, field, words):
    response = world.client("alice").post(routes_url(world.cluster_x), body, format="json")
    assert response.status_code == 400, response.content
    payload = response.json()
    assert payload["code"] == "invalid" and field in payload["errors"], payload
    assert words in str(payload["errors"][field]), payload
    assert not Route.objects.exists()


def test_a_body_that_is_not_an_object_is_a_400(world):
    response = world.client("alice").post(routes_url(world.cluster_x), ["haproxy"], format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_an_endpoint_of_another_tenant_cannot_be_used(world, make_cluster):
    port = free_port()
    charlie = world.client("charlie")
    assert charlie.post(routes_url(world.cluster_z), haproxy(port), format="json").status_code == 201
    # The same proxy, spelled differently, is not available to tenant A.
    response = world.client("alice").post(
        routes_url(world.cluster_x), haproxy(port) | {"runtime_api": f"tcp://localhost:{port}"}, format="json"
    )
    assert response.status_code == 400 and "not available" in str(response.json()["errors"]["runtime_api"])
    # Nor a database server of tenant B.
    other = make_cluster(world.team_b, "other", servers=(("127.0.0.1", 4406),))
    response = world.client("alice").post(
        routes_url(world.cluster_x),
        {
            "kind": "proxysql",
            "admin_address": "127.0.0.1:4406",
            "admin_user": "admin",
            "admin_password": "x",
            "writer_hostgroup": 1,
        },
        format="json",
    )
    assert response.status_code == 400 and "not available" in str(response.json()["errors"]["admin_address"])
    assert other.servers.count() == 1
    # Within one tenant, several clusters may share a proxy.
    assert (
        world.client("alice")
        .post(routes_url(world.cluster_y), haproxy(free_port()), format="json")
        .status_code
        == 201
    )


def test_route_names_are_unique_per_cluster(world):
    alice = world.client("alice")
    first = alice.post(routes_url(world.cluster_x), haproxy(), format="json").json()
    second = alice.post(routes_url(world.cluster_x), haproxy(), format="json").json()
    assert (first["name"], second["name"]) == ("haproxy", "haproxy-2")
    clash = alice.patch(routes_url(world.cluster_x, f"{second['id']}/"), {"name": "haproxy"}, format="json")
    assert clash.status_code == 400 and "already has a route" in str(clash.json()["errors"]["name"])


def test_haproxy_cfg_is_plain_text_for_haproxy_routes_only(world):
    alice = world.client("alice")
    route = alice.post(routes_url(world.cluster_x), haproxy(read_backend="db_read"), format="json").json()
    response = alice.get(routes_url(world.cluster_x, f"{route['id']}/haproxy.cfg"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert (
        "backend db_write" in text
        and "backend db_read" in text
        and "server 127.0.0.1:3306 127.0.0.1:3306" in text
    )
    assert (
        alice.get(routes_url(world.cluster_x, f"{route['id']}/haproxy.cfg"), {"check": "tcp"}).status_code
        == 400
    )
    no_url = alice.get(routes_url(world.cluster_x, f"{route['id']}/haproxy.cfg"), {"check": "http"})
    assert no_url.status_code == 400 and "health_url" in no_url.json()["detail"]
    script = alice.post(
        routes_url(world.cluster_x), {"kind": "script", "script": "move-vip"}, format="json"
    ).json()
    assert alice.get(routes_url(world.cluster_x, f"{script['id']}/haproxy.cfg")).status_code == 404


def health(client, cluster_id, server, role, key=None):
    headers = {"HTTP_X_DBPILOT_HEALTH_KEY": key} if key is not None else {}
    return client.get(f"/api/v1/health/clusters/{cluster_id}/servers/{server}/{role}", **headers)


def test_the_health_key_is_shown_once_and_authorizes_only_its_cluster(world, monkeypatch):
    monkeypatch.setattr(hotstate, "read_topology", lambda cluster_id: None)
    alice, anonymous = world.client("alice"), world.client(None)
    key = alice.post(f"/api/v1/clusters/{world.cluster_x.id}/health-key/").json()["health_key"]
    world.cluster_x.refresh_from_db()
    assert key not in world.cluster_x.health_key_hmac
    first, second = [s.address for s in world.cluster_x.servers.all()]
    assert health(anonymous, world.cluster_x.id, first, "primary", key).status_code == 200
    assert health(anonymous, world.cluster_x.id, second, "primary", key).status_code == 503
    assert health(anonymous, world.cluster_x.id, second, "replica", key).json()["healthy"] is True
    # A wrong key, no key, another cluster's id, an unknown cluster: the same 404.
    missing = health(anonymous, 999999, first, "primary", key)
    assert missing.status_code == 404
    for response in (
        health(anonymous, world.cluster_x.id, first, "primary", key[:-2] + "xx"),
        health(anonymous, world.cluster_x.id, first, "primary"),
        health(alice, world.cluster_x.id, first, "primary"),
        health(anonymous, world.cluster_y.id, first, "primary", key),
    ):
        assert (response.status_code, response.json()) == (404, missing.json())
    assert health(anonymous, world.cluster_x.id, "127.0.0.1:1", "primary", key).status_code == 404
    # Rotating again retires the old key.
    newer = alice.post(f"/api/v1/clusters/{world.cluster_x.id}/health-key/").json()["health_key"]
    assert health(anonymous, world.cluster_x.id, first, "primary", key).status_code == 404
    assert health(anonymous, world.cluster_x.id, first, "primary", newer).status_code == 200
    assert Event.objects.filter(cluster=world.cluster_x, kind="health_key_rotated").count() == 2


def test_health_answers_follow_the_latest_observation(world, monkeypatch):
    key = (
        world.client("alice").post(f"/api/v1/clusters/{world.cluster_x.id}/health-key/").json()["health_key"]
    )
    first, second = [s.address for s in world.cluster_x.servers.all()]
    later = (timezone.now() + timedelta(seconds=5)).isoformat()
    snapshot = {
        "primary": second,
        "updated_at": later,
        "servers": [
            {"address": second, "role": "primary", "state": "up", "read_only": False, "replication": None},
            {
                "address": first,
                "role": "replica",
                "state": "up",
                "read_only": True,
                "replication": {"io_running": "Yes", "sql_running": "No", "seconds_behind": None},
            },
        ],
    }
    monkeypatch.setattr(hotstate, "read_topology", lambda cluster_id: snapshot)
    anonymous = world.client(None)
    assert health(anonymous, world.cluster_x.id, second, "primary", key).status_code == 200
    stopped = health(anonymous, world.cluster_x.id, first, "replica", key)
    assert stopped.status_code == 503 and stopped.json()["reason"] == "replication is not running"
    assert health(anonymous, world.cluster_x.id, "[::1]:3306", "replica", key).status_code == 404


def test_a_sync_while_an_ha_job_runs_leaves_the_routes_to_the_job(world):
    alice = world.client("alice")
    route = alice.post(routes_url(world.cluster_x), haproxy(), format="json").json()
    Job.objects.create(cluster=world.cluster_x, kind="failover", state="running", requested_by="test")
    synced = alice.post(routes_url(world.cluster_x, f"{route['id']}/sync/"))
    assert synced.status_code == 200
    assert synced.json()["last_sync"] == route["last_sync"]  # nothing applied, nothing recorded
    result = routing.sync_route(Route.objects.get(pk=route["id"]))
    assert result.ok and "failover job" in result.detail


def test_a_failing_route_opens_one_finding_until_it_is_deleted(world):
    alice = world.client("alice")
    route = alice.post(routes_url(world.cluster_x), haproxy(), format="json").json()
    assert alice.post(routes_url(world.cluster_x, f"{route['id']}/sync/")).json()["last_sync"]["ok"] is False
    stale = Finding.objects.filter(
        cluster=world.cluster_x, code=routing.ROUTE_STALE, resolved_at__isnull=True
    )
    assert stale.count() == 1 and "is not reachable" in stale.get().message
    assert Event.objects.filter(cluster=world.cluster_x, kind="route_sync_failed").count() == 2
    assert alice.delete(routes_url(world.cluster_x, f"{route['id']}/")).status_code == 204
    assert not stale.exists()
    assert Event.objects.filter(cluster=world.cluster_x, kind="route_deleted").exists()


def test_topology_changes_queue_a_sync_only_when_the_read_side_changes(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    from workers import tasks

    queued = []
    monkeypatch.setattr(tasks.sync_cluster_routes, "delay", lambda *args: queued.append(args))
    first, second = [s.address for s in world.cluster_x.servers.all()]

    def snapshot(sql_running: str) -> dict:
        return {
            "primary": first,
            "servers": [
                {"address": first, "role": "primary", "state": "up", "read_only": False},
                {
                    "address": second,
                    "role": "replica",
                    "state": "up",
                    "read_only": True,
                    "replication": {"io_running": "Yes", "sql_running": sql_running, "seconds_behind": 0},
                },
            ],
        }

    assert (
        routing.on_topology_changed(world.cluster_x.id, snapshot("Yes"), snapshot("No")) is False
    )  # no route yet
    world.client("alice").post(routes_url(world.cluster_x), haproxy(), format="json")
    with django_capture_on_commit_callbacks(execute=True):
        assert routing.on_topology_changed(world.cluster_x.id, snapshot("Yes"), snapshot("Yes")) is False
        assert routing.on_topology_changed(world.cluster_x.id, snapshot("No"), snapshot("Yes")) is True
    assert queued == [(world.cluster_x.id, routing.TRIGGER_HEALTH)]


def test_one_sync_of_a_cluster_routes_runs_at_a_time(world, monkeypatch):
    from clusters.routes import notify

    route = world.client("alice").post(routes_url(world.cluster_x), haproxy(), format="json").json()
    monkeypatch.setattr(notify, "LOCK_WAIT_SECONDS", 0.2)
    with notify.routes_lock(world.cluster_x.id) as held:
        assert held
        result = routing.sync_route(Route.objects.get(pk=route["id"]))
        assert result.ok and "another sync" in result.detail
    assert not routing.sync_route(Route.objects.get(pk=route["id"])).ok  # the lock is free again: it ran


def test_a_route_is_not_a_port_scanner(world):
    """Refused, silent and wrong-protocol endpoints all read the same to the tenant; nothing the endpoint
    answered is echoed back."""
    import threading

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    chatty = socket.socket()
    chatty.bind(("127.0.0.1", 0))
    chatty.listen(4)

    def answer_garbage():
        for _ in range(4):
            try:
                conn, _ = chatty.accept()
            except OSError:
                return
            conn.recv(4096)
            conn.sendall(
                b"HTTP/1.0 500 Oops\r\nContent-Type: text/plain\r\n\r\nSECRET-BANNER-OF-ANOTHER-SERVICE"
            )
            conn.close()

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    try:
        alice = world.client("alice")
        details = []
        for port in (free_port(), silent.getsockname()[1], chatty.getsockname()[1]):
            body = {
                "kind": "powerdns",
                "name": f"p{port}",
                "api_url": f"http://127.0.0.1:{port}",
                "api_key": "pdns-key-123456",
                "zone": "db.example.",
                "write_record": "write.db.example.",
            }
            route = alice.post(routes_url(world.cluster_x), body, format="json").json()
            details.append(route["last_sync"]["detail"])
    finally:
        silent.close()
        chatty.close()
    assert len(set(details)) == 1, details
    assert (
        "SECRET-BANNER" not in details[0] and "500" not in details[0] and "refused" not in details[0].lower()
    )
