"""The provisioning API without servers: the cluster object's endpoints (with a route's client-facing
addresses), deletion protection on a registered cluster, parameter groups, and the quota endpoint."""

from __future__ import annotations

import pytest

from clusters.models import Cluster, ParameterGroup
from clusters.routes.models import Route

pytestmark = pytest.mark.django_db


def test_endpoints_are_the_servers_or_a_routes_client_addresses(world):
    client = world.client("alice")
    cluster = world.cluster_x
    servers = list(cluster.servers.all())
    Cluster.objects.filter(pk=cluster.pk).update(primary=servers[0])
    body = client.get(f"/api/v1/clusters/{cluster.id}/").json()
    assert body["endpoints"] == {"writer": servers[0].address, "readers": [s.address for s in servers[1:]]}

    created = client.post(
        f"/api/v1/clusters/{cluster.id}/routes/",
        {
            "kind": "haproxy",
            "runtime_api": "tcp://127.0.0.1:9",
            "write_backend": "db_write",
            "client_address": "db.example.internal:3306",
            "client_read_address": "db.example.internal:3307",
        },
        format="json",
    )
    assert created.status_code in (201, 202), created.content
    body = client.get(f"/api/v1/clusters/{cluster.id}/").json()
    assert body["endpoints"] == {
        "writer": "db.example.internal:3306",
        "readers": ["db.example.internal:3307"],
    }

    bad = client.post(
        f"/api/v1/clusters/{cluster.id}/routes/",
        {
            "kind": "haproxy",
            "name": "bad",
            "runtime_api": "tcp://127.0.0.1:9",
            "write_backend": "db_write",
            "client_address": "no port here",
        },
        format="json",
    )
    assert bad.status_code == 400 and "client_address" in bad.json()["detail"]
    assert Route.objects.filter(cluster=cluster).count() == 1


def test_a_registered_cluster_with_deletion_protection_is_refused_then_forgotten(world):
    client = world.client("alice")
    cluster = world.cluster_y
    assert client.get(f"/api/v1/clusters/{cluster.id}/").json()["settings"]["deletion_protection"] is False
    client.patch(
        f"/api/v1/clusters/{cluster.id}/", {"settings": {"deletion_protection": True}}, format="json"
    )
    refused = client.delete(f"/api/v1/clusters/{cluster.id}/")
    assert refused.status_code == 409 and refused.json()["code"] == "deletion_protected"
    client.patch(
        f"/api/v1/clusters/{cluster.id}/", {"settings": {"deletion_protection": False}}, format="json"
    )
    assert client.delete(f"/api/v1/clusters/{cluster.id}/").status_code == 204
    assert not Cluster.objects.filter(pk=cluster.id).exists()


def test_stop_start_and_scale_are_for_provisioned_clusters_only(world):
    client = world.client("alice")
    cluster = world.cluster_y
    for path in ("stop/", "start/", "servers/"):
        response = client.post(f"/api/v1/clusters/{cluster.id}/{path}", {}, format="json")
        assert response.status_code == 409 and response.json()["code"] == "not_provisioned", path


