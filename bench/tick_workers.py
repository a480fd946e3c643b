"""Benchmark: ticks spread over tick workers on hosts of their own, and one of them killed.

Run (root: network namespaces): .venv/bin/python bench/tick_workers.py [--clusters 334] [--workers 3]
    [--concurrency 1] [--shard-size 25] [--seconds 20]
Starts a private Redis, three real MariaDB servers, one beat and N `celery -A controlplane worker -Q ticks`,
each worker in its own network namespace (a host of its own, reaching Redis and the servers through a
bridge); creates --clusters clusters of 3 servers, each reaching the shared servers at an address of its
own (as bench/monitor.py does), every one ticking each second. One cluster's last replica does not answer
(a silenced address), so its shard's tick lasts a probe timeout and the kill can land mid-tick.

Prints, for the steady run and for the run after one worker is SIGKILLed in the middle of a tick: the tick
period (each cluster's interval between consecutive ticks: median, p99), the share of intervals over 1.5 s
(missed ticks), the CPU the workers used per server-tick, and how long the clusters whose tick locks the
dead worker held went without a tick (the takeover).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(tempfile.gettempdir()) / "dbpilot-bench-tick-workers"
os.environ.update(
    DEBUG="1",
    DBPILOT_DATA_ROOT=str(DATA),
    DJANGO_SETTINGS_MODULE="controlplane.settings",
    DATABASE_URL=f"sqlite:///{DATA / 'dbpilot.sqlite3'}",
    DBPILOT_ALLOWED_NETWORKS="127.0.0.0/8,10.231.0.0/16",
    LOG_LEVEL="WARNING",
)
CELERY = str(Path(sys.executable).parent / "celery")


def main() -> int:
    parser = argparse.ArgumentParser(description="tick workers on several hosts")
    parser.add_argument("--clusters", type=int, default=334)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--shard-size", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=20.0, help="of each measured run")
    args = parser.parse_args()

    import redis

    from tests.chaos.conftest import free_port
    from tests.chaos.worker_hosts import (
        ROOT_ADDRESS,
        TickLog,
        WorkerHosts,
        alias,
        allow_from_hosts,
        private_redis,
        worker_pids,
    )
    from tests.services_plugin import ManagedProcess

    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "dbpilot.sqlite3").unlink(missing_ok=True)
    port = free_port()
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    hosts = WorkerHosts("benchtw", args.workers)
    server = private_redis(port, "bench-tick-workers-redis")
    processes: list[ManagedProcess] = []
    sandbox = None
    try:
        for _ in range(100):
            try:
                if redis.Redis(port=port).ping():
                    break
            except redis.RedisError:
                time.sleep(0.1)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from clusters import hotstate
        from clusters.models import Cluster, Server
        from clusters.providers import LocalSandbox
        from controlplane.crypto import encrypt_json
        from tenants.models import Tenant

        sandbox = LocalSandbox("bench-tw", 3, max_connections=5000, temporary=True, bind_address="0.0.0.0")
        described = sandbox.up()
        allow_from_hosts(sandbox)
        silent = alias(999)
        hosts.silence(silent)
        tenant = Tenant.objects.create(name="bench")
        encrypted = encrypt_json(described["credentials"]["admin"])
        ports = [n["port"] for n in described["nodes"]]
        ids = []
        for number in range(args.clusters):
            addresses = [alias(number)] * 3
            if number == 0:
                addresses[2] = silent
            cluster = Cluster.objects.create(
                tenant=tenant, name=f"c{number}", credentials_encrypted=encrypted
            )
            Server.objects.bulk_create(
                [Server(cluster=cluster, host=a, port=p, ip=a) for a, p in zip(addresses, ports, strict=True)]
            )
            ids.append(cluster.id)

        env = dict(os.environ, DBPILOT_TICK_SHARD_SIZE=str(args.shard_size))
        workers = [
            ManagedProcess(
                f"bench-tw-worker-{n}",
                hosts.command(
                    n,
                    [CELERY, "-A", "controlplane", "worker", "-Q", "ticks", "-c", str(args.concurrency)]
                    + ["-n", f"tw{n}@%h", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
                ),
                dict(env, REDIS_URL=f"redis://{ROOT_ADDRESS}:{port}/0"),
            )
            for n in range(args.workers)
        ]
        processes += workers
        processes.append(
            ManagedProcess(
                "bench-tw-beat", [CELERY, "-A", "controlplane", "beat", "--loglevel", "WARNING"], env
            )
        )
        ticks = TickLog(ids)
        started = time.time()
        while not ticks.all_ticked_since(started) and time.time() < started + 120:
            ticks.poll(1)
        print(
            f"every cluster ticked {time.time() - started:.1f} s after the start (connections open)",
            file=sys.stderr,
        )
        ticks.poll(5)  # settle: the first ticks open every connection

        cpu = _ProcessCpu([pid for w in workers for pid in worker_pids(w)])
        admin = redis.Redis(port=port)
        commands0 = _redis_commands(admin)
        steady_from, cpu0 = time.time(), cpu.seconds()
        ticks.poll(args.seconds)
        steady_to = time.time()
        commands = _redis_commands(admin) - commands0
        steady_cpu = (cpu.seconds() - cpu0) / (len(ids) * 3 * (steady_to - steady_from))
        intervals = ticks.intervals(steady_from, steady_to)
        _report("steady", intervals, len(ids), args, steady_cpu)
        cluster_ticks = len(intervals) + len(ids)
        sample = ids[len(ids) // 2]
        history = hotstate.history_key(sample, "1h")
        entries = admin.llen(history) or 1
        print(
            f"  Redis: {commands / cluster_ticks:.1f} commands per cluster-tick "
            f"({commands / (steady_to - steady_from):.0f} per second here, the poller's MGETs included); "
            f"a cluster's keys: topology {admin.memory_usage(f'dbpilot:cluster:{sample}:topology') or 0} B, "
            f"state {admin.memory_usage(f'dbpilot:cluster:{sample}:state') or 0} B, 1-hour history "
            f"{(admin.memory_usage(history) or 0) / entries:.0f} B per entry ({entries} entries now; 3,600 at "
            f"a full hour of 1 s ticks); used_memory {admin.info('memory')['used_memory'] / len(ids) / 1024:.1f} KiB "
            f"per cluster after {steady_to - started:.0f} s"
        )

        victim = workers[0]
        victim_pids = {str(pid) for pid in worker_pids(victim)}
        deadline = time.time() + 60
        while time.time() < deadline and not _locks_of(hotstate, ids, victim_pids):
            time.sleep(0.005)
        killed_at = time.time()
        victim.kill(signal.SIGKILL)
        orphaned = _locks_of(hotstate, ids, victim_pids)
        survivors = _ProcessCpu([pid for w in workers[1:] for pid in worker_pids(w)])
        ticks.poll(5)
        after_from, cpu0 = time.time(), survivors.seconds()
        ticks.poll(args.seconds)
        after_to = time.time()
        after_cpu = (survivors.seconds() - cpu0) / (len(ids) * 3 * (after_to - after_from))
        _report(
            f"after killing 1 of {args.workers}",
            ticks.intervals(after_from, after_to),
            len(ids),
            args,
            after_cpu,
        )
        gaps = ticks.gaps_across(killed_at)
        taken = [gaps[cid] for cid in orphaned]
        lease = float(os.environ.get("DBPILOT_TICK_LOCK_SECONDS", 3))
        print(
            f"  takeover: the dead worker held {len(orphaned)} clusters' tick locks; they were ticked again "
            f"{max(taken, default=float('nan')):.2f} s after their previous tick (lease {lease:.0f} s); "
            f"longest gap of any cluster across the kill {max(gaps.values()):.2f} s; "
            f"load average {os.getloadavg()[0]:.2f}"
        )
    finally:
        for process in processes:
            process.stop()
        if sandbox is not None:
            sandbox.destroy()
        server.stop()
        hosts.destroy()
    return 0


def _report(label: str, intervals: list[float], clusters: int, args, cpu_per_server_tick: float) -> None:
    from tests.chaos.worker_hosts import percentile

    missed = sum(1 for i in intervals if i > 1.5) / max(1, len(intervals))
    print(
        f"{label}: {clusters} clusters / {clusters * 3} servers on {args.workers if label == 'steady' else args.workers - 1} "
        f"workers x {args.concurrency} (shard {args.shard_size}): tick period median "
        f"{statistics.median(intervals):.2f} s, p99 {percentile(intervals, 0.99):.2f} s, max {max(intervals):.2f} s; "
        f"intervals over 1.5 s: {missed:.1%}; worker CPU {cpu_per_server_tick * 1e6:.0f} us per server-tick"
    )


def _redis_commands(admin) -> int:
    return sum(v["calls"] for k, v in admin.info("commandstats").items() if k.startswith("cmdstat_"))


def _locks_of(hotstate, ids: list[int], pids: set[str]) -> set[int]:
    tokens = hotstate.client().mget([hotstate.tick_lock_key(cid) for cid in ids])
    return {cid for cid, t in zip(ids, tokens, strict=True) if t and t.decode().split(":")[1] in pids}


class _ProcessCpu:
    def __init__(self, pids):
        self.pids = list(pids)

    def seconds(self) -> float:
        total = 0
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    sys.exit(main())
