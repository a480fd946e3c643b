"""Repair of a returning old primary on real 3-node semi-sync clusters (ticks driven in this process, jobs
inline): SIGSTOP of the primary under a writer until it fails over, then SIGCONT. The old primary then
holds a transaction the cluster never received; with `rejoin_method: flashback` it is rolled back (its SQL
saved as a job artifact and named in an event), the server rejoins by GTID from the fork point, and its
data matches the new primary's. Also: a quarantined server repaired by hand leaves quarantine by itself,
and an operator's rejoin request clears it."""

from __future__ import annotations

import signal

import pytest

from clusters.models import Event, Job, JobArtifact
from tests.integration.failover_helpers import (
    finished_failover,
    follows,
    read_only,
    register_cluster,
    server,
    tick,
    tick_until,
    wait_applied,
    writable_nodes,
)
from tests.integration.switchover_helpers import address, node_of
from tests.writer import Writer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def inline_jobs(settings, clean_redis):
    settings.DBPILOT_FAILOVER_RUNNER = "inline"


def checksums(sandbox, node: int) -> dict:
    rows = sandbox.sql(node, "CHECKSUM TABLE app.dbpilot_writes, app.repair_probe EXTENDED")
    return {r["Table"]: r["Checksum"] for r in rows}


def fail_over_under_a_writer(sandbox, cluster) -> tuple[int, Writer]:
    """SIGSTOP node 1 under a writer until the failover succeeds; the writer is stopped (its clients
    gave up on node 1 with an error, never an OK) before SIGCONT. Returns the new primary's node."""
    app = sandbox.accounts.app
    writer = Writer([address(sandbox, n) for n in sandbox.nodes], app.user, app.password, read_timeout=1.0)
    writer.start()
    try:
        writer.wait_for_acks(50)
        tick(cluster)
        sandbox.kill(1, signal.SIGSTOP)
        try:
            job = tick_until(cluster, lambda: finished_failover(cluster), timeout=40, message="the failover")
            assert job.state == "succeeded", job.result
            writer.wait_for_acks(writer.ack_count() + 20, timeout=20)
        finally:
            writer.stop()
            sandbox.kill(1, signal.SIGCONT)
    finally:
        writer.stop()
    return node_of(sandbox, job.result["new_primary"]), writer


def diverge(sandbox) -> None:
    """What the frozen primary committed and never sent: commits hanging on a semi-sync acknowledgement
    go through once the master side is off, and one more row is written on it directly (so the test does
    not depend on a commit being in flight at the instant of SIGSTOP)."""
    sandbox.sql(1, "SET GLOBAL rpl_semi_sync_master_enabled=0")
    sandbox.sql(1, "INSERT INTO app.repair_probe VALUES (2, 'never acknowledged, never replicated')")


def test_flashback_rolls_back_the_unacknowledged_transaction_and_rejoins(sandbox_factory):
    sandbox = sandbox_factory(3, semi_sync=True)
    cluster = register_cluster(
        sandbox, failover_mode="automatic", semi_sync_on_timeout="wait", rejoin_method=["flashback"]
    )
    sandbox.sql(1, "CREATE TABLE app.repair_probe (id INT PRIMARY KEY, note VARCHAR(80))")
    sandbox.sql(1, "INSERT INTO app.repair_probe VALUES (1, 'replicated')")
    new, writer = fail_over_under_a_writer(sandbox, cluster)
    diverge(sandbox)
    errant = sandbox.sql(1, "SELECT @@gtid_binlog_state AS s")[0]["s"]

    tick_until(
        cluster,
        lambda: (
            Job.objects.filter(cluster=cluster, kind="rejoin")
            .exclude(state__in=("pending", "running"))
            .exists()
        ),
        timeout=60,
        message="the rejoin job",
    )
    job = Job.objects.get(cluster=cluster, kind="rejoin")
    assert job.state == "succeeded", (job.result, job.steps)
    assert job.result["rejoin"]["method"] == "flashback"
    discarded = job.result["rejoin"]["flashback"]["discarded"]
    assert discarded and all(g.startswith("0-1-") or g.split("-")[1] == str(1) for g in discarded), errant
    assert [s["state"] for s in job.steps if s["name"].startswith("flashback")] == ["ok", "ok", "ok"]
    # Saved before the rollback, listed in the result, downloadable from the job, and named in an event.
    saved = JobArtifact.objects.get(job=job, name="discarded-transactions.sql").content
    assert "never acknowledged, never replicated" in saved
    listed = cluster.client.get(f"/api/v1/jobs/{job.id}/artifacts/").json()
    assert {a["name"] for a in listed} == set(job.result["rejoin"]["artifacts"])
    file = cluster.client.get(f"/api/v1/jobs/{job.id}/artifacts/discarded-transactions.sql/")
    assert file.status_code == 200 and b"never acknowledged" in file.content
    event = Event.objects.get(cluster=cluster, kind="flashback_discarding")
    assert event.data["gtids"] == discarded

    # A read-only replica of the new primary, from the fork point, with the same data.
    old = server(cluster, sandbox, 1)
    assert not old.fenced and not old.quarantined
    assert read_only(sandbox, 1) and writable_nodes(sandbox) == [new] and follows(sandbox, 1, new)
    sandbox.sql(new, "INSERT INTO app.repair_probe VALUES (3, 'after the rejoin')")
    for node in sandbox.nodes:
        if node != new:
            wait_applied(sandbox, node, new)
    assert checksums(sandbox, 1) == checksums(sandbox, new)
    assert sandbox.sql(1, "SELECT id FROM app.repair_probe ORDER BY id") == [{"id": 1}, {"id": 3}]
    for node in sandbox.nodes:
        assert not writer.missing_on(address(sandbox, node)), f"node {node} lacks acknowledged rows"


