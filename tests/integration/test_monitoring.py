"""Monitoring on real clusters: roles, findings opening and resolving, failure detection."""

from __future__ import annotations

import signal
import time

import pytest

from clusters import hotstate
from clusters.domain import constants as c
from clusters.services.monitoring import tick_cluster
from tests.integration.monitoring_helpers import forget_connections, open_codes, register, tenant_client
from tests.services_plugin import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def address(sandbox, node: int) -> str:
    return f"{sandbox.host(node)}:{sandbox.port(node)}"


@pytest.fixture
def registered(sandbox_cluster, clean_redis):
    _, created = tenant_client()
    cluster = register(created.team, sandbox_cluster)
    yield cluster, sandbox_cluster
    forget_connections(sandbox_cluster)


def test_registered_cluster_shows_primary_and_two_healthy_replicas(registered):
    cluster, sandbox = registered
    result = tick_cluster(cluster.id)
    assert result.topology.primary == address(sandbox, 1)
    roles = {s.address: (s.role, s.state) for s in result.topology.servers}
    assert roles[address(sandbox, 2)] == (c.ROLE_REPLICA, c.STATE_UP)
    assert roles[address(sandbox, 3)] == (c.ROLE_REPLICA, c.STATE_UP)
    snapshot = hotstate.read_topology(cluster.id)
    assert snapshot["primary"] == address(sandbox, 1)
    cluster.refresh_from_db()
    assert cluster.primary.address == address(sandbox, 1)


def test_stopped_sql_thread_opens_a_finding_within_two_ticks_and_resolves(registered):
    cluster, sandbox = registered
    tick_cluster(cluster.id)
    sandbox.sql(2, "STOP SLAVE SQL_THREAD")
    try:
        for _ in range(2):
            tick_cluster(cluster.id)
        assert (c.REPLICA_SQL_STOPPED, address(sandbox, 2)) in open_codes(cluster)
        opened = cluster.events.filter(kind="finding_opened", data__code=c.REPLICA_SQL_STOPPED)
        assert opened.count() == 1
    finally:
        sandbox.sql(2, "START SLAVE SQL_THREAD")
    for _ in range(4):
        tick_cluster(cluster.id)
    assert (c.REPLICA_SQL_STOPPED, address(sandbox, 2)) not in open_codes(cluster)
    assert cluster.events.filter(kind="finding_resolved", data__code=c.REPLICA_SQL_STOPPED).count() == 1


def test_findings_open_when_redis_lost_its_state_still_resolve_and_are_not_opened_twice(registered):
    cluster, sandbox = registered
    tick_cluster(cluster.id)
    sandbox.sql(2, "STOP SLAVE SQL_THREAD")
    try:
        for _ in range(2):
            tick_cluster(cluster.id)
        assert (c.REPLICA_SQL_STOPPED, address(sandbox, 2)) in open_codes(cluster)
        hotstate.client().flushdb()  # Redis restarted empty: the finding tracker's state is gone
        for _ in range(3):
            tick_cluster(cluster.id)
        opened = cluster.events.filter(kind="finding_opened", data__code=c.REPLICA_SQL_STOPPED)
        assert opened.count() == 1  # still the one finding, not opened again
    finally:
        sandbox.sql(2, "START SLAVE SQL_THREAD")
    hotstate.client().flushdb()  # and lost again while it is resolving
    for _ in range(4):
        tick_cluster(cluster.id)
    assert (c.REPLICA_SQL_STOPPED, address(sandbox, 2)) not in open_codes(cluster)
    assert cluster.events.filter(kind="finding_resolved", data__code=c.REPLICA_SQL_STOPPED).count() == 1


def test_writable_replica_opens_not_read_only_finding(registered):
    cluster, sandbox = registered
    sandbox.sql(3, "SET GLOBAL read_only = 0")
    try:
        for _ in range(2):
            tick_cluster(cluster.id)
        assert (c.REPLICA_NOT_READ_ONLY, address(sandbox, 3)) in open_codes(cluster)
    finally:
        sandbox.sql(3, "SET GLOBAL read_only = 1")


def test_a_shard_tick_publishes_the_topology_it_just_observed(registered, monkeypatch):
    """The shard path batches its hot-state writes; what it publishes for a change (and what route syncs
    read) must already be the new topology, not the one before the batch is sent."""
    from clusters.services import monitoring

    cluster, sandbox = registered
    published = []
    monkeypatch.setattr(
        monitoring, "publish_on_commit", lambda cluster_id, message: published.append(message)
    )
    monitoring.monitor_shard([cluster.id])
    published.clear()
    sandbox.sql(3, "SET GLOBAL read_only = 0")
    try:
        for _ in range(3):
            monitoring.monitor_shard([cluster.id])
    finally:
        sandbox.sql(3, "SET GLOBAL read_only = 1")
    assert (c.REPLICA_NOT_READ_ONLY, address(sandbox, 3)) in open_codes(cluster)
    assert published, "the change was published"
    for message in published:  # the first one too: sent by the tick that saw the change
        shown = {f"{s['host']}:{s['port']}": s for s in message["topology"]["servers"]}
        assert shown[address(sandbox, 3)]["read_only"] is False
    assert any(f["code"] == c.REPLICA_NOT_READ_ONLY for f in published[-1]["topology"]["findings"])


