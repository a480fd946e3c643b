"""Benchmark: repair without a DBA.

    .venv/bin/python bench/repair.py [--runs 3] [--data-mb 200]

Uses a throwaway control-plane database (SQLite under a temporary DBPILOT_DATA_ROOT); ticks and jobs run
in this process (the runner `inline`), through the same services the API and the workers call.

- Flashback rejoin after a freeze: a local 3-node semi-sync sandbox, registered with
  `failover_mode: automatic`, `semi_sync_on_timeout: wait`, `rejoin_method: flashback`. A writer runs; the
  primary is frozen (SIGSTOP) until dbpilot fails over, then resumed (SIGCONT) holding transactions it
  never sent (those in flight, plus ten rows written on it directly so every run has some). Printed: the
  time from SIGCONT to the rejoin job's end (fenced, flashed back, replicating again), the rejoin job's
  own time, and its flashback steps.
- Rebuild of a replica: a provisioned 1+2 cluster (local provider) holding about `--data-mb` MB of rows;
  a replica is rebuilt (wiped, cloned from the other replica, replicating again). Printed: the job's time
  and the clone's throughput.

Medians of `--runs`. Needs Redis (REDIS_URL, default database 0 on 127.0.0.1) and mariadbd; asserts nothing.
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


def configure(data_root: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "controlplane.settings"
    os.environ["DEBUG"] = "1"
    os.environ["DBPILOT_DATA_ROOT"] = data_root
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DBPILOT_FAILOVER_RUNNER"] = "inline"
    os.environ.setdefault("DBPILOT_LOCAL_PORTS", "20900-21199")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def wait(predicate, timeout: float, what: str, tick_cluster_id: int | None = None):
    from clusters.services.monitoring import tick_cluster

    deadline = time.monotonic() + timeout
    while True:
        if tick_cluster_id is not None:
            tick_cluster(tick_cluster_id)
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def register(created, sandbox, name: str):
    from clusters.models import Cluster
    from clusters.services import registration

    described = sandbox.describe()
    payload = {
        "name": name,
        "servers": [{"host": n["host"], "port": n["port"]} for n in described["nodes"]],
        "credentials": described["credentials"]["admin"],
        "replication_credentials": described["credentials"]["replication"],
        "settings": {
            "failover_mode": "automatic",
            "semi_sync_on_timeout": "wait",
            "rejoin_method": "flashback",
        },
    }
    parsed = registration.parse_request(created.tenant, payload)
    cluster = registration.register_cluster(
        created.team, parsed, registration.check_servers_answer(parsed), requested_by="bench"
    )
    wait(lambda: Cluster.objects.get(pk=cluster.pk).failover_armed, 60, "the adopt job")
    return Cluster.objects.get(pk=cluster.pk)


def flashback_run(created, number: int) -> dict:
    from clusters.models import Job
    from clusters.providers import LocalSandbox
    from tests.writer import Writer

    with LocalSandbox(f"rb{os.getpid() % 10000}{number}", 3, temporary=True, semi_sync=True) as sandbox:
        sandbox.up()
        cluster = register(created, sandbox, f"flash{number}")
        sandbox.sql(1, "CREATE TABLE app.bench_probe (id INT PRIMARY KEY, note VARCHAR(80))")
        app = sandbox.accounts.app
        addresses = [f"{sandbox.host(n)}:{sandbox.port(n)}" for n in sandbox.nodes]
        writer = Writer(addresses, app.user, app.password, read_timeout=1.0).start()
        try:
            writer.wait_for_acks(50)
            from clusters.services.monitoring import tick_cluster

            for _ in range(10):  # healthy ticks first: the election reads the replicas' last lag
                tick_cluster(cluster.pk)
                time.sleep(0.1)
            sandbox.kill(1, signal.SIGSTOP)
            try:
                failover = wait(
                    lambda: (
                        Job.objects.filter(cluster=cluster, kind="failover")
                        .exclude(state__in=("pending", "running"))
                        .first()
                    ),
                    60,
                    "the failover",
                    cluster.pk,
                )
                if failover.state != "succeeded":
                    raise SystemExit(f"failover job {failover.id} {failover.state}: {failover.result}")
            finally:
                writer.stop()
                sandbox.kill(1, signal.SIGCONT)
        finally:
            writer.stop()
        resumed = time.monotonic()
        sandbox.sql(1, "SET GLOBAL rpl_semi_sync_master_enabled=0")
        for i in range(10):
            sandbox.sql(1, "INSERT INTO app.bench_probe VALUES (%s, 'never replicated')", (i,))
        job = wait(
            lambda: Job.objects.filter(
                cluster=cluster, kind="rejoin", state__in=("succeeded", "failed", "refused")
            ).first(),
            120,
            "the rejoin",
            cluster.pk,
        )
        elapsed = time.monotonic() - resumed
        if job.state != "succeeded":
            raise SystemExit(f"rejoin job {job.id} {job.state}: {job.result.get('detail')}")
        from clusters.services.registration import delete_cluster

        delete_cluster(cluster)  # its addresses are reused by the next run's sandbox
        flashback = job.result["rejoin"]["flashback"]
        steps = {k: v for k, v in job.result["timings_ms"].items() if k.startswith("flashback")}
        return {
            "seconds": elapsed,
            "job_ms": job.result.get("total_ms", 0.0),
            "discarded": len(flashback["discarded"]),
            "row_events": flashback["row_events"],
            "steps": steps,
        }


def provision(team, name: str):
    from clusters.models import Cluster, Job
    from clusters.services import provisioning

    request = provisioning.parse_request(
        team.tenant,
        {
            "name": name,
            "provision": {
                "provider": "local",
                "replicas": 2,
                "master_user": {"user": "owner", "password": "bench-password-1"},
            },
        },
    )
    cluster = provisioning.provision_cluster(team, request, requested_by="bench")
    job = Job.objects.filter(cluster=cluster, kind="provision").get()
    if job.state != "succeeded":
        raise SystemExit(f"provision job {job.id} {job.state}: {job.result.get('detail')}")
    return Cluster.objects.get(pk=cluster.pk)


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
        for start in range(0, rows, 20000):
            cursor.execute(
                f"INSERT INTO bench.rows SELECT seq, REPEAT(MD5(seq), 30) FROM bench.seq_{start + 1}_to_"
                f"{min(rows, start + 20000)}"
            )
    return rows


def rebuild_runs(team, args) -> list[dict]:
    from clusters.models import Cluster, Job, Server
    from clusters.services import provisioning, repair

    cluster = provision(team, "rebuild")
    rows = fill(cluster, args.data_mb)
    out = []
    try:
        for run in range(args.runs):
            replica = (
                Server.objects.filter(cluster=cluster).exclude(pk=cluster.primary_id).order_by("id").last()
            )
            started = time.monotonic()
            job = repair.request_rebuild(cluster, replica, requested_by="bench")  # inline: runs here
            elapsed = time.monotonic() - started
            job = Job.objects.get(pk=job.pk)
            if job.state != "succeeded":
                raise SystemExit(f"rebuild job {job.id} {job.state}: {job.result.get('detail')}")
            clone = job.result["clone"]
            out.append({"seconds": elapsed, "mb": clone["bytes"] / 1e6, "rate": clone["mb_per_second"]})
            print(
                f"rebuild run {run + 1}: {elapsed:.2f} s, clone {clone['bytes'] / 1e6:.0f} MB in "
                f"{clone['seconds']:.2f} s = {clone['mb_per_second']} MB/s ({rows} rows)"
            )
    finally:
        Cluster.objects.filter(pk=cluster.pk).update(
            settings={**cluster.settings, "deletion_protection": False}
        )
        cluster.refresh_from_db()
        provisioning.delete_provisioned(cluster, requested_by="bench")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data-mb", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dbpr-", dir="/tmp") as data_root:
        os.chmod(data_root, 0o755)
        configure(data_root)
        from tenants.services import create_tenant

        created = create_tenant("bench", "ops", "bench@example.com", "bench-password-1", "admin")
        flash = []
        for run in range(args.runs):
            row = flashback_run(created, run)
            flash.append(row)
            print(
                f"flashback run {run + 1}: SIGCONT -> rejoined {row['seconds']:.2f} s (job {row['job_ms']:.0f} ms; "
                f"{row['discarded']} trx, {row['row_events']} row events rolled back; "
                + ", ".join(f"{k} {v:.0f} ms" for k, v in row["steps"].items())
                + ")"
            )
        print(
            f"flashback rejoin after a freeze: median {statistics.median(r['seconds'] for r in flash):.2f} s "
            f"from SIGCONT, job median {statistics.median(r['job_ms'] for r in flash):.0f} ms over {args.runs} runs"
        )
        rebuilt = rebuild_runs(created.team, args)
        print(
            f"rebuild a replica (~{statistics.median(r['mb'] for r in rebuilt):.0f} MB streamed): median "
            f"{statistics.median(r['seconds'] for r in rebuilt):.2f} s, clone median "
            f"{statistics.median(r['rate'] for r in rebuilt)} MB/s over {args.runs} runs"
        )


if __name__ == "__main__":
    main()