def test_quarantine_ends_once_repaired_and_an_operator_rejoin_clears_it(sandbox_factory):
    sandbox = sandbox_factory(3, semi_sync=True)
    cluster = register_cluster(sandbox, failover_mode="automatic", semi_sync_on_timeout="wait")
    sandbox.sql(1, "CREATE TABLE app.repair_probe (id INT PRIMARY KEY, note VARCHAR(80))")
    new, _ = fail_over_under_a_writer(sandbox, cluster)
    diverge(sandbox)
    tick_until(cluster, lambda: server(cluster, sandbox, 1).quarantined, message="the quarantine")

    # An operator asks for a GTID rejoin: the quarantine is cleared, the job finds the extra transaction
    # and quarantines it again (nothing is discarded without flashback or reseed being asked for).
    old = server(cluster, sandbox, 1)
    response = cluster.client.post(
        f"/api/v1/clusters/{cluster.id}/servers/{old.id}/rejoin/", {"method": "gtid"}, format="json"
    )
    assert response.status_code == 202, response.content
    assert Event.objects.filter(cluster=cluster, kind="server_quarantine_ended").exists()
    assert Job.objects.get(pk=response.json()["id"]).state == "refused"
    assert server(cluster, sandbox, 1).quarantined
    bad = cluster.client.post(
        f"/api/v1/clusters/{cluster.id}/servers/{old.id}/rejoin/", {"method": "rebuild"}, format="json"
    )
    assert bad.status_code == 400 and "unknown method" in bad.content.decode()
    # dbpilot does not own a registered cluster's servers: no rebuild.
    rebuild = cluster.client.post(f"/api/v1/clusters/{cluster.id}/servers/{old.id}/rebuild/")
    assert rebuild.status_code == 409 and rebuild.json()["code"] == "not_owned"
    assert "mariadb-backup" in rebuild.json()["detail"]

    # Repaired by hand: the row removed without binlogging, the binlog state reset to the new primary's,
    # then replicating from it by GTID. The next tick ends the quarantine by itself.
    state = sandbox.sql(new, "SELECT @@gtid_binlog_state AS s")[0]["s"]
    sandbox.sql(1, "SET GLOBAL rpl_semi_sync_master_enabled=0")
    with sandbox.connect(1) as conn, conn.cursor() as cursor:
        cursor.execute("SET SESSION sql_log_bin=0")
        cursor.execute("DELETE FROM app.repair_probe WHERE id=2")
        cursor.execute("STOP SLAVE")
        cursor.execute("RESET MASTER")
        cursor.execute("SET GLOBAL gtid_binlog_state=%s", (state,))
        cursor.execute("SET GLOBAL gtid_slave_pos=@@gtid_binlog_pos")
        cursor.execute(
            "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s, MASTER_PASSWORD=%s, "
            "MASTER_USE_GTID=slave_pos",
            (
                sandbox.host(new),
                sandbox.port(new),
                sandbox.accounts.replication.user,
                sandbox.accounts.replication.password,
            ),
        )
        cursor.execute("START SLAVE")
    tick_until(cluster, lambda: not server(cluster, sandbox, 1).quarantined, message="the quarantine to end")
    ended = Event.objects.filter(cluster=cluster, kind="server_quarantine_ended").order_by("-id").first()
    assert ended.data["by"] == "dbpilot"
    assert not server(cluster, sandbox, 1).fenced


def test_flashback_refuses_ddl_names_why_and_quarantines_when_no_method_is_left(sandbox_factory):
    sandbox = sandbox_factory(3, semi_sync=True)
    cluster = register_cluster(
        sandbox, failover_mode="automatic", semi_sync_on_timeout="wait", rejoin_method=["flashback"]
    )
    sandbox.sql(1, "CREATE TABLE app.repair_probe (id INT PRIMARY KEY, note VARCHAR(80))")
    fail_over_under_a_writer(sandbox, cluster)
    sandbox.sql(1, "SET GLOBAL rpl_semi_sync_master_enabled=0")
    sandbox.sql(1, "CREATE TABLE app.never_replicated (id INT PRIMARY KEY)")  # DDL: no flashback

    tick_until(cluster, lambda: server(cluster, sandbox, 1).quarantined, timeout=60, message="the quarantine")
    job = Job.objects.get(cluster=cluster, kind="rejoin")
    assert job.state == "refused", job.result
    assert "no_ddl" in {c["name"] for c in job.result["checks"]}
    assert job.result["rejoin"]["tried"] == ["flashback"]
    assert {s["name"]: s["state"] for s in job.steps}["flashback_inspect"] == "failed"
    assert not JobArtifact.objects.filter(job=job).exists()  # nothing saved, nothing rolled back
    assert sandbox.sql(1, "SHOW TABLES FROM app LIKE 'never_replicated'")  # still there
    assert read_only(sandbox, 1)
