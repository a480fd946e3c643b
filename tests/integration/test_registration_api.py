"""Registering clusters through the API against real servers: good input and every kind of bad input."""

from __future__ import annotations

import socket

import pytest

from clusters.models import Cluster
from tests.integration.monitoring_helpers import registration_payload, tenant_client

pytestmark = pytest.mark.django_db


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def api(sandbox_cluster):
    client, created = tenant_client()
    return client, sandbox_cluster


def post(client, payload):
    response = client.post("/api/v1/clusters/", payload, format="json")
    assert response.status_code < 500, response.content
    return response


def test_register_returns_the_cluster_object_without_credentials(api):
    client, sandbox = api
    response = post(client, registration_payload(sandbox))
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) >= {
        "id",
        "name",
        "tenant",
        "origin",
        "servers",
        "settings",
        "failover_mode",
        "failover_armed",
        "paused",
        "primary",
        "health",
        "job",
        "created_at",
        "updated_at",
    }
    assert (
        body["origin"] == "registered"
        and body["failover_mode"] == "manual"
        and body["failover_armed"] is False
    )
    assert len(body["servers"]) == 3 and all(
        set(s) == {"id", "host", "port", "maintenance"} for s in body["servers"]
    )
    text = response.content.decode()
    assert sandbox.describe()["credentials"]["admin"]["password"] not in text
    assert "credentials" not in body
    listed = client.get("/api/v1/clusters/").json()
    assert [c["name"] for c in listed["results"]] == ["main"]


def test_wrong_password_is_a_400_naming_each_server(api):
    client, sandbox = api
    payload = registration_payload(sandbox)
    payload["credentials"] = {"user": payload["credentials"]["user"], "password": "wrong"}
    response = post(client, payload)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "access denied" in body["detail"]
    for node in sandbox.nodes:
        assert f"{sandbox.host(node)}:{sandbox.port(node)}" in body["detail"]
    assert not Cluster.objects.exists()


def test_closed_and_frozen_ports_give_the_same_message(api, sandbox_factory):
    client, sandbox = api
    closed = free_port()
    listener = socket.socket()  # accepts TCP, never speaks MySQL: like a filtered or non-MySQL port
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    silent = listener.getsockname()[1]
    try:
        messages = []
        for port in (closed, silent):
            payload = registration_payload(sandbox)
            payload["servers"] = [{"host": "127.0.0.1", "port": port}]
            response = post(client, payload)
            assert response.status_code == 400
            messages.append(response.json()["errors"]["servers[0]"][0].replace(str(port), "PORT"))
        assert messages[0] == messages[1]
    finally:
        listener.close()


@pytest.mark.parametrize(
    "server, expected",
    [
        ({"host": "127.0.0.1", "port": 0}, "port"),
        ({"host": "127.0.0.1", "port": 70000}, "port"),
        ({"host": "127.0.0.1", "port": "abc"}, "port"),
        ({"host": "192.0.2.10", "port": 3306}, "DBPILOT_ALLOWED_NETWORKS"),
        ({"host": "198.51.100.7", "port": 3306}, "DBPILOT_ALLOWED_NETWORKS"),
        ({"host": "bad host;rm", "port": 3306}, "host"),
        ({"host": "", "port": 3306}, "host"),
    ],
)
def test_invalid_server_addresses_are_refused_before_any_connection(api, server, expected):
    client, sandbox = api
    payload = registration_payload(sandbox)
    payload["servers"] = [server]
    response = post(client, payload)
    assert response.status_code == 400
    assert expected in response.json()["detail"]


def test_duplicate_server_and_server_of_another_cluster_are_refused(api):
    client, sandbox = api
    payload = registration_payload(sandbox)
    payload["servers"].append(dict(payload["servers"][0]))
    response = post(client, payload)
    assert response.status_code == 400 and "listed twice" in response.json()["detail"]

    assert post(client, registration_payload(sandbox, "first")).status_code == 201
    response = post(client, registration_payload(sandbox, "second", nodes=[2]))
    assert (
        response.status_code == 400 and "already registered in another cluster" in response.json()["detail"]
    )
    response = post(client, registration_payload(sandbox, "first"))
    assert response.status_code == 400


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda p: p.pop("name"), "name"),
        (lambda p: p.update(name="Bad Name!"), "name"),
        (lambda p: p.update(servers=[]), "servers"),
        (lambda p: p.update(servers="x"), "servers"),
        (lambda p: p.pop("credentials"), "credentials"),
        (lambda p: p.update(credentials={"user": ""}), "credentials"),
        (lambda p: p.update(settings={"failcount": 0}), "failcount"),
        (lambda p: p.update(settings={"nonsense": 1}), "nonsense"),
        (lambda p: p.update(settings={"tick_seconds": "fast"}), "tick_seconds"),
        (lambda p: p.update(settings={"fence": "../../bin/sh"}), "fence"),
        (lambda p: p.update(settings={"preferred_servers": ["nope"]}), "preferred_servers"),
    ],
)
def test_malformed_payloads_are_400_with_the_field_named(api, mutate, field):
    client, sandbox = api
    payload = registration_payload(sandbox)
    mutate(payload)
    response = post(client, payload)
    assert response.status_code == 400, response.content
    assert field in response.json()["detail"]


def test_lone_server_is_accepted(api):
    client, sandbox = api
    response = post(client, registration_payload(sandbox, "solo", nodes=[1]))
    assert response.status_code == 201
    assert len(response.json()["servers"]) == 1


def test_settings_patch_validates_and_records_an_event(api):
    client, sandbox = api
    cluster_id = post(client, registration_payload(sandbox)).json()["id"]
    response = client.patch(f"/api/v1/clusters/{cluster_id}/", {"settings": {"failcount": 5}}, format="json")
    assert response.status_code == 200 and response.json()["settings"]["failcount"] == 5
    response = client.patch(f"/api/v1/clusters/{cluster_id}/", {"settings": {"failcount": -1}}, format="json")
    assert response.status_code == 400 and "failcount" in response.json()["detail"]
    response = client.patch(f"/api/v1/clusters/{cluster_id}/", {"name": "renamed"}, format="json")
    assert response.status_code == 400
    events = client.get(f"/api/v1/clusters/{cluster_id}/events/").json()
    assert events["results"][0]["kind"] == "settings_changed"


def test_maintenance_toggles_and_unknown_server_is_404(api):
    client, sandbox = api
    body = post(client, registration_payload(sandbox)).json()
    server_id = body["servers"][1]["id"]
    url = f"/api/v1/clusters/{body['id']}/servers/{server_id}/maintenance/"
    response = client.post(url, {"on": True}, format="json")
    assert response.status_code == 200
    assert [s["maintenance"] for s in response.json()["servers"]] == [False, True, False]
    assert client.post(url, {"on": "maybe"}, format="json").status_code == 400
    assert (
        client.post(
            f"/api/v1/clusters/{body['id']}/servers/999999/maintenance/", {"on": True}, format="json"
        ).status_code
        == 404
    )


def test_delete_removes_the_cluster(api):
    client, sandbox = api
    cluster_id = post(client, registration_payload(sandbox)).json()["id"]
    assert client.delete(f"/api/v1/clusters/{cluster_id}/").status_code == 204
    assert client.get(f"/api/v1/clusters/{cluster_id}/").status_code == 404
