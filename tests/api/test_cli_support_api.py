"""What the CLI needs from the API: a cluster by name (`?name=`, `?tenant=`), and a job's progress on
`ws /ws/jobs/{id}/` (its snapshot, then that job's messages and no other's)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

pytestmark = pytest.mark.api


def test_clusters_filter_by_name_within_what_the_caller_sees(world):
    client = world.client("token:admin")
    found = client.get("/api/v1/clusters/", {"name": world.cluster_x.name}).json()["results"]
    assert [c["id"] for c in found] == [world.cluster_x.id]
    assert client.get("/api/v1/clusters/", {"name": "no-such-cluster"}).json()["results"] == []
    # Another tenant's cluster is not found by name (only a cluster of the caller's own tenant may share it).
    same_name = client.get("/api/v1/clusters/", {"name": world.cluster_z.name}).json()["results"]
    assert world.cluster_z.id not in [c["id"] for c in same_name]
    assert {c["tenant"] for c in same_name} <= {world.tenant_a.name}
    by_tenant = client.get(
        "/api/v1/clusters/", {"name": world.cluster_x.name, "tenant": world.tenant_a.name}
    ).json()
    assert [c["id"] for c in by_tenant["results"]] == [world.cluster_x.id]
    assert client.get("/api/v1/clusters/", {"tenant": world.tenant_b.name}).json()["results"] == []


def test_the_schema_documents_the_filters_and_the_job_socket_route_exists(world):
    schema = world.client("alice").get("/api/schema/", {"format": "json"}).json()
    params = {p["name"] for p in schema["paths"]["/api/v1/clusters/"]["get"]["parameters"]}
    assert {"name", "tenant"} <= params


def test_the_job_socket_sends_the_job_then_only_its_own_messages(world, websocket_in_test_transaction):
    from clusters.events import cluster_group, job_payload
    from controlplane.asgi import application

    job = world.job_x
    other = {**job_payload(job), "id": job.id + 1000}

    async def scenario():
        communicator = WebsocketCommunicator(
            application, f"/ws/jobs/{job.id}/", headers=world.ws_headers("token:read")
        )
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        first = await communicator.receive_json_from(timeout=5)
        layer = get_channel_layer()
        group = cluster_group(job.cluster_id)
        for payload in (
            {"type": "job", "cluster_id": job.cluster_id, "job": other},
            {"type": "event", "cluster_id": job.cluster_id, "event": {"id": 1}},
            {"type": "job", "cluster_id": job.cluster_id, "job": {**job_payload(job), "state": "running"}},
        ):
            await layer.group_send(
                group, {"type": "cluster.message", "cluster_id": job.cluster_id, "payload": payload}
            )
        second = await communicator.receive_json_from(timeout=5)
        nothing_else = await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        return first, second, nothing_else

    first, second, nothing_else = async_to_sync(scenario)()
    assert first["type"] == "job" and first["job"]["id"] == job.id and first["job"]["state"] == "succeeded"
    assert second["job"]["id"] == job.id and second["job"]["state"] == "running"
    assert nothing_else


def test_the_job_socket_of_another_tenants_job_closes_as_not_found(world, websocket_in_test_transaction):
    from controlplane.asgi import application

    async def scenario():
        communicator = WebsocketCommunicator(
            application, f"/ws/jobs/{world.job_x.id}/", headers=world.ws_headers("token:tenant_b")
        )
        connected, _ = await communicator.connect(timeout=5)
        return connected, await communicator.receive_output(timeout=3)

    connected, closing = async_to_sync(scenario)()
    # Accepted, then closed with the documented code (docs/security.md), like the cluster socket.
    assert connected and closing == {"type": "websocket.close", "code": 4404}
