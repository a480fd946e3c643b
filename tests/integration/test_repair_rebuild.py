"""Rebuild and rolling restart of provisioned clusters on real servers (local provider, jobs inline): a
replica whose data was damaged behind replication's back is rebuilt on request and matches the primary
again; a rolling restart on request under a writer loses no acknowledged write; with
`rejoin_method: reseed` an old primary holding an unacknowledged transaction is rebuilt after a failover."""

from __future__ import annotations

import os
import signal
import time

import pytest

from clusters.models import Cluster, Event, Job, Server
from clusters.services import monitoring
from tests.integration.provisioning_helpers import connect, job_of, provision, root_connection, tenant_client
from tests.writer import Writer

pytestmark = pytest.mark.django_db(transaction=True)
OWNER = ("owner", "a-long-password-1")


def checksum(address: str) -> dict:
    with connect(address, *OWNER) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) AS n FROM shop.items")
        count = cursor.fetchone()["n"]
        cursor.execute("CHECKSUM TABLE shop.items EXTENDED")
        return {"rows": count, "checksum": cursor.fetchone()["Checksum"]}


def primary_of(cluster: Cluster) -> Server:
    return Server.objects.get(pk=Cluster.objects.get(pk=cluster.pk).primary_id)


def caught_up(cluster: Cluster, address: str, timeout: float = 30) -> None:
    with connect(primary_of(cluster).address, *OWNER) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT @@gtid_binlog_pos AS pos")
        position = cursor.fetchone()["pos"]
    with connect(address, *OWNER) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT MASTER_GTID_WAIT(%s, %s) AS r", (position, timeout))
        assert cursor.fetchone()["r"] == 0, f"{address} did not reach {position}"


def with_data(client, name: str, rows: int = 20000) -> Cluster:
    body, cluster = provision(client, name, replicas=2)
    assert job_of(body).state == "succeeded", job_of(body).result
    with connect(primary_of(cluster).address, *OWNER) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE DATABASE shop")
        cursor.execute("CREATE TABLE shop.items (id INT PRIMARY KEY, body VARCHAR(200))")
        cursor.execute(f"INSERT INTO shop.items SELECT seq, REPEAT(MD5(seq), 6) FROM shop.seq_1_to_{rows}")
    return cluster


def test_a_damaged_replica_is_rebuilt_on_request_and_matches(local_servers):
    client, _ = tenant_client()
    cluster = with_data(client, "damaged")
    primary = primary_of(cluster)
    replica = Server.objects.filter(cluster=cluster).exclude(pk=primary.pk).order_by("id").last()
    caught_up(cluster, replica.address)
    with root_connection(local_servers, cluster, replica.instance) as conn, conn.cursor() as cursor:
        cursor.execute("SET SESSION sql_log_bin=0")  # behind replication's back
        cursor.execute("DELETE FROM shop.items WHERE id <= 500")
    assert checksum(replica.address) != checksum(primary.address)

    refused = client.post(f"/api/v1/clusters/{cluster.id}/servers/{primary.id}/rebuild/")
    assert refused.status_code == 409 and refused.json()["code"] == "primary_refused"
    response = client.post(f"/api/v1/clusters/{cluster.id}/servers/{replica.id}/rebuild/")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.kind == "rebuild" and job.state == "succeeded", (job.result, job.steps)
    assert [s["name"] for s in job.steps] == [
        "choose_source",
        "wipe",
        "clone",
        "start_replica",
        "replicate",
        "semi_sync",
        "finish",
    ]
    # Cloned from the healthy replica, not the primary; same address and server_id.
    other = Server.objects.filter(cluster=cluster).exclude(pk__in=(primary.pk, replica.pk)).get()
    assert job.result["clone_source"] == other.instance and job.result["clone"]["bytes"] > 1_000_000
    rebuilt = Server.objects.get(pk=replica.pk)
    assert (rebuilt.host, rebuilt.port) == (replica.host, replica.port)
    with connect(primary.address, *OWNER) as conn, conn.cursor() as cursor:
        cursor.execute("INSERT INTO shop.items VALUES (100001, 'after the rebuild')")
    caught_up(cluster, replica.address)
    assert checksum(replica.address) == checksum(primary.address)
    assert Event.objects.filter(cluster=cluster, kind="server_rebuilt").exists()


