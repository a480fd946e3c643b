"""The `hosts` provider on a pool of database hosts that are network namespaces of this machine, each with
its own dbpilot agent (a Celery worker of host.<name> with only the broker, its name and its key): a 1+2
cluster gets one server per host with zones spread; a replica added to a cluster holding data is cloned
from one host's agent straight to another's; a host whose agent is killed is marked down and nothing is
placed there; a full pool refuses a cluster up front; a host killed with its primary (agent and mariadbd)
fails over as usual, shows down, and once down past replace_after_seconds its server is replaced on the
fourth host."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from clusters.credentials import admin_credentials
from clusters.models import Cluster, DatabaseHost, Event, HostedInstance, Job, Server
from clusters.services.accounts import check_cluster_accounts
from clusters.services.hosts import check_hosts
from tests.integration.failover_helpers import finished_failover, tick, tick_until
from tests.integration.host_pool_helpers import HostPool, operator_client
from tests.integration.provisioning_helpers import connect, job_of, provision_body, tenant_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def host_pool(settings, clean_redis):
    settings.DBPILOT_FAILOVER_RUNNER = "inline"
    settings.DBPILOT_PROVIDERS = ["local", "hosts"]
    settings.DBPILOT_AGENT_DOWN_SECONDS = 1.0
    pool = HostPool.create(["zone-a", "zone-b", "zone-c", "zone-a"])
    try:
        pool.register(operator_client(), capacity=2)
        pool.start_agents()
        yield pool
    finally:
        pool.destroy()


def hosts_of(cluster_id: int) -> dict[str, str]:
    """{server address: host name} of the cluster's servers."""
    placed = {h.instance: h.host for h in HostedInstance.objects.select_related("host")}
    return {s.address: placed[s.instance].name for s in Server.objects.filter(cluster_id=cluster_id)}


def provision_hosts(client, name: str, replicas: int):
    return client.post("/api/v1/clusters/", provision_body(name, replicas, provider="hosts"), format="json")


