"""Automatic failover on real 3-node semi-sync clusters, ticks driven in this process (the job runs inline):
SIGKILL and SIGSTOP of the primary under a writer recording acknowledged ids, the old primary fenced and
rejoined or quarantined when it returns, and the election's rules (lagging, ignored, errant candidates)."""
from __future__ import annotations

import signal

import pytest

from clusters.domain import failover_plan as plan
from clusters.models import Event
from tests.integration.failover_helpers import (
    failover_jobs,
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
from tests.integration.switchover_helpers import address, node_of, writer_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def inline_jobs(settings, clean_redis):
    settings.DBPILOT_FAILOVER_RUNNER = "inline"


def _step(job, name):
    return next(s for s in job.steps if s["name"] == name)


def test_sigkill_of_the_primary_promotes_a_replica_and_the_old_primary_rejoins(sandbox_factory):
    sandbox = sandbox_factory(3, semi_sync=True)
    cluster = register_cluster(sandbox, failover_mode="automatic")
    assert cluster.failover_armed and cluster.last_job.kind == "adopt" and cluster.last_job.state == "succeeded"
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
    assert sandbox.replication_status(new) is None and follows(sandbox, other, new) and read_only(sandbox, other)
    wait_applied(sandbox, other, new)
    for node in (new, other):
        assert not writer.missing_on(address(sandbox, node)), f"node {node} lacks acknowledged rows"
    assert [s["state"] for s in job.steps if s["state"] not in ("ok", "skipped")] == []
    assert job.result["election"]["winner"] == job.result["new_primary"]
    assert {row["server"] for row in job.result["election"]["table"]} == {address(sandbox, 2), address(sandbox, 3)}
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
    tick_until(cluster, lambda: not server(cluster, sandbox, 1).fenced or server(cluster, sandbox, 1).quarantined,
               message="the old primary to rejoin or be quarantined")
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
