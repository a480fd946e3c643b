"""Provisioning through the API with the local provider, on real servers: a 1+2 semi-sync cluster reaches
a healthy, armed topology; the master user has exactly its grants; deletion protection; deprovision
removes processes and data; bad input is a 4xx that creates nothing."""

from __future__ import annotations

import pytest

from clusters.models import Cluster, Job, Server
from clusters.services.monitoring import tick_cluster
from clusters.services.topology_view import topology_payload
from tests.integration.provisioning_helpers import (
    connect,
    job_of,
    provision,
    provision_body,
    root_connection,
    tenant_client,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_provision_a_semi_sync_cluster_of_three_reaches_a_healthy_armed_topology(local_servers):
    client, _ = tenant_client()
    body, cluster = provision(client, "orders", replicas=2)
    assert body["origin"] == "provisioned" and body["job"]["kind"] == "provision"
    job = job_of(body)
    assert job.state == "succeeded", job.result
    assert [s["name"] for s in job.steps] == [
        "place_servers",
        "start_servers",
        "create_accounts",
        "wire_replication",
        "semi_sync_on",
        "register_servers",
        "first_healthy_tick",
    ]
    assert all(s["state"] == "ok" for s in job.steps), job.steps

    cluster = client.get(f"/api/v1/clusters/{cluster.id}/").json()
    assert cluster["failover_mode"] == "automatic" and cluster["failover_armed"] is True
    assert cluster["settings"]["deletion_protection"] is True and cluster["settings"]["semi_sync"] is True
    assert len(cluster["servers"]) == 3
    assert cluster["endpoints"]["writer"] == cluster["primary"]
    assert sorted(cluster["endpoints"]["readers"]) == sorted(
        f"{s['host']}:{s['port']}"
        for s in cluster["servers"]
        if f"{s['host']}:{s['port']}" != cluster["primary"]
    )
    assert "master_user" not in str(cluster) and "a-long-password-1" not in str(cluster)

    tick_cluster(cluster["id"])  # what beat does every second
    topology = topology_payload(cluster["id"])
    assert topology["primary"] == cluster["primary"]
    replicas = [s for s in topology["servers"] if s["role"] == "replica"]
    assert len(replicas) == 2 and all(
        s["replication"]["io_running"] and s["replication"]["sql_running"] for s in replicas
    )

    row = Cluster.objects.get(pk=cluster["id"])
    primary = Server.objects.get(pk=row.primary_id)
    with root_connection(local_servers, row, primary.instance) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT @@read_only AS ro, @@rpl_semi_sync_master_enabled AS ss, "
            "@@rpl_semi_sync_master_wait_point AS wp, @@binlog_expire_logs_seconds AS exp, "
            "@@gtid_binlog_state AS state"
        )
        variables = cursor.fetchone()
        cursor.execute("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'")
        clients = int(cursor.fetchone()["Value"])
    assert variables["ro"] == 0 and variables["ss"] == 1 and variables["wp"] == "AFTER_SYNC"
    assert variables["exp"] == 7 * 24 * 3600
    assert variables["state"] == "" and clients == 2  # no setup GTIDs: accounts were made with sql_log_bin=0

    # The tenant's master user works, writes on the primary, and lacks what would let it write on replicas.
    with connect(primary.address, "owner", "a-long-password-1") as conn, conn.cursor() as cursor:
        cursor.execute("CREATE DATABASE shop")
        cursor.execute("CREATE TABLE shop.t (id INT PRIMARY KEY)")
        cursor.execute("INSERT INTO shop.t VALUES (1)")
        cursor.execute("SHOW GRANTS")
        grants = " ".join(next(iter(r.values())) for r in cursor.fetchall())
    assert "WITH GRANT OPTION" in grants
    for withheld in (
        "SUPER",
        "READ_ONLY ADMIN",
        "BINLOG ADMIN",
        "REPLICATION SLAVE ADMIN",
        "SHUTDOWN",
        "FILE",
    ):
        assert f" {withheld}," not in grants and f", {withheld} " not in grants, (withheld, grants)
    replica = Server.objects.filter(cluster=row).exclude(pk=primary.pk).first()
    with connect(replica.address, "owner", "a-long-password-1") as conn, conn.cursor() as cursor:
        with pytest.raises(Exception, match="read-only|READ-ONLY|1290"):
            cursor.execute("INSERT INTO shop.t VALUES (2)")


