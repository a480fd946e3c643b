"""Redis through Sentinel: dbpilot's worker and two beats run with `REDIS_URL=sentinel://...` (a real
master, a replica and three Debian redis-sentinel processes on loopback). The Redis master is SIGKILLed;
Sentinel promotes the replica; monitoring resumes by itself on the new master, the cluster (healthy,
automatic failover armed) is not failed over because dbpilot lost its state, and no HA job runs twice."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import time
from datetime import datetime

import pytest
import redis
from channels_redis.pubsub import RedisPubSubChannelLayer

from clusters import hotstate
from clusters.models import Job
from controlplane import redisconf
from tenants.models import PlatformFinding
from tenants.platform_health import REDIS_UNREACHABLE
from tests.chaos.sentinel_redis import SentinelRedis
from tests.integration.failover_helpers import register_cluster, writable_nodes
from tests.services_plugin import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sentinel_redis(tmp_path):
    if not shutil.which("redis-sentinel"):
        pytest.fail("redis-sentinel is not installed (scripts/setup.sh --tests installs it)")
    setup = SentinelRedis(tmp_path)
    try:
        wait_for(setup.replica_in_sync, 20, message="the replica to sync with the master")
        wait_for(setup.sentinels_know_the_replica, 20, message="every Sentinel to know the replica")
        yield setup
    finally:
        setup.stop()
        # The tests point settings.REDIS_URL here for a while: no cached client may keep it afterwards.
        hotstate.client.cache_clear()
        hotstate._release_script.cache_clear()


def _updated_at(client: redis.Redis, cluster_id: int) -> float | None:
    try:
        raw = client.get(f"dbpilot:cluster:{cluster_id}:topology")
    except redis.RedisError:
        return None
    return datetime.fromisoformat(json.loads(raw)["updated_at"]).timestamp() if raw else None


async def _roundtrip(layer, text: str) -> str:
    channel = await layer.new_channel()
    await layer.group_add("chaos", channel)
    await layer.group_send("chaos", {"type": "chaos.message", "text": text})
    message = await asyncio.wait_for(layer.receive(channel), 3)
    await layer.group_discard("chaos", channel)
    return message["text"]


def _channels_roundtrip(loop, layer, text: str, timeout: float) -> str:
    """A group message through the Channels layer, retried while it cannot get through."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return loop.run_until_complete(_roundtrip(layer, text))
        except (TimeoutError, redis.RedisError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_a_sentinel_failover_of_redis_is_survived_without_failing_over_a_healthy_cluster(
    sandbox_cluster, sentinel_redis, dbpilot_processes, settings
):
    settings.DBPILOT_FAILOVER_RUNNER = "inline"  # the adopt job, in this process
    cluster = register_cluster(sandbox_cluster, "sentinel", failover_mode="automatic")
    assert cluster.failover_armed
    settings.REDIS_URL = sentinel_redis.url  # the processes started below use it
    hot = redisconf.client(redisconf.parse(sentinel_redis.url), socket_timeout=1, socket_connect_timeout=1)
    worker = dbpilot_processes(name="chaos-sentinel-worker", concurrency=2)  # every queue
    for n in (1, 2):
        dbpilot_processes("beat", name=f"chaos-sentinel-beat-{n}")
    wait_for(lambda: " ready." in worker.log_text(), 30, message="the worker")
    wait_for(
        lambda: (_updated_at(hot, cluster.id) or 0) > time.time() - 2,
        30,
        message="monitoring through Sentinel",
    )
    cluster.refresh_from_db()
    primary_before = cluster.primary_id
    assert primary_before is not None  # the first ticks observed it
    # The Channels layer as settings build it from the sentinel:// URL (what daphne uses for live updates).
    loop = asyncio.new_event_loop()
    layer = RedisPubSubChannelLayer(hosts=[redisconf.channel_host(redisconf.parse(sentinel_redis.url))])
    assert _channels_roundtrip(loop, layer, "before", 10) == "before"
    jobs_before = list(Job.objects.filter(cluster=cluster).values_list("id", "kind", "state", "attempts"))

    killed_at = time.time()
    sentinel_redis.processes["master"].kill(signal.SIGKILL)
    wait_for(
        lambda: sentinel_redis.master_port() == sentinel_redis.ports["replica"],
        30,
        interval=0.2,
        message="Sentinel to promote the replica",
    )
    promoted_at = time.time()
    wait_for(
        lambda: (_updated_at(hot, cluster.id) or 0) > promoted_at + 1,
        30,
        interval=0.2,
        message="monitoring to resume on the new master",
    )
    resumed_at = time.time()
    assert _channels_roundtrip(loop, layer, "after", 20) == "after"  # the same layer, on the new master
    loop.run_until_complete(layer.flush())
    loop.close()
    print(
        f"Redis master killed; Sentinel promoted the replica after {promoted_at - killed_at:.1f}s; "
        f"monitoring resumed {resumed_at - promoted_at:.1f}s later"
    )

    deadline = time.time() + 6  # and keeps going, with no action taken on the healthy cluster
    while time.time() < deadline:
        assert writable_nodes(sandbox_cluster) == [1], (
            "the healthy primary must stay the only writable server"
        )
        time.sleep(0.3)
    assert (_updated_at(hot, cluster.id) or 0) > time.time() - 3, "monitoring stopped again"
    jobs_after = list(Job.objects.filter(cluster=cluster).values_list("id", "kind", "state", "attempts"))
    assert jobs_after == jobs_before, "a job started, or one ran again, because Redis failed over"
    assert not Job.objects.filter(cluster=cluster, kind="failover").exists()
    assert all(attempts <= 1 for _, _, _, attempts in jobs_after)
    cluster.refresh_from_db()
    assert cluster.primary_id == primary_before
    # If a beat saw Redis down it opened REDIS_UNREACHABLE; it is resolved now that Redis answers.
    wait_for(
        lambda: not PlatformFinding.objects.filter(code=REDIS_UNREACHABLE, resolved_at__isnull=True).exists(),
        10,
        message="REDIS_UNREACHABLE to be resolved",
    )
    from tenants.platform_health import health

    status = health()
    assert status["redis"]["ok"] and status["redis"]["sentinel"] and status["automatic_actions"] == "allowed"


def test_a_primary_lost_while_redis_fails_over_is_failed_over_once(
    sandbox_factory, sentinel_redis, dbpilot_processes, settings
):
    """The MariaDB primary is SIGKILLed and, as soon as its failover job exists, so is the Redis master:
    the job's queue message and the workers' locks may be lost with it. The database's job claim decides:
    exactly one failover job, which ends succeeded, and never two writable servers."""
    sandbox = sandbox_factory(3)
    settings.DBPILOT_FAILOVER_RUNNER = "inline"  # the adopt job, in this process
    cluster = register_cluster(sandbox, "sentinel-fo", failover_mode="automatic")
    assert cluster.failover_armed
    settings.DBPILOT_FAILOVER_RUNNER = None
    settings.REDIS_URL = sentinel_redis.url
    hot = redisconf.client(redisconf.parse(sentinel_redis.url), socket_timeout=1, socket_connect_timeout=1)
    worker = dbpilot_processes(name="chaos-sentinel-fo-worker", concurrency=2)  # every queue
    for n in (1, 2):
        dbpilot_processes("beat", name=f"chaos-sentinel-fo-beat-{n}")
    wait_for(lambda: " ready." in worker.log_text(), 30, message="the worker")
    wait_for(
        lambda: (_updated_at(hot, cluster.id) or 0) > time.time() - 2,
        30,
        message="monitoring through Sentinel",
    )

    sandbox.kill(1, signal.SIGKILL)
    job = wait_for(
        lambda: Job.objects.filter(cluster=cluster, kind="failover").first(),
        30,
        interval=0.05,
        message="the failover job",
    )
    sentinel_redis.processes["master"].kill(signal.SIGKILL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert len(writable_nodes(sandbox)) <= 1, "two writable servers"
        job.refresh_from_db()
        if job.state not in ("pending", "running"):
            break
        time.sleep(0.2)
    assert job.state == "succeeded", (job.state, job.result.get("detail"), worker.log_text()[-3000:])
    assert Job.objects.filter(cluster=cluster, kind="failover").count() == 1
    writable = writable_nodes(sandbox)
    assert len(writable) == 1 and writable[0] in (2, 3)
    print(
        f"failover job {job.id}: {job.state} after {job.attempts} attempt(s); Redis master at "
        f"{sentinel_redis.master_port()} (replica was {sentinel_redis.ports['replica']})"
    )
