"""Automatic failover's guards and election rules on real clusters, ticks driven in this process (jobs run
inline): a primary cut off from dbpilot only, lagging and ignored replicas, an errant best candidate,
failover_limit and failover_min_interval_seconds (and the reset), manual mode and manual failover through
the API, paused clusters and platform."""

from __future__ import annotations

import signal
import time

import pytest

from clusters.domain import constants as c
from clusters.jobs.engine import create_job, run_job
from clusters.models import Job
from tenants.platform import set_platform_paused
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
    writable_nodes,
)
from tests.integration.switchover_helpers import address, node_of, writer_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def inline_jobs(settings, clean_redis):
    settings.DBPILOT_FAILOVER_RUNNER = "inline"


def blocking(job: Job) -> set[str]:
    return {check["name"] for check in job.result["checks"] if not check["ok"]}


def refused(cluster) -> Job | None:
    return Job.objects.filter(cluster=cluster, kind="failover", state="refused").first()


def test_a_primary_cut_off_from_dbpilot_only_is_not_failed_over(sandbox_factory):
    sandbox = sandbox_factory(3, netns=True)
    cluster = register_cluster(sandbox, failover_mode="automatic")
    assert cluster.failover_armed
    tick(cluster)
    sandbox.cut(1, from_control=True, from_peers=False)
    try:
        started = time.monotonic()
        tick_until(
            cluster,
            lambda: (c.PRIMARY_UNREACHABLE, address(sandbox, 1)) in open_codes(cluster),
            timeout=20,
            message="PRIMARY_UNREACHABLE",
        )
        while time.monotonic() - started < 8:  # well past failcount and the replicas' heartbeat limit
            tick(cluster)
        sandbox.sql(1, "CREATE TABLE app.still_replicating (id INT PRIMARY KEY)")
        sandbox.wait_replicating(timeout=10, primary=1)  # the replicas still follow it
    finally:
        sandbox.heal(1)
    assert failover_jobs(cluster) == []
    assert writable_nodes(sandbox) == [1]


def test_lagging_and_ignored_replicas_are_not_chosen_when_a_better_one_exists(sandbox_factory):
    sandbox = sandbox_factory(4)
    ignored = address(sandbox, 2)
    cluster = register_cluster(
        sandbox, failover_mode="automatic", ignored_servers=[ignored], max_replica_delay_seconds=1
    )
    lock = sandbox.connect(3)  # holds node 3's SQL thread: it receives everything, applies nothing
    writer = writer_for(sandbox, rate=100).start()
    try:
        with lock.cursor() as cursor:
            cursor.execute("FLUSH TABLES WITH READ LOCK")
        tick_until(
            cluster,
            lambda: (c.REPLICA_LAGGING, address(sandbox, 3)) in open_codes(cluster),
            timeout=20,
            message="node 3 lagging",
        )
        writer.stop()
        sandbox.kill(1, signal.SIGKILL)
    finally:
        writer.stop()
        lock.close()  # node 3 catches up now; the election still remembers how far behind it was
    job = tick_until(cluster, lambda: finished_failover(cluster), message="the failover")
    assert job.state == "succeeded", job.result
    assert job.result["new_primary"] == address(sandbox, 4)
    rows = {row["server"]: row for row in job.result["election"]["table"]}
    assert "ignored" in rows[ignored]["flags"] and not rows[ignored]["electable"]
    assert "lagging" in rows[address(sandbox, 3)]["flags"] and not rows[address(sandbox, 3)]["electable"]
    assert rows[address(sandbox, 4)]["chosen"]
    for node in (2, 3):
        assert follows(sandbox, node, 4)
    assert writable_nodes(sandbox) == [4]


def test_an_errant_transaction_on_the_best_candidate_is_reported_and_it_is_not_promoted(sandbox_factory):
    sandbox = sandbox_factory(3)
    preferred = address(sandbox, 2)
    cluster = register_cluster(sandbox, failover_mode="automatic", preferred_servers=[preferred])
    sandbox.sql(1, "CREATE TABLE app.notes (id INT PRIMARY KEY)")
    sandbox.wait_replicating(primary=1)
    sandbox.sql(2, "INSERT INTO app.notes VALUES (1)")  # root writes through read_only: an errant transaction
    tick_until(cluster, lambda: (c.ERRANT_GTID, preferred) in open_codes(cluster), message="ERRANT_GTID")
    sandbox.kill(1, signal.SIGKILL)
    job = tick_until(cluster, lambda: finished_failover(cluster), message="the failover")
    assert job.state == "succeeded", job.result
    assert job.result["new_primary"] == address(sandbox, 3)
    row = next(r for r in job.result["election"]["table"] if r["server"] == preferred)
    assert "errant" in row["flags"] and "preferred" in row["flags"] and not row["electable"]
    assert "errant" in job.result["not_repointed"][preferred]
    assert writable_nodes(sandbox) == [3]
    assert read_only(sandbox, 2)


