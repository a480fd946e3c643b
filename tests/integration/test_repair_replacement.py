"""Automatic replacement with the local provider (one host; the `hosts` provider's placement on a pool is
another engineer's, behind Provider.replacement_host): a replica killed for longer than
`replace_after_seconds` is replaced by a new replica cloned from a healthy server, the dead one leaves the
inventory, and the cluster is back to 1+2 healthy with the same data; never while the cluster is paused."""

from __future__ import annotations

import time

import pytest

from clusters.models import Cluster, Event, Job, Server
from clusters.services import monitoring
from tests.integration.provisioning_helpers import connect, job_of, provision, tenant_client

pytestmark = pytest.mark.django_db(transaction=True)
OWNER = ("owner", "a-long-password-1")


def checksum(address: str) -> int:
    with connect(address, *OWNER) as conn, conn.cursor() as cursor:
        cursor.execute("CHECKSUM TABLE shop.items EXTENDED")
        return cursor.fetchone()["Checksum"]


def ticks_for(cluster: Cluster, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        monitoring.tick_cluster(cluster.id)
        time.sleep(0.2)


def test_a_replica_down_too_long_is_replaced_never_while_paused(local_servers):
    client, _ = tenant_client()
    body, cluster = provision(client, "replace", replicas=2)
    assert job_of(body).state == "succeeded", job_of(body).result
    primary = Server.objects.get(pk=Cluster.objects.get(pk=cluster.pk).primary_id)
    with connect(primary.address, *OWNER) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE DATABASE shop")
        cursor.execute("CREATE TABLE shop.items (id INT PRIMARY KEY, body VARCHAR(200))")
        cursor.execute("INSERT INTO shop.items SELECT seq, MD5(seq) FROM shop.seq_1_to_5000")
    changed = client.patch(
        f"/api/v1/clusters/{cluster.id}/",
        {"settings": {"replace_after_seconds": 3, "paused": True}},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    dead = Server.objects.filter(cluster=cluster).exclude(pk=primary.pk).order_by("id").first()
    local_servers._process(dead.instance).kill()

    ticks_for(cluster, 6)  # paused: down long enough, yet nothing is replaced
    assert not Job.objects.filter(cluster=cluster, kind="replace_server").exists()

    resumed = client.patch(f"/api/v1/clusters/{cluster.id}/", {"settings": {"paused": False}}, format="json")
    assert resumed.status_code == 200, resumed.content
    deadline = time.monotonic() + 120
    job = None
    while time.monotonic() < deadline and job is None:
        monitoring.tick_cluster(cluster.id)
        job = (
            Job.objects.filter(cluster=cluster, kind="replace_server")
            .exclude(state__in=("pending", "running"))
            .first()
        )
        time.sleep(0.2)
    assert job is not None and job.state == "succeeded", job and (job.result, job.steps)
    assert Job.objects.filter(cluster=cluster, kind="replace_server").count() == 1  # one at a time
    servers = list(Server.objects.filter(cluster=cluster))
    assert len(servers) == 3 and dead.pk not in {s.pk for s in servers}
    assert not local_servers.dir(dead.instance).exists()
    placed = job.result["provision"]["servers"][0]
    new = next(s for s in servers if (s.host, s.port) == (placed["host"], placed["port"]))
    assert Event.objects.filter(cluster=cluster, kind="server_replaced").exists()
    with connect(primary.address, *OWNER) as conn, conn.cursor() as cursor:
        cursor.execute("INSERT INTO shop.items VALUES (9001, 'after')")
        cursor.execute("SELECT @@gtid_binlog_pos AS pos")
        position = cursor.fetchone()["pos"]
    for server in servers:
        if server.pk != primary.pk:
            with connect(server.address, *OWNER) as conn, conn.cursor() as cursor:
                cursor.execute("SELECT MASTER_GTID_WAIT(%s, 30) AS r", (position,))
                assert cursor.fetchone()["r"] == 0
            assert checksum(server.address) == checksum(primary.address)
    # Back to 1+2 healthy.
    ticks_for(cluster, 1)
    topology = monitoring.tick_cluster(cluster.id).topology
    assert sorted(s.state for s in topology.servers) == ["up", "up", "up"]
    assert new.address in {s.address for s in topology.servers}
