"""Benchmark: planned switchovers on a 3-node semi-sync cluster under a steady writer.

    .venv/bin/python bench/switchover.py [--runs 10] [--rate 200] [--inline]

Starts a throwaway control-plane database (SQLite under a temporary DBPILOT_DATA_ROOT), a local sandbox
(three MariaDB servers, semi-sync) and, unless --inline, a Celery worker on the `ha` queue, as a
deployment runs them. A writer (tests/writer.py) inserts about `--rate` rows per second and follows the
writable server directly (on an error it tries each server; no proxy). Each run switches the primary to
the next node through the same service the API calls, and the script prints, per run and as p50/p99:
the write gap the writer saw (last OK commit before to first OK commit after), the job's total time and
each step's time, and at the end the acknowledged rows missing from any server (lost rows).

Starts its own Redis (redis-server on a free loopback port) unless --redis-url is given, so no other
worker on the machine can take its jobs; needs mariadbd. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def configure(data_root: str, redis_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "controlplane.settings"
    os.environ["DEBUG"] = "1"
    os.environ["DBPILOT_DATA_ROOT"] = data_root
    os.environ["REDIS_URL"] = redis_url
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DBPILOT_ALLOWED_SOCKET_DIRS"] = "/tmp/dbp"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_redis(data_root: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            data_root,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    import redis

    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.RedisError:
            time.sleep(0.05)
    return process, f"redis://127.0.0.1:{port}/0"


def start_worker(data_root: str, redis_url: str) -> subprocess.Popen:
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="controlplane.settings",
        DBPILOT_DATA_ROOT=data_root,
        REDIS_URL=redis_url,
        DEBUG="1",
        PYTHONUNBUFFERED="1",
    )
    log = open(Path(data_root) / "worker.log", "ab")
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "controlplane",
            "worker",
            "-Q",
            "ha",
            "-n",
            f"bench-{os.getpid()}@%h",
            "--concurrency",
            "1",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rate", type=float, default=200.0, help="writer inserts per second")
    parser.add_argument(
        "--inline", action="store_true", help="run the jobs in this process instead of a worker"
    )
    parser.add_argument("--redis-url", help="an existing Redis (default: start a private one)")
    args = parser.parse_args()

    data_root = tempfile.mkdtemp(prefix="dbpilot-bench-")
    redis_process = None
    if not args.redis_url:
        redis_process, args.redis_url = start_redis(data_root)
    configure(data_root, args.redis_url)

    from clusters.jobs.engine import run_job
    from clusters.providers import LocalSandbox
    from clusters.services import registration
    from clusters.services.switchover import request_switchover
    from tenants.services import create_tenant
    from tests.writer import Writer

    sandbox = LocalSandbox(f"b-{secrets.token_hex(3)}", 3, semi_sync=True, temporary=True)
    worker = None
    try:
        described = sandbox.up()
        addresses = [n["address"] for n in described["nodes"]]
        created = create_tenant("bench", "ops", "bench@example.com", "a-long-password-1", "admin")
        payload = {
            "name": "bench",
            "servers": [{"host": n["host"], "port": n["port"]} for n in described["nodes"]],
            "credentials": described["credentials"]["admin"],
            "replication_credentials": described["credentials"]["replication"],
        }
        parsed = registration.parse_request(created.tenant, payload)
        cluster = registration.register_cluster(
            created.team, parsed, registration.check_servers_answer(parsed), requested_by="bench"
        )
        if not args.inline:
            worker = start_worker(data_root, args.redis_url)
            time.sleep(3)  # the worker connects to the broker
        app = sandbox.accounts.app
        writer = Writer(addresses, app.user, app.password, rate=args.rate).start()
        writer.wait_for_acks(int(args.rate))
        print(
            f"cluster {addresses}, writer at {args.rate:g}/s, jobs {'inline' if args.inline else 'on a worker'}"
        )
        rows = []
        primary = 1
        for run in range(1, args.runs + 1):
            target = primary % 3 + 1
            requested = time.monotonic()
            job = request_switchover(
                cluster, candidate=addresses[target - 1], requested_by="bench", enqueue=not args.inline
            )
            if args.inline:
                run_job(job.id)
            deadline = time.monotonic() + 120
            while True:
                job.refresh_from_db()
                if job.state not in ("pending", "running") or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            writer.wait_for_acks(int(args.rate / 2), timeout=30)
            # The largest gap between acknowledgements from the request until the writer flows again
            # (a commit stuck on the new primary after the job ended counts too).
            gap = writer.largest_gap(requested, time.monotonic())
            if job.state != "succeeded":
                print(f"run {run}: job {job.id} {job.state}: {job.result.get('detail')}")
                return 1
            primary = target
            # Every row acknowledged so far must already be on the new primary.
            lost_here = len(writer.missing_on(job.result["new_primary"]))
            rows.append(
                {
                    "gap": gap.ms if gap else float("nan"),
                    "total": job.result["total_ms"],
                    "freeze": job.result.get("write_freeze_ms", float("nan")),
                    "steps": job.result["timings_ms"],
                    "lost": lost_here,
                }
            )
            print(
                f"run {run:2d}: {job.result['old_primary']} -> {job.result['new_primary']}  write gap "
                f"{rows[-1]['gap']:6.1f} ms  job total {rows[-1]['total']:6.1f} ms  freeze {rows[-1]['freeze']:6.1f} ms"
                f"  lost {lost_here}"
            )
            print(
                "        steps (ms): "
                + ", ".join(f"{k} {v:.1f}" for k, v in job.result["timings_ms"].items())
            )
            time.sleep(0.5)
        writer.stop()
        sandbox.wait_replicating(timeout=30, primary=primary)
        lost = {a: len(writer.missing_on(a)) for a in addresses}
        gaps = [r["gap"] for r in rows]
        totals = [r["total"] for r in rows]
        print()
        print(
            f"write gap ms     p50 {percentile(gaps, 0.5):7.1f}  p99 {percentile(gaps, 0.99):7.1f}  "
            f"mean {statistics.mean(gaps):7.1f}"
        )
        print(f"job total ms     p50 {percentile(totals, 0.5):7.1f}  p99 {percentile(totals, 0.99):7.1f}")
        freezes = [r["freeze"] for r in rows]
        print(
            f"job's freeze ms  p50 {percentile(freezes, 0.5):7.1f}  p99 {percentile(freezes, 0.99):7.1f}  "
            "(read_only=1 on the old primary to read_only=0 on the new, as the job measured it)"
        )
        for name in rows[0]["steps"]:
            values = [r["steps"].get(name, float("nan")) for r in rows]
            print(f"  {name:28s} p50 {percentile(values, 0.5):7.1f}  p99 {percentile(values, 0.99):7.1f}")
        print(
            f"acknowledged rows {len(writer.acknowledged())}, outcome unknown {len(writer.unknown)}, "
            f"lost on the new primary per run: {sum(r['lost'] for r in rows)}, "
            f"lost at the end (acknowledged, missing) per server: {lost}"
        )
        return 0
    finally:
        if worker is not None:
            os.killpg(worker.pid, 15)
            worker.wait(10)
        sandbox.destroy()
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait(10)


if __name__ == "__main__":
    sys.exit(main())