def test_failover_limit_and_min_interval_block_a_second_failover_until_reset(sandbox_factory):
    sandbox = sandbox_factory(3)
    cluster = register_cluster(sandbox, failover_mode="automatic", failover_limit=1)
    tick(cluster)
    sandbox.kill(1, signal.SIGKILL)
    first = tick_until(cluster, lambda: finished_failover(cluster), message="the first failover")
    assert first.state == "succeeded", first.result
    new = node_of(sandbox, first.result["new_primary"])
    sandbox.start(1)
    tick_until(cluster, lambda: not server(cluster, sandbox, 1).fenced, message="the old primary to rejoin")

    sandbox.kill(new, signal.SIGKILL)
    job = tick_until(cluster, lambda: refused(cluster), message="the blocked failover")
    for _ in range(3):
        tick(cluster)
    assert blocking(job) == {c.GUARD_FAILOVER_LIMIT, c.GUARD_FAILOVER_MIN_INTERVAL}
    assert len(failover_jobs(cluster, state="refused")) == 1  # one per incident, not per tick
    control = cluster.client.get(f"/api/v1/clusters/{cluster.id}/failover-control/").json()
    assert control["counters"]["failovers_in_window"] == 1
    assert control["last_blocked"]["id"] == job.id
    assert {ch["name"] for ch in control["last_blocked"]["checks"]} == blocking(job)
    listed = cluster.client.get(f"/api/v1/clusters/{cluster.id}/jobs/").json()["results"]
    assert any(j["id"] == job.id and j["state"] == "refused" for j in listed)
    assert writable_nodes(sandbox) == []  # nothing was promoted

    assert cluster.client.post(f"/api/v1/clusters/{cluster.id}/failover-control/reset/").status_code == 200
    second = tick_until(
        cluster,
        lambda: (
            Job.objects.filter(cluster=cluster, kind="failover", state="succeeded")
            .exclude(pk=first.pk)
            .first()
        ),
        message="the failover after the reset",
    )
    assert node_of(sandbox, second.result["old_primary"]) == new
    assert writable_nodes(sandbox) == [node_of(sandbox, second.result["new_primary"])]


def test_manual_mode_never_fails_over_by_itself_and_the_api_does_on_request(sandbox_factory):
    sandbox = sandbox_factory(2)
    cluster = register_cluster(sandbox)  # registered: manual
    assert not cluster.failover_armed
    url = f"/api/v1/clusters/{cluster.id}/failover/"
    alive = cluster.client.post(url, {}, format="json")
    assert alive.status_code == 409 and alive.json()["code"] == "primary_alive"
    assert "use a switchover" in alive.json()["detail"]

    tick(cluster)
    sandbox.kill(1, signal.SIGKILL)
    job = tick_until(cluster, lambda: refused(cluster), message="the refused automatic failover")
    for _ in range(2):
        tick(cluster)
    assert blocking(job) == {c.GUARD_FAILOVER_MODE, c.GUARD_FAILOVER_ARMED}
    assert len(failover_jobs(cluster)) == 1 and read_only(sandbox, 2)

    response = cluster.client.post(url, {"candidate": address(sandbox, 2)}, format="json")
    assert response.status_code == 202, response.content
    done = cluster.client.get(f"/api/v1/jobs/{response.json()['id']}/").json()
    assert done["state"] == "succeeded", done["result"]
    assert done["params"]["automatic"] is False and done["result"]["new_primary"] == address(sandbox, 2)
    assert writable_nodes(sandbox) == [2]


