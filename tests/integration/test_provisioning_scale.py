"""Scaling and reconfiguring provisioned clusters on real servers: a replica added to a cluster holding data
(cloned with mariadb-backup: identical row counts and checksums, replicating) and one removed; the primary
refused; a parameter group change applied live, and a static one by a rolling restart under a writer
with no acknowledged write lost."""

from __future__ import annotations

import time

import pytest

from clusters.models import Cluster, Job, Server
from tests.integration.provisioning_helpers import connect, job_of, provision, root_connection, tenant_client
from tests.writer import Writer

pytestmark = pytest.mark.django_db(transaction=True)
OWNER = ("owner", "a-long-password-1")


def table_checksums(address: str) -> dict:
    with connect(address, *OWNER) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) AS n FROM shop.items")
        count = cursor.fetchone()["n"]
        cursor.execute("CHECKSUM TABLE shop.items EXTENDED")
        return {"rows": count, "checksum": cursor.fetchone()["Checksum"]}


def wait_caught_up(cluster: Cluster, address: str, timeout: float = 30) -> None:
    primary = Server.objects.get(pk=Cluster.objects.get(pk=cluster.pk).primary_id)
    with connect(primary.address, *OWNER) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT @@gtid_binlog_pos AS pos")
        position = cursor.fetchone()["pos"]
    with connect(address, *OWNER) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT MASTER_GTID_WAIT(%s, %s) AS r", (position, timeout))
        assert cursor.fetchone()["r"] == 0