def test_a_cluster_on_the_host_pool_is_spread_cloned_between_agents_and_kept_off_a_down_host(host_pool):
    h1, h2, h3, h4 = host_pool.hosts
    # The agents got the broker and their key, nothing of the control plane's secrets.
    for host in host_pool.hosts:
        environ = Path(f"/proc/{host.agent.pid}/environ").read_bytes().split(b"\0")
        names = {item.split(b"=", 1)[0] for item in environ if item}
        assert b"DATABASE_URL" not in names and b"DBPILOT_FERNET_KEYS" not in names
        assert b"DBPILOT_AGENT_KEY" in names

    client, _ = tenant_client()
    response = provision_hosts(client, "orders", 2)
    assert response.status_code == 202, response.content
    job = job_of(response.json())
    job.refresh_from_db()
    assert job.state == "succeeded", (job.result, job.steps)
    cluster_id = response.json()["id"]
    placed = hosts_of(cluster_id)
    assert len(placed) == 3 and len(set(placed.values())) == 3  # one server per host
    zones = {DatabaseHost.objects.get(name=n).zone for n in placed.values()}
    assert zones == {"zone-a", "zone-b", "zone-c"}  # spread: h4 (zone-a again) is left out
    assert h4.name not in placed.values()
    cluster = client.get(f"/api/v1/clusters/{cluster_id}/").json()
    assert cluster["failover_armed"] is True
    for address in placed:
        assert address.startswith("10.231.")

    # dbpilot's accounts, changed by the master user, are found and recreated through the agents.
    row = Cluster.objects.get(pk=cluster_id)
    assert check_cluster_accounts(row) == {}
    with connect(cluster["primary"], "owner", "a-long-password-1") as conn, conn.cursor() as cursor:
        cursor.execute("ALTER USER %s@'%%' ACCOUNT LOCK", (admin_credentials(row).user,))
    repaired = check_cluster_accounts(row)
    assert sorted(repaired) == sorted(placed) and "is locked" in str(repaired)
    assert check_cluster_accounts(row) == {}

    # Data, then a replica: placed on the one host without a server of this cluster, cloned agent to agent.
    with connect(cluster["primary"], "owner", "a-long-password-1") as conn, conn.cursor() as cursor:
        cursor.execute("CREATE DATABASE shop")
        cursor.execute("CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(64))")
        cursor.executemany("INSERT INTO shop.t VALUES (%s, %s)", [(i, f"row {i}") for i in range(500)])
        cursor.execute("CHECKSUM TABLE shop.t")
        checksum = cursor.fetchone()["Checksum"]
    added = client.post(f"/api/v1/clusters/{cluster_id}/servers/", {}, format="json")
    assert added.status_code == 202, added.content
    job = Job.objects.get(pk=added.json()["id"])
    assert job.state == "succeeded", (job.result, job.steps)
    assert job.result["clone"]["bytes"] > 0
    placed = hosts_of(cluster_id)
    new_address = next(a for a, name in placed.items() if name == h4.name)
    with connect(new_address, "owner", "a-long-password-1") as conn, conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) AS n FROM shop.t")
        assert cursor.fetchone()["n"] == 500
        cursor.execute("CHECKSUM TABLE shop.t")
        assert cursor.fetchone()["Checksum"] == checksum
        cursor.execute("SHOW SLAVE STATUS")
        status = cursor.fetchone()
    assert status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes"
    # The bytes went between the agents: nothing of the stream was kept on the control plane's side.
    assert not list(Path(host_pool.root).glob("h*/clones/*/status.json"))

    # A named host must exist.
    unknown = client.post(f"/api/v1/clusters/{cluster_id}/servers/", {"host": "nowhere"}, format="json")
    assert unknown.status_code == 400 and "nowhere" in str(unknown.json())

    # h4's agent dies: the ping marks the host down (API shows it) and nothing new is placed there.
    host_pool.kill_agent(h4)
    deadline = time.monotonic() + 20
    while not DatabaseHost.objects.get(name=h4.name).down:
        assert time.monotonic() < deadline, "h4 was not marked down"
        check_hosts(wait=1.0)
        time.sleep(0.3)
    listed = {h["name"]: h for h in operator_client().get("/api/v1/platform/hosts/").json()}
    assert listed[h4.name]["down"] is True and listed[h1.name]["down"] is False
    assert listed[h1.name]["instances"] == 1

    response = provision_hosts(client, "billing", 2)  # h1-h3 have room for one more each
    assert response.status_code == 202, response.content
    job = job_of(response.json())
    job.refresh_from_db()
    assert job.state == "succeeded", (job.result, job.steps)
    assert set(hosts_of(response.json()["id"]).values()) == {h1.name, h2.name, h3.name}
    # Its replica would need h4, which is down: the job fails with that reason and leaves nothing.
    added = client.post(f"/api/v1/clusters/{response.json()['id']}/servers/", {}, format="json")
    assert added.status_code == 202, added.content
    job = Job.objects.get(pk=added.json()["id"])
    assert job.state == "failed" and "down" in str(job.steps), job.steps
    assert HostedInstance.objects.filter(host__name=h4.name).count() == 1  # only orders' replica

    # The pool is full (h1-h3 at capacity, h4 down): a new cluster is refused up front, nothing created.
    refused = provision_hosts(client, "full", 0)
    assert refused.status_code == 400, refused.content
    assert "the host pool has no room for this cluster" in str(refused.json())
    assert not Cluster.objects.filter(name="full").exists()

    # Deleting billing removes its servers on their hosts (processes and data) and frees their room.
    billing = response.json()["id"]
    instances = list(HostedInstance.objects.filter(group=Cluster.objects.get(pk=billing).provision["key"]))
    assert len(instances) == 3
    client.patch(f"/api/v1/clusters/{billing}/", {"settings": {"deletion_protection": False}}, format="json")
    deleted = client.delete(f"/api/v1/clusters/{billing}/")
    assert deleted.status_code == 202, deleted.content
    job = Job.objects.filter(kind="deprovision").first()
    assert job is None or job.state == "succeeded"  # the job goes with the cluster once it succeeded
    assert not Cluster.objects.filter(pk=billing).exists()
    assert not HostedInstance.objects.filter(instance__in=[i.instance for i in instances]).exists()
    for hosted in instances:
        assert not list(Path(host_pool.root).glob(f"h*/servers/{hosted.instance}"))
    again = provision_hosts(client, "again", 0)  # the room is back
    assert again.status_code == 202, again.content
    assert job_of(again.json()).state == "succeeded"


