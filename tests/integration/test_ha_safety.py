"""HA safety on real semi-sync clusters, ticks driven in this process (jobs run inline): a live primary is
never failed over because replicas whose IO threads were stopped on purpose "agree" it is gone, nor
because it answers "too many connections"; a primary stalled (SIGSTOP, then SIGCONT) for 2 to 6 s under a
writer leaves exactly one writable server, writes flowing and no acknowledged write lost, whether the
stall ended in a failover, an aborted one, or none."""

from __future__ import annotations

import signal
import threading
import time

import pymysql
import pytest

from clusters.adapters.mysql import POOL
from clusters.domain import constants as c
from clusters.models import Event, Server
from tests.integration.failover_helpers import (
    failover_jobs,
    follows,
    open_codes,
    register_cluster,
    server,
    tick,
    tick_until,
    writable_nodes,
)
from tests.integration.switchover_helpers import address, node_of
from tests.writer import Writer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.jobs]


@pytest.fixture(autouse=True)
def inline_jobs(settings, clean_redis):
    settings.DBPILOT_FAILOVER_RUNNER = "inline"


def tick_for(cluster, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tick(cluster)
        time.sleep(0.1)


def test_stopped_io_threads_and_a_5s_cut_from_dbpilot_do_not_fail_over_a_live_primary(sandbox_factory):
    sandbox = sandbox_factory(3, semi_sync=True, netns=True)
    cluster = register_cluster(sandbox, failover_mode="automatic")
    assert cluster.failover_armed
    tick_for(cluster, 1.5)
    for node in (2, 3):  # an operator stops both replicas' IO threads (no error: on purpose)
        sandbox.sql(node, "STOP SLAVE IO_THREAD")
    tick_for(cluster, 1.5)
    sandbox.cut(1, from_control=True, from_peers=False)
    try:
        tick_for(cluster, 5.0)  # past failcount: the primary is down as far as dbpilot can tell
        assert server(cluster, sandbox, 1).fenced is False
    finally:
        sandbox.heal(1)
    tick_for(cluster, 3.0)
    assert failover_jobs(cluster) == [], [j.result for j in failover_jobs(cluster)]
    assert writable_nodes(sandbox) == [1]
    assert not Server.objects.filter(cluster=cluster, fenced=True).exists()
    for node in (2, 3):
        sandbox.sql(node, "START SLAVE IO_THREAD")
    sandbox.wait_replicating(timeout=20, primary=1)


def _fill_connections(sandbox, node: int, limit: int = 200) -> list:
    """Root sessions until the server answers 1040 (root takes the one extra CONNECTION ADMIN slot too)."""
    held = []
    for _ in range(limit):
        try:
            held.append(sandbox.connect(node))
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] == 1040:
                return held
            raise
    raise AssertionError(f"node {node} never answered 1040 after {limit} sessions")


def _restore_max_connections(sandbox, node: int) -> None:
    """The closed sessions leave the server a moment later, and the one extra slot kept for SUPER may be
    taken by a probe meanwhile: retry until root gets in."""
    deadline = time.monotonic() + 15
    while True:
        try:
            sandbox.sql(node, "SET GLOBAL max_connections = 400")
            return
        except pymysql.err.OperationalError as exc:
            if exc.args[0] != 1040 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_a_primary_answering_too_many_connections_is_not_failed_over(sandbox_factory):
    sandbox = sandbox_factory(3, semi_sync=True)
    cluster = register_cluster(sandbox, failover_mode="automatic")
    assert cluster.failover_armed
    primary = address(sandbox, 1)
    tick_for(cluster, 1.5)
    sandbox.sql(1, "SET GLOBAL max_connections = 10")
    for node in (2, 3):
        sandbox.sql(node, "STOP SLAVE IO_THREAD")
    POOL.discard_address(primary)
    held = _fill_connections(sandbox, 1)
    try:
        for node in (2, 3):  # they reconnect and get 1040 from the primary: it is alive
            sandbox.sql(node, "START SLAVE IO_THREAD")
        tick_until(
            cluster,
            lambda: (c.SERVER_ERROR_REPLY, primary) in open_codes(cluster),
            timeout=20,
            message="SERVER_ERROR_REPLY on the primary",
        )
        status = sandbox.replication_status(2)
        assert status["Last_IO_Errno"] == 1040, status
        tick_for(cluster, 6.0)  # well past failcount and the heartbeat limits
        assert failover_jobs(cluster) == [], [j.result for j in failover_jobs(cluster)]
        assert (c.PRIMARY_DOWN, primary) not in open_codes(cluster)
    finally:
        for conn in held:
            conn.close()
        _restore_max_connections(sandbox, 1)
    tick_until(
        cluster,
        lambda: (c.SERVER_ERROR_REPLY, primary) not in open_codes(cluster),
        timeout=20,
        message="the finding resolved",
    )
    sandbox.wait_replicating(timeout=20, primary=1)
    assert writable_nodes(sandbox) == [1]
    assert follows(sandbox, 2, 1) and follows(sandbox, 3, 1)
    assert failover_jobs(cluster) == []