def test_delete_is_refused_with_protection_on_and_removes_everything_with_it_off(local_servers):
    client, _ = tenant_client()
    body, cluster = provision(client, "gone", replicas=1)
    assert job_of(body).state == "succeeded"
    instances = [s.instance for s in cluster.servers.all()]
    assert instances and all(local_servers.running(i) for i in instances)

    refused = client.delete(f"/api/v1/clusters/{cluster.id}/")
    assert refused.status_code == 409 and refused.json()["code"] == "deletion_protected"
    assert "deletion_protection" in refused.json()["detail"]
    assert all(local_servers.running(i) for i in instances)

    assert (
        client.patch(
            f"/api/v1/clusters/{cluster.id}/", {"settings": {"deletion_protection": False}}, format="json"
        ).status_code
        == 200
    )
    deleted = client.delete(f"/api/v1/clusters/{cluster.id}/")
    assert deleted.status_code == 202, deleted.content
    assert deleted.json()["job"]["kind"] == "deprovision"
    assert not Cluster.objects.filter(pk=cluster.id).exists()
    assert not any(local_servers.running(i) for i in instances)
    assert not any(local_servers.dir(i).exists() for i in instances)
    assert local_servers.instances() == []


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"provider": "openstack"}, "provision.provider"),
        ({"replicas": -1}, "provision.replicas"),
        ({"replicas": 2, "parameters": {"max_connections": 5}}, "provision.parameters.max_connections"),
        ({"replicas": 2, "parameters": {"secure_file_priv": "/"}}, "provision.parameters.secure_file_priv"),
        ({"replicas": 2, "parameters": {"no_such_setting": 1}}, "provision.parameters.no_such_setting"),
        ({"replicas": 0, "semi_sync": True}, "provision.semi_sync"),
        ({"parameter_group": "missing"}, "provision.parameter_group"),
    ],
)
def test_bad_input_is_a_4xx_with_a_clear_message_and_creates_nothing(local_servers, spec, field):
    client, _ = tenant_client()
    body = {
        "name": "bad",
        "provision": {"master_user": {"user": "owner", "password": "a-long-password-1"}, **spec},
    }
    response = client.post("/api/v1/clusters/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert response.json()["code"] == "invalid" and response.json()["detail"]
    assert not Cluster.objects.exists() and not Job.objects.exists() and local_servers.instances() == []


def test_replicas_over_quota_is_refused_and_the_quota_endpoint_says_what_is_left(local_servers):
    from tenants.models import Tenant

    client, _ = tenant_client()
    tenant = Tenant.objects.get(name="acme")
    tenant.max_servers = 3
    tenant.save()
    response = client.post("/api/v1/clusters/", provision_body("big", replicas=3), format="json")
    assert response.status_code == 403 and response.json()["code"] == "quota_exceeded"
    assert "at most 3 servers" in response.json()["detail"]
    assert not Cluster.objects.exists() and local_servers.instances() == []
    quota = client.get("/api/v1/quota/").json()
    assert quota["servers"] == {"limit": 3, "used": 0, "left": 3}
    assert set(quota) == {"tenant", "clusters", "servers", "memory_mb", "providers"}


def test_a_failing_step_fails_the_job_with_its_reason_and_removes_what_it_started(local_servers, settings):
    client, _ = tenant_client()
    # Every port of the range is taken but one: the second server cannot be placed.
    import socket

    held = []
    for port in range(20101, 20400):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ports in TIME_WAIT from earlier tests too
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
            held.append(s)
        except OSError:
            s.close()
    try:
        body, cluster = provision(client, "nospace", replicas=2)
    finally:
        for s in held:
            s.close()
    job = job_of(body)
    assert job.state == "failed", job.steps
    assert "place_servers" in job.result["detail"] and "no free port" in job.result["detail"]
    assert "removed 1 server" in job.result["abort"]
    assert local_servers.instances() == [] and not Server.objects.filter(cluster=cluster).exists()


def test_stop_and_start_keep_the_data_and_servers_come_back_after_a_host_reboot(local_servers):
    import json
    from io import StringIO

    from django.core.management import call_command

    from clusters.providers.local_provider import LocalProvider
    from tests.integration.provisioning_helpers import TEST_PORTS

    client, _ = tenant_client()
    body, cluster = provision(client, "sleepy", replicas=1)
    assert job_of(body).state == "succeeded"
    cluster.refresh_from_db()
    primary = Server.objects.get(pk=cluster.primary_id)
    with connect(primary.address, "owner", "a-long-password-1") as conn, conn.cursor() as cursor:
        cursor.execute("CREATE DATABASE kept")
    instances = [s.instance for s in cluster.servers.all()]

    stopped = client.post(f"/api/v1/clusters/{cluster.id}/stop/")
    assert stopped.status_code == 202 and Job.objects.get(pk=stopped.json()["id"]).state == "succeeded"
    assert not any(local_servers.running(i) for i in instances)
    assert all((local_servers.dir(i) / "data").is_dir() for i in instances)
    assert Cluster.objects.get(pk=cluster.id).failover_armed is False

    started = client.post(f"/api/v1/clusters/{cluster.id}/start/")
    job = Job.objects.get(pk=started.json()["id"])
    assert started.status_code == 202 and job.state == "succeeded", job.result
    assert Cluster.objects.get(pk=cluster.id).failover_armed is True
    with connect(primary.address, "owner", "a-long-password-1") as conn, conn.cursor() as cursor:
        cursor.execute("SHOW DATABASES LIKE 'kept'")
        assert cursor.fetchall()

    # A host reboot: every server gone at once; `manage.py local_servers start` (the boot unit) brings
    # them back, and a provider object that never started them (another worker) finds them running.
    for instance in instances:
        local_servers._process(instance).kill()
    out = StringIO()
    call_command("local_servers", "start", stdout=out)
    assert sorted(json.loads(out.getvalue())["started"]) == sorted(instances)
    other_worker = LocalProvider(local_servers.root, TEST_PORTS)
    password = __import__("controlplane.crypto", fromlist=["decrypt_json"]).decrypt_json(
        cluster.provision_secrets_encrypted
    )["root"]
    import time

    for instance in instances:
        deadline = time.monotonic() + 60
        while not other_worker.running(instance):  # its pid file names the new process once it is up
            assert time.monotonic() < deadline, f"{instance} did not come back"
            time.sleep(0.1)
        other_worker._process(instance).wait_ready(password, 60)
    with other_worker.root_connection(primary.instance, password) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT @@read_only AS ro")
        assert cursor.fetchone()["ro"] == 1  # back read-only: dbpilot decides who takes writes


def test_a_cluster_without_servers_yet_is_not_ticked(local_servers):
    from clusters.services.monitoring import due_shards

    client, _ = tenant_client()
    tenant = __import__("tenants.models", fromlist=["Tenant"]).Tenant.objects.get(name="acme")
    empty = Cluster.objects.create(tenant=tenant, name="empty", origin=Cluster.Origin.PROVISIONED)
    body, cluster = provision(client, "full", replicas=0)
    assert job_of(body).state == "succeeded"
    due = [cid for shard in due_shards(25) for cid in shard]
    assert cluster.id in due and empty.id not in due