def test_parameter_groups_validate_and_stay_in_their_tenant(world):
    alice, charlie = world.client("alice"), world.client("charlie")
    created = alice.post(
        "/api/v1/parameter-groups/",
        {"name": "oltp", "parameters": {"max_connections": 500, "innodb_buffer_pool_size": "1G"}},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["parameters"] == {"max_connections": "500", "innodb_buffer_pool_size": str(1 << 30)}
    for parameters, message in (
        ({"init_file": "/tmp/x"}, "as root"),
        ({"max_connections": 3}, "at least 10"),
        ({"max_connections": 100, "bogus": 1}, "unknown"),
    ):
        bad = alice.post(
            "/api/v1/parameter-groups/", {"name": "bad", "parameters": parameters}, format="json"
        )
        assert bad.status_code == 400 and message in bad.json()["detail"], bad.json()
    assert not ParameterGroup.objects.filter(name="bad").exists()
    duplicate = alice.post("/api/v1/parameter-groups/", {"name": "oltp", "parameters": {}}, format="json")
    assert duplicate.status_code == 400 and "already exists" in duplicate.json()["detail"]
    group = created.json()["id"]
    assert charlie.get(f"/api/v1/parameter-groups/{group}/").status_code == 404
    assert charlie.get("/api/v1/parameter-groups/").json() == []
    # A provision request naming another tenant's group does not find it.
    response = charlie.post(
        "/api/v1/clusters/", {"name": "x", "provision": {"parameter_group": "oltp"}}, format="json"
    )
    assert response.status_code == 400 and "provision.parameter_group" in response.json()["errors"]


def test_the_quota_endpoint_counts_clusters_servers_and_memory(world):
    quota = world.client("alice").get("/api/v1/quota/").json()
    tenant = world.cluster_x.tenant
    assert quota["tenant"] == tenant.name
    assert quota["clusters"]["used"] == Cluster.objects.filter(tenant=tenant).count()
    assert quota["clusters"]["left"] == tenant.max_clusters - quota["clusters"]["used"]
    assert quota["memory_mb"] == {"limit": tenant.max_memory_mb, "used": 0, "left": tenant.max_memory_mb}
    assert quota["providers"] == ["local"]  # what `provision.provider` may name here (DBPILOT_PROVIDERS)


def test_platform_operators_register_database_hosts_with_a_clear_message_for_bad_input(world):
    root, alice = world.client("root"), world.client("alice")
    body = {
        "name": "db1",
        "address": "127.0.0.1",
        "zone": "zone-a",
        "capacity": {"instances": 4, "memory_mb": 8192},
    }
    assert alice.post("/api/v1/platform/hosts/", body, format="json").status_code == 403
    created = root.post("/api/v1/platform/hosts/", body, format="json")
    assert created.status_code == 201, created.content
    assert (
        created.json()["capacity"] == {"instances": 4, "memory_mb": 8192} and created.json()["down"] is False
    )
    again = root.post("/api/v1/platform/hosts/", body, format="json")
    assert again.status_code == 400 and "already registered" in again.json()["detail"]
    outside = root.post(
        "/api/v1/platform/hosts/", {**body, "name": "db2", "address": "192.0.2.10"}, format="json"
    )
    assert outside.status_code == 400 and "address" in outside.json()["errors"]
    bad_zone = root.post("/api/v1/platform/hosts/", {**body, "name": "db3", "zone": "Zone A"}, format="json")
    assert bad_zone.status_code == 400 and "zone" in bad_zone.json()["errors"]
    assert [h["name"] for h in root.get("/api/v1/platform/hosts/").json()] == ["db1"]


def test_a_registered_cluster_has_no_provision_block_and_no_parameter_group(world):
    client = world.client("alice")
    cluster = world.cluster_y
    assert client.get(f"/api/v1/clusters/{cluster.id}/").json()["provision"] is None
    alice_group = client.post("/api/v1/parameter-groups/", {"name": "g1", "parameters": {}}, format="json")
    assert alice_group.status_code == 201
    refused = client.post(
        f"/api/v1/clusters/{cluster.id}/parameter-group/", {"parameter_group": "g1"}, format="json"
    )
    assert refused.status_code == 409 and refused.json()["code"] == "not_provisioned"
    missing = client.post(f"/api/v1/clusters/{cluster.id}/parameter-group/", {}, format="json")
    assert missing.status_code == 400 and "parameter_group" in missing.json()["errors"]
    unknown = client.post(
        f"/api/v1/clusters/{cluster.id}/parameter-group/", {"parameter_group": "nope"}, format="json"
    )
    assert unknown.status_code == 400 and "no parameter group named 'nope'" in unknown.json()["detail"]
    other = world.client("charlie").post(
        f"/api/v1/clusters/{cluster.id}/parameter-group/", {"parameter_group": None}, format="json"
    )
    assert other.status_code == 404


def test_a_provisioned_cluster_shows_its_provision_block_and_takes_another_group(world, settings):
    settings.DBPILOT_FAILOVER_RUNNER = "queue"  # the job is created, never run (no servers here)
    client = world.client("alice")
    cluster = world.cluster_x
    oltp = ParameterGroup.objects.create(
        tenant=cluster.tenant, name="oltp", parameters={"max_connections": "500"}
    )
    Cluster.objects.filter(pk=cluster.pk).update(
        origin=Cluster.Origin.PROVISIONED,
        parameter_group=oltp,
        provision={"provider": "local", "replicas": 2, "semi_sync": True, "memory_mb": 256, "parameters": {}},
    )
    shown = client.get(f"/api/v1/clusters/{cluster.id}/").json()["provision"]
    assert shown == {
        "provider": "local",
        "semi_sync": True,
        "size": {"memory_mb": 256},
        "parameter_group": "oltp",
        "parameters": {},
        "pending_restart": {},
    }
    # The same settings under another name: nothing to apply (200, no job).
    ParameterGroup.objects.create(tenant=cluster.tenant, name="same", parameters={"max_connections": "500"})
    same = client.post(
        f"/api/v1/clusters/{cluster.id}/parameter-group/", {"parameter_group": "same"}, format="json"
    )
    assert same.status_code == 200 and same.json()["provision"]["parameter_group"] == "same"
    # A static setting changes: an apply_parameters job that will restart, the setting pending restart.
    ParameterGroup.objects.create(
        tenant=cluster.tenant,
        name="big",
        parameters={"max_connections": "900", "performance_schema": "ON"},
    )
    changed = client.post(
        f"/api/v1/clusters/{cluster.id}/parameter-group/", {"parameter_group": "big"}, format="json"
    )
    assert changed.status_code == 202, changed.content
    body = changed.json()
    assert body["job"]["kind"] == "apply_parameters"
    assert body["provision"]["pending_restart"] == {"performance_schema": "ON"}
    job = cluster.jobs.get(pk=body["job"]["id"])
    assert job.params["live"] == {"max_connections": "900"} and job.params["restart"] is True


def test_platform_operators_remove_database_hosts(world):
    root, alice = world.client("root"), world.client("alice")
    body = {
        "name": "db9",
        "address": "127.0.0.1",
        "zone": "zone-a",
        "capacity": {"instances": 2, "memory_mb": 4096},
    }
    host = root.post("/api/v1/platform/hosts/", body, format="json").json()
    assert alice.delete(f"/api/v1/platform/hosts/{host['id']}/").status_code == 403
    assert root.delete(f"/api/v1/platform/hosts/{host['id']}/").status_code == 204
    assert root.get("/api/v1/platform/hosts/").json() == []
    again = root.delete(f"/api/v1/platform/hosts/{host['id']}/")
    assert again.status_code == 404 and f"no database host with id {host['id']}" in again.json()["detail"]


def test_a_host_that_still_runs_servers_is_not_removed(world):
    from clusters.hosts import HostedInstance

    root = world.client("root")
    body = {
        "name": "db8",
        "address": "127.0.0.1",
        "zone": "zone-a",
        "capacity": {"instances": 2, "memory_mb": 4096},
    }
    host = root.post("/api/v1/platform/hosts/", body, format="json").json()
    HostedInstance.objects.create(instance="c1-s1", host_id=host["id"], group="c1", memory_mb=512)
    refused = root.delete(f"/api/v1/platform/hosts/{host['id']}/")
    assert refused.status_code == 409
    assert "still runs 1 server" in refused.json()["detail"]
    assert [h["name"] for h in root.get("/api/v1/platform/hosts/").json()] == ["db8"]