@pytest.mark.parametrize("stall_seconds", [2, 3, 4, 5, 6])
def test_a_stalled_primary_leaves_one_writable_server_and_loses_no_acknowledged_write(
    sandbox_factory, stall_seconds
):
    # With the default `async` policy the resumed old primary's waiting commits are released unacknowledged
    # once rpl_semi_sync_master_timeout passes, if that comes before a tick fences it: the failover's RPO
    # says so (acknowledged_writes_at_risk). `wait` is the policy that promises no acknowledged write lost.
    # The writer's 1 s read timeout leaves a chain of commits waiting on the resumed old primary: fencing
    # it must end them without releasing any with an OK (tests/integration/test_ha_fence_semi_sync.py).
    sandbox = sandbox_factory(3, semi_sync=True)
    cluster = register_cluster(sandbox, failover_mode="automatic", semi_sync_on_timeout="wait")
    assert cluster.failover_armed
    app = sandbox.accounts.app
    writer = Writer(
        [address(sandbox, n) for n in sandbox.nodes], app.user, app.password, read_timeout=1.0
    ).start()
    try:
        writer.wait_for_acks(100)
        tick_for(cluster, 1.5)
        resume = threading.Timer(stall_seconds, sandbox.kill, args=(1, signal.SIGCONT))
        sandbox.kill(1, signal.SIGSTOP)
        resume.start()
        try:
            tick_for(cluster, stall_seconds + 8.0)  # the stall, then fencing or reopening settles
        finally:
            resume.join()
            sandbox.kill(1, signal.SIGCONT)  # harmless when the timer already did
        try:
            tick_until(
                cluster,
                lambda: len(writable_nodes(sandbox)) == 1,
                timeout=30,
                message="exactly one writable server",
            )
        except AssertionError:
            raise AssertionError(
                (
                    "writable",
                    writable_nodes(sandbox),
                    [
                        (
                            j.state,
                            [(r["name"], r["state"], (r.get("detail") or "")[:200]) for r in j.steps],
                            j.result.get("detail"),
                            j.result.get("abort"),
                        )
                        for j in failover_jobs(cluster)
                    ],
                    sorted(open_codes(cluster)),
                )
            ) from None
        writer.wait_for_acks(100, timeout=30)  # writes flow again
    finally:
        writer.stop()
    [primary] = writable_nodes(sandbox)
    jobs = failover_jobs(cluster)
    started = [j for j in jobs if j.started_at is not None]
    if any(j.state == "succeeded" for j in started):
        assert primary == node_of(
            sandbox, next(j for j in started if j.state == "succeeded").result["new_primary"]
        )
    else:
        assert primary == 1, [j.result for j in jobs]  # no failover happened: the old primary writes again
    missing = writer.missing_on(address(sandbox, primary))
    acks = [a for a in writer.acks if a.id in missing]
    assert not missing, (
        "acknowledged rows missing on the primary",
        sorted(missing),
        acks,
        [(j.state, j.result.get("detail")) for j in jobs],
    )


def test_a_primary_back_read_only_after_a_refused_failover_gets_its_writes_back(sandbox_factory):
    sandbox = sandbox_factory(3, semi_sync=True)
    cluster = register_cluster(
        sandbox, failover_mode="automatic", ignored_servers=[address(sandbox, 2), address(sandbox, 3)]
    )
    assert cluster.failover_armed
    tick_for(cluster, 1.5)
    sandbox.kill(1, signal.SIGKILL)
    tick_until(
        cluster,
        lambda: failover_jobs(cluster, state="refused"),
        timeout=30,
        message="the refused failover (no electable replica)",
    )
    sandbox.start(1)  # back with its configuration: read-only
    assert writable_nodes(sandbox) == []
    tick_until(cluster, lambda: writable_nodes(sandbox) == [1], timeout=30, message="writes reopened on it")
    assert Event.objects.filter(cluster=cluster, kind="writes_reopened").exists()
    assert [j.started_at for j in failover_jobs(cluster)] == [None]  # no failover ran
    sandbox.wait_replicating(timeout=30, primary=1)