def test_a_shard_tick_reads_the_costly_details_only_now_and_then(registered):
    """Every probe reads roles and positions; status counters, semi-sync status and the like come from
    the connection's last details read (a new connection reads them at once), and say how old they are."""
    from clusters.adapters.mysql import ConnectOptions, Credentials
    from clusters.adapters.probe import probe_many
    from clusters.credentials import admin_credentials

    cluster, sandbox = registered
    creds: Credentials = admin_credentials(cluster)
    first = probe_many([(address(sandbox, 1), creds, ConnectOptions())], details=True)[0]
    assert first.reachable and first.details_age_seconds == 0.0 and first.uptime_seconds is not None
    time.sleep(0.2)
    second = probe_many([(address(sandbox, 1), creds, ConnectOptions())], details=False)[0]
    assert second.details_age_seconds > 0.1 and second.uptime_seconds == first.uptime_seconds
    assert second.read_only is False and second.server_id == first.server_id and second.log_bin
    forced = probe_many([(address(sandbox, 1), creds, ConnectOptions())], details=True)[0]
    assert forced.details_age_seconds == 0.0


def test_unchanged_state_emits_nothing(registered):
    cluster, sandbox = registered
    for _ in range(3):
        tick_cluster(cluster.id)
    count = cluster.events.count()
    for _ in range(3):
        tick_cluster(cluster.id)
    assert cluster.events.count() == count


def test_errant_transaction_on_replica_is_reported_with_its_gtids(sandbox_factory, clean_redis):
    sandbox = sandbox_factory(3)
    _, created = tenant_client()
    cluster = register(created.team, sandbox)
    sandbox.sql(1, "CREATE TABLE app.t (id INT PRIMARY KEY)")
    sandbox.wait_replicating()
    # root holds READ ONLY ADMIN: it writes straight through read_only, as a careless admin would.
    sandbox.sql(2, "INSERT INTO app.t VALUES (1)")
    errant_gtid = sandbox.sql(2, "SELECT @@gtid_binlog_pos AS p")[0]["p"]
    for _ in range(2):
        tick_cluster(cluster.id)
    finding = cluster.findings.get(code=c.ERRANT_GTID, resolved_at__isnull=True)
    assert finding.server.address == address(sandbox, 2)
    assert "0-2-" in str(finding.details) and any(
        part in str(finding.details) for part in errant_gtid.split(",")
    )
    forget_connections(sandbox)


def test_sigkill_of_primary_shows_suspect_then_down(sandbox_factory, clean_redis):
    sandbox = sandbox_factory(3)
    _, created = tenant_client()
    cluster = register(created.team, sandbox)
    tick_cluster(cluster.id)
    sandbox.kill(1, signal.SIGKILL)
    result = tick_cluster(cluster.id)
    primary = address(sandbox, 1)
    states = {s.address: s.state for s in result.topology.servers}
    assert states[primary] == c.STATE_DOWN
    assert result.failures[primary] == 3
    kinds = list(
        cluster.events.filter(kind="finding_opened").order_by("id").values_list("data__code", flat=True)
    )
    assert c.PRIMARY_SUSPECT in kinds and c.PRIMARY_DOWN in kinds
    assert kinds.index(c.PRIMARY_SUSPECT) < kinds.index(c.PRIMARY_DOWN)
    # Manual mode: monitoring changed nothing on the servers.
    for node in (2, 3):
        assert sandbox.sql(node, "SELECT @@read_only AS r")[0]["r"] == 1
        assert sandbox.replication_status(node)["Master_Port"] == sandbox.port(1)
    forget_connections(sandbox)


def test_lone_server_is_a_cluster_with_a_no_replica_finding(sandbox_factory, clean_redis):
    sandbox = sandbox_factory(1)
    _, created = tenant_client()
    cluster = register(created.team, sandbox)
    for _ in range(2):
        tick_cluster(cluster.id)
    assert (c.NO_REPLICA, None) in {(code, None) for code, _ in open_codes(cluster)}
    forget_connections(sandbox)


def test_worker_and_beat_show_a_registered_cluster_within_three_seconds(sandbox_cluster, dbpilot_processes):
    client, created = tenant_client("live")
    worker = dbpilot_processes(queues="ticks", name="ticks-worker")
    dbpilot_processes("beat")
    wait_for(lambda: "ready" in worker.log_text(), 30, message="worker ready")
    from tests.integration.monitoring_helpers import registration_payload

    registered_at = time.monotonic()
    response = client.post("/api/v1/clusters/", registration_payload(sandbox_cluster, "live"), format="json")
    assert response.status_code == 201, response.content
    cluster_id = response.json()["id"]

    def healthy():
        topology = client.get(f"/api/v1/clusters/{cluster_id}/topology/").json()
        replicas = [s for s in topology["servers"] if s["role"] == "replica" and s["state"] == "up"]
        return topology if topology["primary"] == address(sandbox_cluster, 1) and len(replicas) == 2 else None

    topology = wait_for(healthy, 10, message="primary and two healthy replicas")
    seen_after = time.monotonic() - registered_at
    assert all(s["replication"]["io_running"] == "Yes" for s in topology["servers"] if s["role"] == "replica")
    print(f"registered -> healthy topology in {seen_after:.2f}s")
