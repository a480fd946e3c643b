"""Benchmark: the CPU cost of monitoring.

Run: .venv/bin/python bench/monitor.py [--clusters 334] [--rounds 5]
Prints:
  - probes per second per core (one thread probing real local servers back to back; CPU time measured),
    for the probe every tick sends and for the one that also reads the costlier details (about every 10 s
    per connection);
  - the wall time of one tick of a 3-server cluster (in-process, median of 20);
  - the wall time of one tick of N clusters of 3 servers, through a real Celery worker (prefork,
    concurrency 2 = this machine's cores) consuming the ticks queue: from dispatch until every cluster
    has a fresh observation (median of --rounds). Target: 1,000 servers in under 1 s.
As the issue allows, the N clusters are created directly through the models and point at the same three
real servers (whose max_connections the sandbox raises), so connections are shared more than in a real
deployment; every tick still runs every probe and the whole analysis.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(tempfile.gettempdir()) / "dbpilot-bench-monitor"
os.environ.update(
    DEBUG="1",
    DBPILOT_DATA_ROOT=str(DATA),
    DJANGO_SETTINGS_MODULE="controlplane.settings",
    REDIS_URL=os.environ.get("BENCH_REDIS_URL", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")),
    LOG_LEVEL="WARNING",
)


WARMUP_ROUNDS = 2


def main() -> int:
    parser = argparse.ArgumentParser(description="monitoring CPU cost")
    parser.add_argument("--clusters", type=int, default=334)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import django

    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "dbpilot.sqlite3").unlink(missing_ok=True)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from django.conf import settings

    from clusters import hotstate
    from clusters.adapters.mysql import ConnectOptions, Credentials
    from clusters.adapters.probe import probe_server
    from clusters.models import Cluster, Server
    from clusters.providers import LocalSandbox
    from clusters.services.monitoring import due_shards, tick_cluster
    from controlplane.crypto import encrypt_json
    from tenants.models import Tenant

    hotstate.client().flushdb()
    # The servers listen on every loopback address: each benchmark cluster reaches them at an address of
    # its own (127.0.x.y), since one address is one server of one cluster.
    sandbox = LocalSandbox("bench-mon", 3, max_connections=2000, temporary=True, bind_address="0.0.0.0")
    worker = None
    try:
        described = sandbox.up()
        admin = described["credentials"]["admin"]
        addresses = [n["address"] for n in described["nodes"]]

        # 1. probes per second per core
        creds = Credentials(admin["user"], admin["password"])
        servers = _ProcessCpu([sandbox._processes[node].pid for node in sandbox.nodes])
        for details in (False, True):
            for _ in range(20):
                probe_server(addresses[1], creds, ConnectOptions(), details=details)
            n = 2000
            cpu0, wall0, server0 = time.process_time(), time.perf_counter(), servers.seconds()
            for i in range(n):
                probe_server(addresses[i % 3], creds, ConnectOptions(), details=details)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            server_cpu = servers.seconds() - server0
            print(
                f"probe {'with details' if details else 'every tick  '}: {n / cpu:.0f} probes per CPU-second (one core), "
                f"mariadbd {server_cpu / n * 1e6:.0f} us CPU per probe; {wall / n * 1000:.2f} ms wall per probe in sequence"
            )

        # 2. one tick of one 3-server cluster
        tenant = Tenant.objects.create(name="bench")
        encrypted = encrypt_json(admin)
        host_ports = [(n["host"], n["port"]) for n in described["nodes"]]

        aliases = iter(range(1, 60000))

        def make_cluster(name: str) -> Cluster:
            number = next(aliases)
            alias = f"127.0.{number // 250}.{number % 250 + 2}"
            cluster = Cluster.objects.create(tenant=tenant, name=name, credentials_encrypted=encrypted)
            Server.objects.bulk_create(
                [Server(cluster=cluster, host=alias, port=p, ip=alias) for _, p in host_ports]
            )
            return cluster

        single = make_cluster("single")
        tick_cluster(single.id)
        times = []
        for _ in range(20):
            started = time.perf_counter()
            tick_cluster(single.id)
            times.append(time.perf_counter() - started)
        print(
            f"tick of 1 cluster of 3 servers: median {statistics.median(times) * 1000:.1f} ms, "
            f"max {max(times) * 1000:.1f} ms (in-process)"
        )
        single.delete()

        # 3. one tick of N clusters through a real worker
        ids = [make_cluster(f"c{i}").id for i in range(args.clusters)]
        env = dict(os.environ)
        worker = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "celery"),
                "-A",
                "controlplane",
                "worker",
                "-Q",
                "ticks",
                "--concurrency",
                "2",
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "-n",
                "bench@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=open(DATA / "worker.log", "w"),
            stderr=subprocess.STDOUT,
        )
        from workers.tasks import monitor_shard

        time.sleep(4)
        workers = _ProcessCpu(_children(worker.pid))
        walls, worker_cpu, server_cpu = [], [], []
        for round_no in range(args.rounds + WARMUP_ROUNDS):
            for cid in ids:
                hotstate.client().delete(f"dbpilot:cluster:{cid}:dispatched")
            worker0, server0 = workers.seconds(), servers.seconds()
            started_at = time.time()
            shards = due_shards(settings.DBPILOT_TICK_SHARD_SIZE)
            for shard in shards:
                monitor_shard.apply_async(args=[shard], expires=30.0)
            deadline = time.time() + 60
            waiting, latest = set(ids), started_at
            while waiting and time.time() < deadline:
                time.sleep(0.1)
                snapshots = hotstate.read_topologies(sorted(waiting))
                for cid, snapshot in snapshots.items():
                    observed = _ts(snapshot["updated_at"])
                    if observed >= started_at:
                        waiting.discard(cid)
                        latest = max(latest, observed)
            wall = latest - started_at
            if waiting:
                print(
                    f"  round {round_no}: only {len(ids) - len(waiting)} of {len(ids)} clusters ticked within 60 s",
                    file=sys.stderr,
                )
            if round_no < WARMUP_ROUNDS:  # connections, and the primary watch's, open in these
                print(f"  warm-up round {round_no + 1}: {wall:.2f} s", file=sys.stderr)
            else:
                walls.append(wall)
                n_servers = len(ids) * 3
                worker_cpu.append((workers.seconds() - worker0) / n_servers * 1e6)
                server_cpu.append((servers.seconds() - server0) / n_servers * 1e6)
                print(
                    f"  round {round_no - WARMUP_ROUNDS + 1}: {len(ids)} clusters / {n_servers} servers ticked in {wall:.2f} s "
                    f"({len(shards)} shards); CPU per server: worker {worker_cpu[-1]:.0f} us, "
                    f"mariadbd {server_cpu[-1]:.0f} us",
                    file=sys.stderr,
                )
            time.sleep(1.0)
        print(
            f"tick of {len(ids)} clusters ({len(ids) * 3} servers) through a worker (concurrency 2): "
            f"median {statistics.median(walls):.2f} s, max {max(walls):.2f} s (target < 1 s for 1,000 servers); "
            f"CPU per server-tick: worker {statistics.median(worker_cpu):.0f} us, "
            f"mariadbd {statistics.median(server_cpu):.0f} us; load average {os.getloadavg()[0]:.2f}"
        )
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(10)
        sandbox.destroy()
    return 0


class _ProcessCpu:
    """User + system CPU seconds of some processes (all their threads), from /proc."""

    def __init__(self, pids: list[int]):
        self.pids = pids

    def seconds(self) -> float:
        total = 0
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    """The Celery pool processes of a worker (its children), and the worker itself."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = Path(f"/proc/{pid}/task/{task.name}/children")
        if children.exists():
            found += [int(p) for p in children.read_text().split()]
    return found


def _ts(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


if __name__ == "__main__":
    sys.exit(main())