def test_manual_failover_of_a_frozen_primary_is_accepted_once_the_ticks_confirmed_it(
    sandbox_factory, settings, monkeypatch
):
    """SIGSTOP in manual mode: the replicas' IO threads say Yes until slave_net_timeout (60 s on a registered
    cluster), and a process that did not watch them (the API's, the job's) cannot measure their heartbeat
    age. The ticks' recent confirmation vouches for them: the operator's request is accepted at once and
    the job fails over."""
    from clusters.adapters import probe
    from clusters.jobs import engine

    sandbox = sandbox_factory(3)
    for node in (2, 3):  # MariaDB's default, as on a cluster dbpilot did not adopt (the sandbox's is 4 s)
        for statement in ("STOP SLAVE", "SET GLOBAL slave_net_timeout=60", "START SLAVE"):
            sandbox.sql(node, statement)
    cluster = register_cluster(sandbox)  # registered: manual
    url = f"/api/v1/clusters/{cluster.id}/failover/"
    tick(cluster)
    sandbox.kill(1, signal.SIGSTOP)
    try:
        tick_until(
            cluster, lambda: refused(cluster), timeout=30, message="the ticks' confirmation (a refused job)"
        )
        assert sandbox.sql(2, "SHOW SLAVE STATUS")[0]["Slave_IO_Running"] == "Yes"  # still, on the replicas

        settings.DBPILOT_FAILOVER_RUNNER = "queue"
        queued = []
        monkeypatch.setattr(engine, "enqueue_job", queued.append)
        probe.LIVENESS._seen.clear()  # the API's process never watched these replicas
        response = cluster.client.post(url, {"candidate": address(sandbox, 2)}, format="json")
        assert response.status_code == 202, response.content
        checks = {ch["name"]: ch for ch in response.json()["result"]["checks"]}
        assert "monitoring confirmed its failure" in checks[c.GUARD_PRIMARY_DEAD]["detail"]

        probe.LIVENESS._seen.clear()  # nor did the ha worker's
        job = engine.run_job(queued[0])
        assert job.state == "succeeded", job.result
        assert not read_only(sandbox, 2) and read_only(sandbox, 3)  # node 1 is still frozen: not asked
    finally:
        sandbox.kill(1, signal.SIGCONT)
    tick_until(cluster, lambda: read_only(sandbox, 1), message="the old primary fenced read-only")
    assert writable_nodes(sandbox) == [2]


def test_a_paused_cluster_or_platform_does_not_fail_over(sandbox_factory):
    sandbox = sandbox_factory(2)
    cluster = register_cluster(sandbox, failover_mode="automatic", paused=True)
    assert cluster.failover_armed
    set_platform_paused(True, by="test")
    try:
        tick(cluster)
        sandbox.kill(1, signal.SIGKILL)
        job = tick_until(cluster, lambda: refused(cluster), message="the refused failover")
        assert blocking(job) == {c.GUARD_CLUSTER_PAUSED, c.GUARD_PLATFORM_PAUSED}
        body = cluster.client.patch(
            f"/api/v1/clusters/{cluster.id}/", {"settings": {"paused": False}}, format="json"
        ).json()
        assert body["paused"] is False
        for _ in range(3):
            tick(cluster)
        assert len(failover_jobs(cluster)) == 1 and read_only(sandbox, 2)  # the platform is still paused
    finally:
        set_platform_paused(False, by="test")
    done = tick_until(
        cluster,
        lambda: Job.objects.filter(cluster=cluster, kind="failover", state="succeeded").first(),
        message="the failover once nothing is paused",
    )
    assert done.result["new_primary"] == address(sandbox, 2) and writable_nodes(sandbox) == [2]


def test_a_required_fence_hook_that_fails_refuses_the_failover_before_anything_changed(
    sandbox_factory, settings, tmp_path
):
    (tmp_path / "cut-power").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls\nexit 3\n')
    (tmp_path / "cut-power").chmod(0o755)
    settings.DBPILOT_HOOKS_DIR = tmp_path
    sandbox = sandbox_factory(2)
    cluster = register_cluster(sandbox, failover_mode="automatic", fence="cut-power", fence_required=True)
    tick(cluster)
    sandbox.kill(1, signal.SIGKILL)
    job = tick_until(cluster, lambda: finished_failover(cluster), message="the failover job")
    for _ in range(3):
        tick(cluster)
    assert job.state == "refused", job.result
    assert [ch["name"] for ch in job.result["checks"]] == ["fence"]
    fence_step = next(s for s in job.steps if s["name"] == "fence_hook")
    assert fence_step["state"] == "failed" and fence_step["exit_code"] == 3
    assert (tmp_path / "calls").read_text().split() == ["fence", "pre", cluster.label, address(sandbox, 1)]
    assert len(failover_jobs(cluster)) == 1  # one attempt per incident
    assert (
        read_only(sandbox, 2) and sandbox.replication_status(2) is not None
    )  # nothing promoted or repointed
    assert not server(cluster, sandbox, 1).fenced  # still the cluster's primary: not fenced
    sandbox.start(1)
    sandbox.sql(1, "SET GLOBAL read_only=0")  # an operator brings it back
    for _ in range(2):
        tick(cluster)
    assert writable_nodes(sandbox) == [1]


