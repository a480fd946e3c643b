"""Ticks spread over three tick workers, each on a host of its own (a network namespace), and a dead
worker's clusters taken over by the others: SIGKILL one mid-run and every cluster is ticked again within
the tick lease (DBPILOT_TICK_LOCK_SECONDS) plus a tick and a shard, and the tick period stays one second.

Real processes: one beat, three `celery -A controlplane worker -Q ticks` each in its own namespace
reaching Redis and the servers through the bridge, 30 clusters of 3 servers sharing three real MariaDB
servers at addresses of their own (as bench/monitor.py does). bench/tick_workers.py runs the same at
1,000 servers and prints the figures of docs/benchmarks.md."""

from __future__ import annotations

import signal
import statistics
import sys
import time
from pathlib import Path

import pytest
import redis

from clusters import hotstate
from clusters.models import Cluster, Server
from clusters.providers import LocalSandbox
from controlplane.crypto import encrypt_json
from tenants.models import Tenant
from tests.chaos.conftest import free_port, log_times
from tests.chaos.worker_hosts import (
    ROOT_ADDRESS,
    TickLog,
    WorkerHosts,
    alias,
    allow_from_hosts,
    private_redis,
    worker_pids,
)
from tests.services_plugin import ManagedProcess, wait_for, worker_environment

pytestmark = pytest.mark.django_db(transaction=True)

CLUSTERS = 30
SHARD_SIZE = 5
WORKERS = 3
SILENT_ADDRESS = alias(999)
CELERY = str(Path(sys.executable).parent / "celery")


def _answers(client) -> bool:
    try:
        return client.ping()
    except redis.RedisError:
        return False


@pytest.fixture
def tick_farm(settings):
    """Redis, three servers, three worker hosts; yields (hosts, redis port, admin credentials, addresses)."""
    hosts = WorkerHosts("chaostw", WORKERS)
    port = free_port()
    server = private_redis(port, "chaos-tick-workers-redis")
    sandbox = LocalSandbox("chaos-tw", 3, max_connections=1000, temporary=True, bind_address="0.0.0.0")
    try:
        wait_for(lambda: _answers(redis.Redis(port=port)), 10, message="redis-server")
        settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
        hotstate.client.cache_clear()
        hotstate._release_script.cache_clear()
        hotstate._extend_script.cache_clear()
        described = sandbox.up()
        allow_from_hosts(sandbox)
        yield hosts, port, described
    finally:
        sandbox.destroy()
        server.stop()
        hosts.destroy()
        hotstate.client.cache_clear()
        hotstate._release_script.cache_clear()
        hotstate._extend_script.cache_clear()


def _make_clusters(described: dict, count: int, silent: set[int] = frozenset()) -> list[int]:
    """`count` clusters of the three servers, cluster n at alias(n); in the clusters numbered in `silent`
    the last replica is at a silenced address instead (SILENT_ADDRESS): their shard's probes wait for it."""
    tenant = Tenant.objects.create(name="tick-workers")
    encrypted = encrypt_json(described["credentials"]["admin"])
    ports = [node["port"] for node in described["nodes"]]
    ids = []
    for number in range(count):
        addresses = [alias(number)] * 3
        if number in silent:
            addresses[2] = SILENT_ADDRESS
        cluster = Cluster.objects.create(tenant=tenant, name=f"tw{number}", credentials_encrypted=encrypted)
        Server.objects.bulk_create(
            [Server(cluster=cluster, host=a, port=p, ip=a) for a, p in zip(addresses, ports, strict=True)]
        )
        ids.append(cluster.id)
    return ids


def _shards_run(worker: ManagedProcess, since: float = 0.0) -> int:
    return len([t for t in log_times(worker.log_text(), "monitor_shard[", "succeeded") if t >= since])


def _locks_of(ids: list[int], pids: set[str]) -> set[int]:
    """The clusters whose tick lock a process of `pids` holds."""
    tokens = hotstate.client().mget([hotstate.tick_lock_key(cid) for cid in ids])
    return {cid for cid, t in zip(ids, tokens, strict=True) if t and t.decode().split(":")[1] in pids}