def test_a_host_killed_with_its_primary_fails_over_and_shows_down(host_pool):
    client, _ = tenant_client()
    response = provision_hosts(client, "ledger", 2)
    assert response.status_code == 202, response.content
    job = job_of(response.json())
    job.refresh_from_db()
    assert job.state == "succeeded", (job.result, job.steps)
    cluster = Cluster.objects.get(pk=response.json()["id"])
    old_primary = cluster.primary.address
    victim_name = hosts_of(cluster.pk)[old_primary]
    victim = next(h for h in host_pool.hosts if h.name == victim_name)
    with connect(old_primary, "owner", "a-long-password-1") as conn, conn.cursor() as cursor:
        cursor.execute("CREATE DATABASE app")
        cursor.execute("CREATE TABLE app.t (id INT PRIMARY KEY)")
        cursor.execute("INSERT INTO app.t VALUES (1), (2), (3)")  # acknowledged (semi-sync)

    for _ in range(5):  # monitoring has watched the healthy cluster, as beat does every second
        tick(cluster)
        time.sleep(0.3)
    host_pool.kill_host(victim)  # its agent and its mariadbd: every process of the namespace

    def failed_over():
        cluster.refresh_from_db()
        return cluster.primary_id and cluster.primary.address != old_primary and finished_failover(cluster)

    tick_until(cluster, failed_over, timeout=60, message="a failover away from the killed host")
    job = finished_failover(cluster)
    assert job.state == "succeeded", (job.result, job.steps)
    new_primary = cluster.primary.address
    assert hosts_of(cluster.pk)[new_primary] != victim.name
    with connect(new_primary, "owner", "a-long-password-1") as conn, conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) AS n FROM app.t")
        assert cursor.fetchone()["n"] == 3  # nothing acknowledged was lost
        cursor.execute("SELECT @@read_only AS ro")
        assert cursor.fetchone()["ro"] == 0

    deadline = time.monotonic() + 20
    while not DatabaseHost.objects.get(name=victim.name).down:
        assert time.monotonic() < deadline, f"{victim.name} was not marked down"
        check_hosts(wait=1.0)
        time.sleep(0.3)
    listed = {h["name"]: h["down"] for h in operator_client().get("/api/v1/platform/hosts/").json()}
    assert listed[victim.name] is True and sum(listed.values()) == 1
    assert Event.objects.filter(cluster=cluster, kind="host_down", data__host=victim.name).exists()

    # The killed host stays down past replace_after_seconds: its server is replaced on the one host of the
    # pool that holds none of the cluster's (the fourth), cloned, wired, and the dead one leaves.
    used_before = set(hosts_of(cluster.pk).values())
    (spare,) = {h.name for h in host_pool.hosts} - used_before
    changed = client.patch(
        f"/api/v1/clusters/{cluster.id}/", {"settings": {"replace_after_seconds": 2}}, format="json"
    )
    assert changed.status_code == 200, changed.content
    dead = next(s for s in Server.objects.filter(cluster=cluster) if s.address == old_primary)
    deadline = time.monotonic() + 180
    replaced = None
    while replaced is None:
        assert time.monotonic() < deadline, "no replace_server job finished"
        tick(cluster)
        replaced = (
            Job.objects.filter(cluster=cluster, kind="replace_server")
            .exclude(state__in=("pending", "running"))
            .first()
        )
        time.sleep(0.3)
    assert replaced.state == "succeeded", (replaced.result, replaced.steps)
    assert replaced.result["replacement_host"] == spare
    placed = hosts_of(cluster.pk)
    assert len(placed) == 3 and dead.address not in placed
    assert sorted(placed.values()) == sorted(used_before - {victim.name} | {spare})
    assert Event.objects.filter(cluster=cluster, kind="server_replaced").exists()
    for address in placed:
        if address != new_primary:
            with connect(address, "owner", "a-long-password-1") as conn, conn.cursor() as cursor:
                cursor.execute("SELECT COUNT(*) AS n FROM app.t")
                assert cursor.fetchone()["n"] == 3
    for _ in range(3):
        tick(cluster)
        time.sleep(0.3)
    topology = tick(cluster).topology
    assert sorted(s.state for s in topology.servers) == ["up", "up", "up"]  # back to 1+2 healthy