def test_a_delayed_survivor_holding_more_than_the_candidate_does_not_fail_the_failover(sandbox_factory):
    """Node 3 replicates with MASTER_DELAY (its SQL thread waits out the delay); node 2's IO thread is
    stopped while rows are written, so node 3 has received transactions node 2 lacks. The primary dies and
    an operator fails over to node 2: it is promoted without waiting on node 3's delay, and the result
    names what node 3 only received (gtid.not_fetched_from_delayed) instead of failing the failover."""
    sandbox = sandbox_factory(3)
    sandbox.sql(1, "CREATE TABLE app.delayed (id INT PRIMARY KEY)")
    sandbox.wait_replicating(timeout=20, primary=1)
    sandbox.sql(3, "STOP SLAVE")
    sandbox.sql(3, "CHANGE MASTER TO MASTER_DELAY=120")
    sandbox.sql(3, "START SLAVE")
    cluster = register_cluster(sandbox)  # manual: an operator names the candidate
    sandbox.sql(1, "INSERT INTO app.delayed VALUES (1)")
    _wait_received(sandbox, 2)
    sandbox.sql(2, "STOP SLAVE IO_THREAD")
    sandbox.sql(1, "INSERT INTO app.delayed VALUES (2), (3)")  # node 3 receives them, node 2 does not
    received_by_3 = _wait_received(sandbox, 3)
    tick(cluster)
    sandbox.kill(1, signal.SIGKILL)
    deadline = time.monotonic() + 4  # past failcount: monitoring sees the primary down
    while time.monotonic() < deadline:
        tick(cluster)
        time.sleep(0.1)
    response = cluster.client.post(
        f"/api/v1/clusters/{cluster.id}/failover/", {"candidate": address(sandbox, 2)}, format="json"
    )
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.state == "succeeded", (job.result.get("detail"), job.steps)
    assert job.result["new_primary"] == address(sandbox, 2)
    sources = [row["server"] for row in job.result["election"]["catch_up_from"]]
    assert sources == [address(sandbox, 3)], job.result["election"]
    not_fetched = job.result["gtid"].get("not_fetched_from_delayed") or ""
    assert address(sandbox, 3) in not_fetched and received_by_3 in not_fetched, job.result["gtid"]
    assert "not waited for" in _step_detail(job, "catch_up_candidate")
    assert writable_nodes(sandbox) == [2]


def _step_detail(job: Job, name: str) -> str:
    return next(r.get("detail") or "" for r in job.steps if r["name"] == name)


def _wait_received(sandbox, node: int, timeout: float = 10.0) -> str:
    """Wait until `node` has received everything node 1 binlogged; returns that position."""
    position = sandbox.sql(1, "SELECT @@gtid_binlog_pos AS p")[0]["p"]
    deadline = time.monotonic() + timeout
    while sandbox.replication_status(node)["Gtid_IO_Pos"] != position:
        assert time.monotonic() < deadline, f"node {node} did not receive {position}"
        time.sleep(0.05)
    return position


def test_a_fence_hook_never_runs_when_no_candidate_is_electable(sandbox_factory, settings, tmp_path):
    """The hook may power the old primary off: with nobody to promote, that would leave no server at all.
    The failover refuses before it, naming the candidate check, and the hook is never called."""
    (tmp_path / "cut-power").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls\n')
    (tmp_path / "cut-power").chmod(0o755)
    settings.DBPILOT_HOOKS_DIR = tmp_path
    sandbox = sandbox_factory(2)
    cluster = register_cluster(sandbox, fence="cut-power", fence_required=True)
    tick(cluster)
    # Replication stopped on purpose: its lag is unknown, so it is not electable unless named.
    sandbox.sql(2, "STOP SLAVE")
    tick(cluster)
    sandbox.kill(1, signal.SIGKILL)
    deadline = time.monotonic() + 4  # past failcount: monitoring sees the primary down
    while time.monotonic() < deadline:
        tick(cluster)
        time.sleep(0.1)
    # The API's own look refuses this up front (409); the job must refuse too when the servers change
    # between that look and the job (as in a soak: cut right after registration), so it is run directly.
    refused = cluster.client.post(f"/api/v1/clusters/{cluster.id}/failover/", {}, format="json")
    assert refused.status_code == 409 and "electable" in refused.json()["detail"]
    created = create_job(cluster, "failover", params={"primary": address(sandbox, 1)}, requested_by="test")
    job = run_job(created.id)
    assert job.state == "refused", (job.result.get("detail"), job.steps)
    assert "the fence hook was not run" in job.result["detail"]
    assert [ch["name"] for ch in job.result["checks"]] == [c.GUARD_CANDIDATE]
    assert not (tmp_path / "calls").exists()
    assert not server(cluster, sandbox, 1).fenced  # nothing was promoted: still the cluster's primary
    assert read_only(sandbox, 2)