def test_a_dead_tick_workers_clusters_are_ticked_by_the_others_within_the_lease(tick_farm, settings):
    hosts, port, described = tick_farm
    lease = settings.DBPILOT_TICK_LOCK_SECONDS
    # One shard in six has a replica that does not answer: that shard's tick lasts a probe timeout,
    # so the kill below can be made to land while the victim holds its clusters' locks.
    hosts.silence(SILENT_ADDRESS)
    ids = _make_clusters(described, CLUSTERS, silent={0})
    env = worker_environment()
    env.update(DBPILOT_TICK_SHARD_SIZE=str(SHARD_SIZE), REDIS_URL=f"redis://{ROOT_ADDRESS}:{port}/0")
    workers = [
        ManagedProcess(
            f"chaos-tw-worker-{n}",
            hosts.command(
                n,
                [CELERY, "-A", "controlplane", "worker", "-Q", "ticks", "-c", "1", "-n", f"tw{n}@%h"]
                + ["--loglevel", "INFO", "--without-gossip", "--without-mingle"],
            ),
            env,
        )
        for n in range(WORKERS)
    ]
    beat_env = dict(env, REDIS_URL=f"redis://127.0.0.1:{port}/0")
    beat = ManagedProcess(
        "chaos-tw-beat", [CELERY, "-A", "controlplane", "beat", "--loglevel", "INFO"], beat_env
    )
    processes = [*workers, beat]
    try:
        for worker in workers:
            wait_for(lambda w=worker: " ready." in w.log_text(), 40, message=f"{worker.name}")
        started = time.time()
        ticks = TickLog(ids)
        deadline = time.monotonic() + 40
        while not ticks.all_ticked_since(started) and time.monotonic() < deadline:
            ticks.poll(1)
        assert ticks.all_ticked_since(started), "not every cluster ticked"
        steady_from = time.time()
        ticks.poll(6)

        # The load is spread: every worker, on its own host, ticked shards.
        shares = [_shards_run(w, steady_from) for w in workers]
        assert all(shares), f"shards run per worker {shares}"

        # Kill a worker in the middle of a tick: while it holds tick locks (their token names the pid).
        victim = workers[0]
        victim_pids = {str(pid) for pid in worker_pids(victim)}
        held = wait_for(
            lambda: _locks_of(ids, victim_pids), 30, interval=0.01, message="the victim to hold tick locks"
        )
        killed_at = time.time()
        victim.kill(signal.SIGKILL)
        orphaned = _locks_of(ids, victim_pids)  # still held by the dead worker: only their lease frees them
        ticks.poll(lease + 8)
        ended_at = time.time()

        gaps = ticks.gaps_across(killed_at)
        longest = max(gaps.values())
        before = ticks.intervals(steady_from, killed_at)
        after = ticks.intervals(killed_at + lease + 2, ended_at)
        late = sorted(round(g, 1) for g in gaps.values() if g > 1.5)
        taken_over = max(gaps[cid] for cid in orphaned) if orphaned else float("nan")
        print(
            f"\nkilled holding {len(held)} tick lock(s), {len(orphaned)} left behind; those clusters ticked "
            f"again {taken_over:.2f}s after their previous tick"
        )
        print(
            f"\n{CLUSTERS} clusters on {WORKERS} workers (one host each); shards run per worker {shares}; "
            f"tick period before the kill median {statistics.median(before):.2f}s, "
            f"after median {statistics.median(after):.2f}s; longest gap across the kill {longest:.2f}s "
            f"(lease {lease}s); clusters with a gap over 1.5s: {late}"
        )
        assert orphaned, "the kill landed after the victim's tick ended; nothing to take over"
        # Taken over within the lease, plus a tick (the next dispatch) and the shard's own time.
        assert longest <= lease + 2.5, gaps
        assert statistics.median(after) <= 1.3, "the two survivors did not keep the tick period"
        assert ticks.all_ticked_since(ended_at - 2), "a cluster stopped being ticked"
        assert all(_shards_run(w, killed_at + 1) for w in workers[1:]), "a survivor ran no shard"
    finally:
        for process in processes:
            process.stop()
