"""Benchmark: provisioning with the local provider, or the hosts provider.

    .venv/bin/python bench/provision.py [--runs 3] [--data-mb 200] [--provider local|hosts]

Uses a throwaway control-plane database (SQLite under a temporary DBPILOT_DATA_ROOT) and runs the jobs in
this process, through the same services the API calls. Prints, as the median of `--runs`:

- the time to provision a 1+2 semi-sync cluster: from the request to the job's end (healthy and armed),
  with each step's time;
- the time to add a replica to a cluster holding about `--data-mb` MB of rows, and the clone's
  throughput (mariadb-backup --stream into mbstream, MB/s).

With `--provider hosts` (root: ip netns), the servers go to a pool of four database hosts made of network
namespaces of this machine (zones a, b, c, a), each with its own agent worker, as
tests/integration/test_hosts_provider.py builds it: a 1+2 cluster takes three hosts, and the added replica
is cloned from one host's agent to the fourth host's agent over the pool's network.

Needs Redis (REDIS_URL, default database 0 on 127.0.0.1) and mariadbd; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def configure(data_root: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "controlplane.settings"
    os.environ["DEBUG"] = "1"
    os.environ["DBPILOT_DATA_ROOT"] = data_root
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DBPILOT_FAILOVER_RUNNER"] = "inline"
    os.environ.setdefault("DBPILOT_LOCAL_PORTS", "20600-20899")
    os.environ["DBPILOT_PROVIDERS"] = "local,hosts"
    os.environ.setdefault("DBPILOT_TEST_NETWORKS", "127.0.0.0/8,::1/128,10.231.0.0/16")
    os.environ["DBPILOT_ALLOWED_NETWORKS"] = os.environ["DBPILOT_TEST_NETWORKS"]
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


PROVIDER = "local"


def provision(team, name: str, replicas: int):
    from clusters.models import Job
    from clusters.services import provisioning

    request = provisioning.parse_request(
        team.tenant,
        {
            "name": name,
            "provision": {
                "provider": PROVIDER,
                "replicas": replicas,
                "master_user": {"user": "owner", "password": "bench-password-1"},
            },
        },
    )
    started = time.monotonic()
    cluster = provisioning.provision_cluster(team, request, requested_by="bench")  # inline: runs at commit
    elapsed = time.monotonic() - started
    job = Job.objects.filter(cluster=cluster, kind="provision").get()
    if job.state != "succeeded":
        raise SystemExit(f"provision job {job.id} {job.state}: {job.result.get('detail')}")
    return cluster, elapsed, job


def fill(cluster, megabytes: int) -> int:
    import pymysql

    from clusters.models import Server

    primary = Server.objects.get(pk=cluster.primary_id)
    rows = megabytes * 1000  # ~1 kB a row
    with (
        pymysql.connect(
            host=primary.host, port=primary.port, user="owner", password="bench-password-1", autocommit=True
        ) as conn,
        conn.cursor() as cursor,
    ):
        cursor.execute("CREATE DATABASE IF NOT EXISTS bench")
        cursor.execute("CREATE TABLE bench.rows (id INT PRIMARY KEY, body VARCHAR(1000)) ENGINE=InnoDB")
        batch = 20000
        for start in range(0, rows, batch):
            cursor.execute(
                f"INSERT INTO bench.rows SELECT seq, REPEAT(MD5(seq), 30) FROM bench.seq_{start + 1}_to_"
                f"{min(rows, start + batch)}"
            )
    return rows


def destroy(cluster, requested_by="bench") -> None:
    from clusters.models import Cluster
    from clusters.services import provisioning

    Cluster.objects.filter(pk=cluster.pk).update(settings={**cluster.settings, "deletion_protection": False})
    cluster.refresh_from_db()
    provisioning.delete_provisioned(cluster, requested_by=requested_by)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data-mb", type=int, default=200)
    parser.add_argument("--provider", choices=("local", "hosts"), default="local")
    args = parser.parse_args()
    global PROVIDER
    PROVIDER = args.provider
    with tempfile.TemporaryDirectory(prefix="dbpb-", dir="/tmp") as data_root:
        os.chmod(data_root, 0o755)
        configure(data_root)
        pool = None
        if PROVIDER == "hosts":
            from tests.integration.host_pool_helpers import HostPool

            pool = HostPool.create(["zone-a", "zone-b", "zone-c", "zone-a"])
        try:
            if pool is not None:
                pool.register_direct(capacity=2)
                pool.start_agents()
                print(f"hosts: {', '.join(f'{h.name} ({h.zone}, {h.address})' for h in pool.hosts)}")
            run_all(args)
        finally:
            if pool is not None:
                pool.destroy()


def run_all(args) -> None:
    from tenants.services import create_tenant

    team = create_tenant("bench", "ops", "bench@example.com", "bench-password-1", "admin").team
    times, steps = [], []
    for run in range(args.runs):
        cluster, elapsed, job = provision(team, f"p{run}", 2)
        times.append(elapsed)
        steps.append(job.result["timings_ms"])
        print(
            f"provision 1+2 run {run + 1}: {elapsed:.2f} s  "
            + ", ".join(f"{k} {v:.0f} ms" for k, v in job.result["timings_ms"].items())
        )
        destroy(cluster)
    print(f"provision 1+2: median {statistics.median(times):.2f} s over {args.runs} runs")

    cluster, _, _ = provision(team, "data", 1)
    cluster.refresh_from_db()
    try:
        measure_clones(cluster, args)
    finally:
        destroy(cluster)


def measure_clones(cluster, args) -> None:
    from clusters.models import Job, Server
    from clusters.services import provisioning

    rows = fill(cluster, args.data_mb)
    adds, rates, sizes = [], [], []
    for run in range(args.runs):
        started = time.monotonic()
        job = provisioning.add_replica(cluster, {}, requested_by="bench")
        elapsed = time.monotonic() - started
        job = Job.objects.get(pk=job.pk)
        if job.state != "succeeded":
            raise SystemExit(f"add_replica job {job.id} {job.state}: {job.result.get('detail')}")
        clone = job.result["clone"]
        adds.append(elapsed)
        rates.append(clone["mb_per_second"])
        sizes.append(clone["bytes"] / 1e6)
        print(
            f"add replica run {run + 1}: {elapsed:.2f} s, clone {clone['bytes'] / 1e6:.0f} MB in "
            f"{clone['seconds']:.2f} s = {clone['mb_per_second']} MB/s"
        )
        new = Server.objects.get(cluster=cluster, instance=job.result["provision"]["servers"][0]["instance"])
        provisioning.remove_replica(cluster, new, requested_by="bench")
    print(
        f"add a replica to a cluster holding {rows} rows (~{statistics.median(sizes):.0f} MB streamed): "
        f"median {statistics.median(adds):.2f} s, clone median {statistics.median(rates)} MB/s over {args.runs} runs"
    )


if __name__ == "__main__":
    main()
