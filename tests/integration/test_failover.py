"""Automatic failover on real 3-node semi-sync clusters, ticks driven in this process (the job runs inline):
SIGKILL and SIGSTOP of the primary under a writer recording acknowledged ids, the old primary fenced and
rejoined or quarantined when it returns, and the election's rules (lagging, ignored, errant candidates)."""

from __future__ import annotations

import signal

import pytest

from clusters.domain import failover_plan as plan
from clusters.models import Event, Finding
from tests.integration.failover_helpers import (
    failover_jobs,
    finished_failover,
    follows,
    open_codes,
    read_only,
    register_cluster,
    server,
    tick,
    tick_until,
    wait_applied,
    writable_nodes,
)
from tests.integration.switchover_helpers import address, node_of, writer_for
from tests.writer import Writer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def inline_jobs(settings, clean_redis):
    settings.DBPILOT_FAILOVER_RUNNER = "inline"


def _step(job, name):
    return next(s for s in job.steps if s["name"] == name)


@pytest.mark.jobs  # also run on PostgreSQL by scripts/test.sh
def test_sigkill_of_the_primary_promotes_a_replica_and_the_old_primary_rejoins(sandbox_factory):
    sandbox = sandbox_factory(3, semi_sync=True)
    cluster = register_cluster(sandbox, failover_mode="automatic")
    assert (
        cluster.failover_armed and cluster.last_job.kind == "adopt" and cluster.last_job.state == "succeeded"
    )
    writer = writer_for(sandbox).start()
    try:
        writer.wait_for_acks(100)
        tick(cluster)
        sandbox.kill(1, signal.SIGKILL)
        job = tick_until(cluster, lambda: finished_failover(cluster), message="the failover")
        writer.wait_for_acks(100)
    finally:
        writer.stop()
    assert job.state == "succeeded", job.result
    assert job.params["automatic"] is True and job.result["old_primary"] == address(sandbox, 1)
    new = node_of(sandbox, job.result["new_primary"])
    other = next(n for n in (2, 3) if n != new)
    assert writable_nodes(sandbox) == [new]
    assert (
        sandbox.replication_status(new) is None and follows(sandbox, other, new) and read_only(sandbox, other)
    )
    wait_applied(sandbox, other, new)
    for node in (new, other):
        assert not writer.missing_on(address(sandbox, node)), f"node {node} lacks acknowledged rows"
    assert [s["state"] for s in job.steps if s["state"] not in ("ok", "skipped")] == []
    assert job.result["election"]["winner"] == job.result["new_primary"]
    assert {row["server"] for row in job.result["election"]["table"]} == {
        address(sandbox, 2),
        address(sandbox, 3),
    }
    rpo = job.result["rpo"]
    assert rpo["guarantee"] == plan.GUARANTEE_AT_RISK and "async" in rpo["risk"] and rpo["lower_bound"]
    assert rpo["survivors_hold"]
    assert server(cluster, sandbox, 1).fenced
    cluster.refresh_from_db()
    assert cluster.primary.address == job.result["new_primary"] and cluster.last_job_id == job.id

    # The killed primary comes back: read-only (its configuration), then a replica of the new primary,
    # unless it holds a transaction the survivors never received (then it is quarantined).
    sandbox.start(1)
    assert read_only(sandbox, 1)
    tick_until(
        cluster,
        lambda: not server(cluster, sandbox, 1).fenced or server(cluster, sandbox, 1).quarantined,
        message="the old primary to rejoin or be quarantined",
    )
    old = server(cluster, sandbox, 1)
    assert read_only(sandbox, 1) and writable_nodes(sandbox) == [new]
    if old.quarantined:
        quarantined = Event.objects.get(cluster=cluster, kind="server_quarantined")
        assert quarantined.data["gtids"]
    else:
        assert follows(sandbox, 1, new)
        wait_applied(sandbox, 1, new)
        assert not writer.missing_on(address(sandbox, 1))
        assert Event.objects.filter(cluster=cluster, kind="server_rejoined").exists()
    assert len(failover_jobs(cluster)) == 1


def test_sigstop_with_the_wait_policy_fails_over_then_fences_the_old_primary_on_sigcont(sandbox_factory):
    sandbox = sandbox_factory(3, semi_sync=True)
    cluster = register_cluster(sandbox, failover_mode="automatic", semi_sync_on_timeout="wait")
    assert (
        sandbox.sql(1, "SELECT @@rpl_semi_sync_master_timeout AS t")[0]["t"] == 4294967295
    )  # adopt applied it
    app = sandbox.accounts.app
    writer = Writer(
        [address(sandbox, n) for n in sandbox.nodes], app.user, app.password, read_timeout=1.0
    ).start()
    try:
        writer.wait_for_acks(100)
        tick(cluster)
        sandbox.kill(1, signal.SIGSTOP)
        try:
            job = tick_until(cluster, lambda: finished_failover(cluster), timeout=40, message="the failover")
            writer.wait_for_acks(100, timeout=20)
        finally:
            sandbox.kill(1, signal.SIGCONT)
    finally:
        writer.stop()
    assert job.state == "succeeded", job.result
    assert job.result["rpo"]["guarantee"] == plan.GUARANTEE_NONE_LOST
    new = node_of(sandbox, job.result["new_primary"])
    # Resumed, the old primary is still writable in memory: the first tick that reaches it fences it (a
    # commit hanging on a semi-sync acknowledgement is killed: its client never got an OK).
    tick_until(cluster, lambda: read_only(sandbox, 1), message="the old primary fenced read-only")
    assert Event.objects.filter(cluster=cluster, kind="server_fenced").exists()
    tick_until(
        cluster,
        lambda: not server(cluster, sandbox, 1).fenced or server(cluster, sandbox, 1).quarantined,
        message="the old primary rejoined or quarantined",
    )
    assert writable_nodes(sandbox) == [new]
    for node in (2, 3):
        assert not writer.missing_on(address(sandbox, node)), f"node {node} lacks acknowledged rows"
    if server(cluster, sandbox, 1).quarantined:
        gtids = Event.objects.get(cluster=cluster, kind="server_quarantined").data["gtids"]
        assert gtids and all(g.startswith("0-1-") for g in gtids)
        tick_until(
            cluster,
            lambda: ("ERRANT_GTID", address(sandbox, 1)) in open_codes(cluster),
            message="the finding listing its extra GTIDs",
        )
        assert ("SERVER_QUARANTINED", address(sandbox, 1)) in open_codes(cluster)
        errant = Finding.objects.get(cluster=cluster, code="ERRANT_GTID", resolved_at__isnull=True)
        assert errant.details["gtids"] == gtids and gtids[0] in errant.message
        assert not follows(sandbox, 1, new)  # never rejoined
    else:
        assert follows(sandbox, 1, new)