def test_add_a_replica_to_a_cluster_holding_data_then_remove_one(local_servers):
    client, _ = tenant_client()
    body, cluster = provision(client, "grow", replicas=1)
    assert job_of(body).state == "succeeded"
    primary = Server.objects.get(pk=Cluster.objects.get(pk=cluster.pk).primary_id)
    with connect(primary.address, *OWNER) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE DATABASE shop")
        cursor.execute("CREATE TABLE shop.items (id INT PRIMARY KEY, body VARCHAR(200))")
        cursor.execute("INSERT INTO shop.items SELECT seq, REPEAT(MD5(seq), 6) FROM shop.seq_1_to_30000")
    expected = table_checksums(primary.address)

    response = client.post(f"/api/v1/clusters/{cluster.id}/servers/", {}, format="json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.kind == "add_replica" and job.state == "succeeded", job.result
    assert [s["name"] for s in job.steps] == [
        "place_replica",
        "clone",
        "start_replica",
        "replicate",
        "semi_sync",
        "register_server",
    ]
    assert job.result["clone"]["bytes"] > 1_000_000 and job.result["clone"]["mb_per_second"] > 0
    servers = list(Server.objects.filter(cluster=cluster).order_by("id"))
    assert len(servers) == 3
    new = servers[-1]
    # Cloned from the replica, not from the primary.
    assert job.result["clone_source"] == servers[1].instance
    with connect(primary.address, *OWNER) as conn, conn.cursor() as cursor:
        cursor.execute("INSERT INTO shop.items VALUES (30001, 'after the clone')")
    wait_caught_up(cluster, new.address)
    expected_after = table_checksums(primary.address)
    assert expected_after["rows"] == expected["rows"] + 1
    assert table_checksums(new.address) == expected_after
    with root_connection(local_servers, cluster, new.instance) as conn, conn.cursor() as cursor:
        cursor.execute("SHOW SLAVE STATUS")
        status = cursor.fetchone()
        cursor.execute("SELECT @@read_only AS ro, @@server_id AS sid")
        variables = cursor.fetchone()
    assert status["Master_Port"] == primary.port and status["Slave_IO_Running"] == "Yes"
    assert status["Slave_SQL_Running"] == "Yes" and status["Using_Gtid"] == "Slave_Pos"
    assert variables["ro"] == 1 and variables["sid"] == 3
    assert (
        client.get(f"/api/v1/clusters/{cluster.id}/").json()["endpoints"]["readers"].count(new.address) == 1
    )

    refused = client.delete(f"/api/v1/clusters/{cluster.id}/servers/{primary.id}/")
    assert refused.status_code == 409 and refused.json()["code"] == "primary_refused"
    assert "switch over to another server first" in refused.json()["detail"]

    removed = client.delete(f"/api/v1/clusters/{cluster.id}/servers/{new.id}/")
    assert removed.status_code == 202, removed.content
    assert Job.objects.get(pk=removed.json()["id"]).state == "succeeded"
    assert not Server.objects.filter(pk=new.id).exists()
    assert not local_servers.running(new.instance) and not local_servers.dir(new.instance).exists()
    assert len(Server.objects.filter(cluster=cluster)) == 2


def test_parameter_group_live_change_and_static_change_by_rolling_restart_under_a_writer(local_servers):
    client, _ = tenant_client()
    created = client.post(
        "/api/v1/parameter-groups/", {"name": "oltp", "parameters": {"max_connections": 300}}, format="json"
    )
    assert created.status_code == 201, created.content
    group_id = created.json()["id"]
    body, cluster = provision(client, "tuned", replicas=2, parameter_group="oltp")
    assert job_of(body).state == "succeeded", job_of(body).result
    servers = list(Server.objects.filter(cluster=cluster))

    def variable(server, name):
        with root_connection(local_servers, cluster, server.instance) as conn, conn.cursor() as cursor:
            cursor.execute(f"SELECT @@{name} AS v")
            return cursor.fetchone()["v"]

    assert all(variable(s, "max_connections") == 300 for s in servers)

    bad = client.patch(
        f"/api/v1/parameter-groups/{group_id}/", {"parameters": {"max_connections": 5}}, format="json"
    )
    assert bad.status_code == 400 and "at least 10" in bad.json()["detail"]
    dangerous = client.patch(
        f"/api/v1/parameter-groups/{group_id}/", {"parameters": {"plugin_dir": "/tmp"}}, format="json"
    )
    assert dangerous.status_code == 400 and "loads code" in dangerous.json()["detail"]

    # A dynamic setting: live on every server, no restart, the primary unchanged.
    primary_before = Cluster.objects.get(pk=cluster.pk).primary_id
    live = client.patch(
        f"/api/v1/parameter-groups/{group_id}/", {"parameters": {"max_connections": 350}}, format="json"
    )
    assert live.status_code == 200, live.content
    job = Job.objects.get(pk=live.json()["jobs"][0]["id"])
    assert job.state == "succeeded", job.result
    states = {s["name"]: s["state"] for s in job.steps}
    assert states["apply_live"] == "ok" and states["restart_replicas"] == "skipped"
    assert all(variable(s, "max_connections") == 350 for s in servers)
    assert Cluster.objects.get(pk=cluster.pk).primary_id == primary_before

    # A static setting, under a writer: replicas restarted, a switchover, then the old primary.
    primary = Server.objects.get(pk=primary_before)
    with connect(primary.address, *OWNER) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE DATABASE app")
    writer = Writer([s.address for s in servers], *OWNER, rate=100)
    writer.ensure_table()
    writer.start()
    try:
        writer.wait_for_acks(50)
        static = client.patch(
            f"/api/v1/parameter-groups/{group_id}/",
            {"parameters": {"max_connections": 350, "transaction_isolation": "READ-COMMITTED"}},
            format="json",
        )
        assert static.status_code == 200, static.content
        writer.wait_for_acks(writer.ack_count() + 50)
    finally:
        writer.stop()
    job = Job.objects.get(pk=static.json()["jobs"][0]["id"])
    assert job.state == "succeeded", (job.result, [j.result for j in Job.objects.filter(kind="switchover")])
    states = {s["name"]: s["state"] for s in job.steps}
    assert (
        states["restart_replicas"] == "ok"
        and states["switchover"] == "ok"
        and states["restart_old_primary"] == "ok"
    )
    new_primary = Cluster.objects.get(pk=cluster.pk).primary_id
    assert new_primary != primary_before
    assert all(variable(s, "tx_isolation") == "READ-COMMITTED" for s in servers)
    assert "pending_restart" not in Cluster.objects.get(pk=cluster.pk).provision
    time.sleep(0.5)
    for server in servers:
        wait_caught_up(cluster, server.address) if server.pk != new_primary else None
        assert not writer.missing_on(server.address), server.address