def test_rolling_restart_on_request_under_a_writer_loses_no_acknowledged_write(local_servers):
    client, _ = tenant_client()
    cluster = with_data(client, "restart", rows=100)
    servers = list(Server.objects.filter(cluster=cluster))
    primary_before = primary_of(cluster).pk
    with connect(primary_of(cluster).address, *OWNER) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE DATABASE app")
    writer = Writer([s.address for s in servers], *OWNER, rate=100)
    writer.ensure_table()
    writer.start()
    try:
        writer.wait_for_acks(50)
        response = client.post(f"/api/v1/clusters/{cluster.id}/restart/")
        assert response.status_code == 202, response.content
        writer.wait_for_acks(writer.ack_count() + 50)
    finally:
        writer.stop()
    job = Job.objects.get(pk=response.json()["id"])
    assert job.kind == "rolling_restart" and job.state == "succeeded", job.result
    assert sorted(job.result["restarted"]) == sorted(s.address for s in servers)
    assert primary_of(cluster).pk != primary_before
    time.sleep(0.5)
    for server in servers:
        if server.pk != primary_of(cluster).pk:
            caught_up(cluster, server.address)
        assert not writer.missing_on(server.address), server.address


def test_reseed_rebuilds_an_old_primary_holding_an_unacknowledged_transaction(local_servers):
    client, _ = tenant_client()
    cluster = with_data(client, "reseed", rows=5000)
    patched = client.patch(
        f"/api/v1/clusters/{cluster.id}/",
        {"settings": {"rejoin_method": "reseed", "semi_sync_on_timeout": "wait"}},
        format="json",
    )
    assert patched.status_code == 200, patched.content
    for _ in range(50):  # the first healthy ticks arm automatic failover
        monitoring.tick_cluster(cluster.id)
        if Cluster.objects.get(pk=cluster.pk).failover_armed:
            break
        time.sleep(0.1)
    old = primary_of(cluster)
    pid = local_servers._process(old.instance).pid
    os.kill(pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            monitoring.tick_cluster(cluster.id)
            failover = (
                Job.objects.filter(cluster=cluster, kind="failover")
                .exclude(state__in=("pending", "running"))
                .first()
            )
            if failover:
                break
            time.sleep(0.1)
        assert failover and failover.state == "succeeded", failover and failover.result
    finally:
        os.kill(pid, signal.SIGCONT)
    with root_connection(local_servers, cluster, old.instance) as conn, conn.cursor() as cursor:
        cursor.execute("SET GLOBAL rpl_semi_sync_master_enabled=0")
        cursor.execute("INSERT INTO shop.items VALUES (900001, 'never acknowledged')")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        monitoring.tick_cluster(cluster.id)
        rebuild = (
            Job.objects.filter(cluster=cluster, kind="rebuild")
            .exclude(state__in=("pending", "running"))
            .first()
        )
        if rebuild:
            break
        time.sleep(0.2)
    assert rebuild and rebuild.state == "succeeded", rebuild and (rebuild.result, rebuild.steps)
    rejoin = Job.objects.get(cluster=cluster, kind="rejoin")
    assert rejoin.state == "succeeded" and rejoin.result["rejoin"]["rebuild_job"] == rebuild.id
    new = primary_of(cluster)
    assert new.pk != old.pk
    caught_up(cluster, old.address)
    assert checksum(old.address) == checksum(new.address)
    restored = Server.objects.get(pk=old.pk)
    assert not restored.fenced and not restored.quarantined
