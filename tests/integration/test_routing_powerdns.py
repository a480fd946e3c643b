"""A real PowerDNS (HTTP API, sqlite3 backend) answers the new primary for the writer name after a
switchover. The cluster runs in network namespaces so each server has its own address for DNS to give."""

from __future__ import annotations

import pytest

from clusters.routes.models import Route
from clusters.services.monitoring import tick_cluster
from tests.integration.monitoring_helpers import register, tenant_client
from tests.integration.routing_helpers import PowerDns, private_dir, remove_dir
from tests.integration.switchover_helpers import address, restore_sandbox, switchover

pytestmark = pytest.mark.django_db(transaction=True)

ZONE = "db.test."


@pytest.fixture(scope="module")
def powerdns():
    directory = private_dir("pdns-")
    server = PowerDns(directory).start()
    server.create_zone(ZONE)
    yield server
    server.stop()
    remove_dir(directory)


def test_powerdns_answers_the_new_primary_after_a_switchover(sandbox_netns_cluster, powerdns, clean_redis):
    sandbox = sandbox_netns_cluster
    restore_sandbox(sandbox)
    sandbox.sql(sandbox.primary, "CREATE TABLE IF NOT EXISTS app.named (id INT PRIMARY KEY)")
    sandbox.wait_replicating()
    client, created = tenant_client()
    cluster = register(created.team, sandbox)
    tick_cluster(cluster.id)
    old, new = sandbox.primary, next(n for n in sandbox.nodes if n != sandbox.primary)
    made = client.post(
        f"/api/v1/clusters/{cluster.id}/routes/",
        {
            "kind": "powerdns",
            "api_url": powerdns.api_url,
            "api_key": powerdns.api_key,
            "zone": ZONE,
            "write_record": f"write.{ZONE}",
            "read_record": f"read.{ZONE}",
            "ttl": 1,
        },
        format="json",
    )
    assert made.status_code == 201, made.content
    assert made.json()["last_sync"]["ok"] is True, made.json()["last_sync"]
    assert "api_key" not in made.json() and made.json()["secrets_set"] == ["api_key"]
    assert powerdns.query(f"write.{ZONE}") == [sandbox.host(old)]
    assert powerdns.query(f"read.{ZONE}") == sorted(sandbox.host(n) for n in sandbox.nodes if n != old)

    job = switchover(cluster, candidate=address(sandbox, new))
    try:
        assert job.state == "succeeded", job.result
        assert job.result["routes_ok"] is True, job.result["routes"]
        assert powerdns.query(f"write.{ZONE}") == [sandbox.host(new)]
        assert powerdns.query(f"read.{ZONE}") == sorted(sandbox.host(n) for n in sandbox.nodes if n != new)
        status, zone = powerdns.api("GET", f"/api/v1/servers/localhost/zones/{ZONE}")
        ttls = {r["ttl"] for r in zone["rrsets"] if r["name"] == f"write.{ZONE}"}
        assert ttls == {1}
        route = Route.objects.get(pk=made.json()["id"])
        assert route.last_sync_ok is True and route.last_sync_trigger == "job"
    finally:
        restore_sandbox(sandbox)
