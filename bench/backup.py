"""Benchmark: backup and restore throughput, and the binlog archive's RPO.

    .venv/bin/python bench/backup.py [--data-mb 200] [--interval 5] [--rpo-seconds 60] [--incompressible]

Uses a throwaway control-plane database (SQLite under a temporary DBPILOT_DATA_ROOT), the directory
storage under it, and runs the jobs in this process through the services the API calls. Prints:

- backup: a 1+1 cluster holding about --data-mb MB of rows backed up from its replica (mariadb-backup
  --stream through zstd and AES-GCM to storage): raw MB/s of the stream, the stored size, the job's total
  time with its verification (a test restore into a scratch server);
- restore: that backup restored into a new single-server cluster (fetch, check, decrypt, decompress,
  mbstream, prepare, start): MB/s of the restore_primary step and the job's total time;
- archiving RPO: a writer commits a row every 0.1 s while this process runs an archiving round every
  --interval seconds (as beat does); for each commit, the seconds until the binlog file holding it was in
  storage; p50, p99 and max.

Needs Redis (REDIS_URL) and mariadbd; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.provision import configure, destroy, fill, provision  # noqa: E402
from bench.switchover import percentile  # noqa: E402


def fill_random(cluster, megabytes: int) -> int:
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
        cursor.execute("CREATE TABLE bench.rows (id INT PRIMARY KEY, body VARBINARY(1024)) ENGINE=InnoDB")
        for start in range(0, rows, 20000):
            cursor.execute(
                f"INSERT INTO bench.rows SELECT seq, RANDOM_BYTES(1000) FROM bench.seq_{start + 1}_to_"
                f"{min(rows, start + 20000)}"
            )
    return rows


def measure_backup(cluster):
    from clusters.backup_models import Backup
    from clusters.models import Job
    from clusters.services import backups

    started = time.monotonic()
    job = backups.request_backup(cluster, requested_by="bench")
    total = time.monotonic() - started
    job = Job.objects.get(pk=job.pk)
    if job.state != "succeeded":
        raise SystemExit(f"backup job {job.id} {job.state}: {job.result.get('detail')}")
    backup = Backup.objects.get(pk=job.result["backup_id"])
    stream = job.result["backup"]
    print(
        f"backup: {backup.raw_bytes / 1e6:.0f} MB streamed in {stream['seconds']:.1f} s = "
        f"{stream['mb_per_second']} MB/s, stored {backup.size_bytes / 1e6:.0f} MB (zstd, encrypted); "
        f"job with verification {total:.1f} s (stream {job.result['timings_ms']['stream_to_storage'] / 1000:.1f} s, "
        f"verify {job.result['timings_ms']['verify_backup'] / 1000:.1f} s), verified={backup.verified}"
    )
    return backup


def measure_restore(team, backup):
    from clusters.models import Cluster, Job
    from clusters.services import backups

    parsed = backups.parse_restore(
        team.tenant,
        backup.cluster_ref,
        {"name": "restored", "backup": backup.pk, "provision": {"replicas": 0}},
    )
    started = time.monotonic()
    cluster = backups.restore_cluster(team, parsed, requested_by="bench")  # inline: runs at commit
    total = time.monotonic() - started
    job = Job.objects.filter(cluster=cluster, kind="restore").get()
    if job.state != "succeeded":
        raise SystemExit(f"restore job {job.id} {job.state}: {job.result.get('detail')}")
    step = job.result["timings_ms"]["restore_primary"] / 1000
    print(
        f"restore: {backup.raw_bytes / 1e6:.0f} MB into a new server in {step:.1f} s = "
        f"{backup.raw_bytes / 1e6 / step:.1f} MB/s (fetch, sha256, decrypt, zstd, mbstream, prepare); "
        f"whole restore job {total:.1f} s"
    )
    return Cluster.objects.get(pk=cluster.pk)


def measure_rpo(cluster, interval: float, seconds: float) -> None:
    import pymysql

    from clusters.backup_models import BinlogArchive
    from clusters.domain.backup_plan import position
    from clusters.models import Server
    from clusters.services import binlog_archive

    primary = Server.objects.get(pk=cluster.primary_id)
    commits: list[tuple[int, float]] = []  # (sequence number, commit time)
    stop = threading.Event()

    def writer() -> None:
        with (
            pymysql.connect(
                host=primary.host,
                port=primary.port,
                user="owner",
                password="bench-password-1",
                autocommit=True,
            ) as conn,
            conn.cursor() as cursor,
        ):
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS bench.rpo (id INT AUTO_INCREMENT PRIMARY KEY, at DOUBLE)"
            )
            while not stop.is_set():
                cursor.execute("INSERT INTO bench.rpo (at) VALUES (UNIX_TIMESTAMP(NOW(6)))")
                committed = time.time()
                cursor.execute("SELECT @@last_gtid AS g")
                commits.append((int(cursor.fetchone()[0].split("-")[2]), committed))
                time.sleep(0.1)

    thread = threading.Thread(target=writer, daemon=True)
    binlog_archive.archive_cluster(cluster.pk)
    thread.start()
    archived: list[tuple[int, float]] = []  # (last sequence number in storage, when it was)
    deadline = time.monotonic() + seconds
    rounds = []
    while time.monotonic() < deadline:
        began = time.monotonic()
        binlog_archive.archive_cluster(cluster.pk)
        rounds.append(time.monotonic() - began)
        done = time.time()
        files = BinlogArchive.objects.filter(cluster_ref=cluster.pk)
        top = max((position(f.gtid_end).seq(0) for f in files), default=0)
        archived.append((top, done))
        time.sleep(max(0.0, interval - (time.monotonic() - began)))
    stop.set()
    thread.join()
    delays = []
    for seq, committed in commits:
        landed = next((at for top, at in archived if top >= seq), None)
        if landed is not None:
            delays.append(landed - committed)
    print(
        f"archiving RPO (interval {interval:g} s, {len(delays)} commits over {seconds:g} s): "
        f"p50 {percentile(delays, 0.5):.2f} s, p99 {percentile(delays, 0.99):.2f} s, max {max(delays):.2f} s; "
        f"a round (flush + copy + catalog) median {statistics.median(rounds) * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-mb", type=int, default=200)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--rpo-seconds", type=float, default=60.0)
    parser.add_argument(
        "--incompressible",
        action="store_true",
        help="rows of random bytes (RANDOM_BYTES) instead of repeated MD5s: zstd gains nothing",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dbpb-", dir="/tmp") as data_root:
        os.chmod(data_root, 0o755)
        os.environ["DBPILOT_BACKUP_ROOT"] = str(Path(data_root) / "backups")
        configure(data_root)
        from tenants.services import create_tenant

        team = create_tenant("bench", "ops", "bench@example.com", "bench-password-1", "admin").team
        cluster, _, _ = provision(team, "src", 1)
        cluster.refresh_from_db()
        restored = None
        try:
            rows = fill_random(cluster, args.data_mb) if args.incompressible else fill(cluster, args.data_mb)
            print(f"filled {rows} rows (~{args.data_mb} MB)")
            backup = measure_backup(cluster)
            restored = measure_restore(team, backup)
            measure_rpo(cluster, args.interval, args.rpo_seconds)
        finally:
            destroy(cluster)
            if restored is not None:
                destroy(restored)


if __name__ == "__main__":
    main()
