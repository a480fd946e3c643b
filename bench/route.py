"""Benchmark: how long each real route driver takes to apply a new primary.

    .venv/bin/python bench/route.py [--runs 20]

Starts a real HAProxy (runtime API on a unix socket; write and read backends of three servers, no
health checks so only the driver's own work is timed) and a real PowerDNS (HTTP API, sqlite3 backend,
caches off), and installs a no-op script in a temporary hooks directory. Each run moves the primary to
the next of three servers through the same code a job uses (clusters.routes.notify.apply_route on a
bound route): for HAProxy one round trip reading `show info` and both backends' `show servers state`,
then the `set server` / `shutdown sessions` commands; for PowerDNS one PATCH of the writer and reader
records; for the script, the hooks runner starting it and waiting for it. Prints the median, p90, min
and max per driver, and checks after the runs that HAProxy and DNS say what the last run applied.
Targets (issue 6): at most 50 ms for HAProxy and PowerDNS. Prints figures, asserts nothing.

    .venv/bin/python bench/route.py --switchovers 10 [--rate 200]

The routed path instead: a 3-node semi-sync sandbox behind a real HAProxy started from the haproxy.cfg
dbpilot generates (mysql-check), a writer (tests/writer.py) inserting through the write frontend only,
and N planned switchovers run in this process through the same service the API calls (the job drives
HAProxy through the runtime API). Prints the write gap the writer saw through HAProxy per run and its
p50/p99 (target p99 <= 300 ms), and the acknowledged rows missing from any server. Needs mariadbd and
starts its own Redis and control-plane database (SQLite) in a temporary directory.

    .venv/bin/python bench/route.py --failovers 5 [--rate 200]

The routed failover path: the same setup with the cluster in automatic failover mode, monitoring ticks
every second from a thread (as beat would, through the same single-flight shard tick) with the primary
watch on (as in a tick worker), and each run SIGKILLs the primary; the failover job runs inline and tells
HAProxy. Prints the time from the kill to the first write acknowledged through HAProxy's
write frontend, per run and p50 (target <= 1.2 s); the killed server is started again and rejoins as a
replica before the next run.
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

SERVERS = [("127.0.0.1", 3311), ("127.0.0.1", 3312), ("127.0.0.1", 3313)]
DNS_SERVERS = [("10.231.250.1", 3306), ("10.231.250.2", 3306), ("10.231.250.3", 3306)]


def configure(data_root: str, hooks_dir: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "controlplane.settings"
    os.environ["DEBUG"] = "1"
    os.environ["DBPILOT_DATA_ROOT"] = data_root
    os.environ["DBPILOT_HOOKS_DIR"] = hooks_dir
    os.environ["DBPILOT_ALLOWED_SOCKET_DIRS"] = "/tmp/dbp"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return (
        f"{name:<18} median {statistics.median(ordered):7.2f} ms   p90 {p90:7.2f} ms   "
        f"min {ordered[0]:7.2f} ms   max {ordered[-1]:7.2f} ms   ({len(ordered)} runs)"
    )


def haproxy_config(socket_path: Path) -> str:
    lines = [
        "global",
        f"    stats socket {socket_path} mode 600 level admin",
        "defaults",
        "    mode tcp",
        "    timeout connect 1s",
        "    timeout client 10s",
        "    timeout server 10s",
        "backend db_write",
    ]
    lines += [f"    server {h}:{p} {h}:{p}" for h, p in SERVERS]
    lines += ["backend db_read"] + [f"    server {h}:{p} {h}:{p}" for h, p in SERVERS]
    return "\n".join(lines) + "\n"


def timed_runs(route, addresses: list[str], runs: int, job_id: int | None = None) -> list[float]:
    from clusters.routes.base import PRIMARY_CHANGED, RoutePlan
    from clusters.routes.notify import apply_route

    timings = []
    for run in range(runs + 1):  # the first run (cold) is not counted
        primary = addresses[run % len(addresses)]
        old = addresses[(run - 1) % len(addresses)]
        plan = RoutePlan(
            "bench/route",
            PRIMARY_CHANGED,
            primary,
            old,
            tuple(a for a in addresses if a != primary),
            run,
            job_id,
        )
        started = time.perf_counter()
        result = apply_route(route, plan)
        elapsed = (time.perf_counter() - started) * 1000
        if not result.ok:
            raise SystemExit(f"{route.kind} failed: {result.detail}")
        if run:
            timings.append(elapsed)
    return timings


def start_redis(directory: Path) -> tuple[subprocess.Popen, str]:
    from tests.integration.routing_helpers import free_port, wait_until

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
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    import redis

    wait_until(lambda: redis.Redis(port=port).ping(), 10, "redis-server")
    return process, f"redis://127.0.0.1:{port}/0"


class RoutedCluster:
    """A 3-node semi-sync sandbox registered with dbpilot, behind a real HAProxy from the generated config."""

    def __init__(self, **cluster_settings):
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from clusters.providers import LocalSandbox
        from tests.integration.routing_helpers import private_dir

        self.sandbox = LocalSandbox(f"b-{secrets.token_hex(3)}", 3, semi_sync=True, temporary=True)
        self.directory = private_dir("br-")
        self.settings = cluster_settings
        self.haproxy = None

    def __enter__(self) -> RoutedCluster:
        from clusters.services import registration, routing
        from clusters.services.monitoring import tick_cluster
        from tenants.services import create_tenant
        from tests.integration.routing_helpers import HaproxyProcess, create_check_user, free_port

        described = self.sandbox.up()
        create_check_user(self.sandbox)
        self.addresses = [n["address"] for n in described["nodes"]]
        created = create_tenant("bench", "ops", "bench@example.com", "a-long-password-1", "admin")
        parsed = registration.parse_request(
            created.tenant,
            {
                "name": "bench",
                "servers": [{"host": n["host"], "port": n["port"]} for n in described["nodes"]],
                "credentials": described["credentials"]["admin"],
                "replication_credentials": described["credentials"]["replication"],
                "settings": self.settings,
            },
        )
        self.cluster = registration.register_cluster(
            created.team, parsed, registration.check_servers_answer(parsed), requested_by="bench"
        )
        tick_cluster(self.cluster.id)
        write_port = free_port()
        self.route, _ = routing.create_route(
            self.cluster,
            {
                "kind": "haproxy",
                "runtime_api": f"unix://{self.directory}/admin.sock",
                "write_backend": "db_write",
                "read_backend": "db_read",
                "write_bind": f"127.0.0.1:{write_port}",
                "read_bind": f"127.0.0.1:{free_port()}",
                "check_inter_ms": 500,
            },
            requested_by="bench",
        )
        self.haproxy = HaproxyProcess(self.directory, routing.haproxy_config(self.route)).start()
        self.frontend = f"127.0.0.1:{write_port}"
        return self

    def writer(self, rate: float):
        from tests.writer import Writer

        app = self.sandbox.accounts.app
        return Writer([self.frontend], app.user, app.password, rate=rate, fixed=self.frontend)

    def __exit__(self, *exc_info) -> None:
        from tests.integration.routing_helpers import remove_dir

        if self.haproxy is not None:
            self.haproxy.stop()
        self.sandbox.destroy()
        remove_dir(self.directory)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def routed_switchovers(runs: int, rate: float) -> None:
    from clusters.jobs.engine import run_job
    from clusters.routes.models import Route
    from clusters.services.switchover import request_switchover

    with RoutedCluster() as routed:
        sandbox, cluster, addresses = routed.sandbox, routed.cluster, routed.addresses
        writer = routed.writer(rate).start()
        writer.wait_for_acks(int(rate))
        print(
            f"cluster {addresses} behind HAProxy {routed.frontend}, writer at {rate:g}/s through it, jobs inline"
        )
        gaps, primary = [], 1
        for run in range(1, runs + 1):
            target = primary % 3 + 1
            started = time.monotonic()
            job = request_switchover(
                cluster, candidate=addresses[target - 1], requested_by="bench", enqueue=False
            )
            job = run_job(job.id)
            done = time.monotonic()
            writer.wait_for_acks(int(rate / 2))
            if job.state != "succeeded" or not job.result.get("routes_ok"):
                raise SystemExit(
                    f"run {run}: job {job.id} {job.state}, routes_ok {job.result.get('routes_ok')}: "
                    f"{job.result.get('routes')}"
                )
            gap = writer.largest_gap(started, done)
            gaps.append(gap.ms if gap else float("nan"))
            haproxy_ms = [r["duration_ms"] for phase in job.result["routes"].values() for r in phase]
            print(
                f"run {run:2d}: {job.result['old_primary']} -> {job.result['new_primary']}  write gap through "
                f"HAProxy {gaps[-1]:6.1f} ms  job total {job.result.get('total_ms', float('nan')):6.1f} ms  "
                f"HAProxy route {' + '.join(f'{v:.1f}' for v in haproxy_ms)} ms"
            )
            primary = target
            time.sleep(0.5)
        writer.stop()
        sandbox.wait_replicating(timeout=30, primary=primary)
        lost = {a: len(writer.missing_on(a)) for a in addresses}
        print(
            f"\nwrite gap through HAProxy ms  p50 {statistics.median(gaps):7.1f}  p99 {percentile(gaps, 0.99):7.1f}  "
            f"max {max(gaps):7.1f}  ({len(gaps)} switchovers; load average {os.getloadavg()[0]:.2f})"
        )
        print(
            f"acknowledged rows {len(writer.acknowledged())}, outcome unknown {len(writer.unknown)}, "
            f"lost (acknowledged, missing): {lost}; route {Route.objects.get(pk=routed.route.pk).last_sync_detail!r}"
        )


def routed_failovers(runs: int, rate: float) -> None:
    import signal
    import threading

    from django.db import close_old_connections

    from clusters.models import Job, Server
    from clusters.services.monitoring import monitor_shard

    os.environ["DBPILOT_FAILOVER_RUNNER"] = "inline"
    os.environ["DBPILOT_PRIMARY_WATCH"] = "1"  # as in a tick worker: a crash is noticed at once
    with RoutedCluster(
        failover_mode="automatic", failover_limit=100, failover_min_interval_seconds=0
    ) as routed:
        sandbox, cluster = routed.sandbox, routed.cluster
        cluster.refresh_from_db()
        if not cluster.failover_armed:
            raise SystemExit("the cluster did not arm automatic failover (adopt job)")
        stop = threading.Event()

        def ticks() -> None:  # what beat and the tick workers do: one tick per second
            while not stop.is_set():
                began = time.monotonic()
                try:
                    monitor_shard([cluster.id])
                finally:
                    close_old_connections()
                stop.wait(max(0.0, 1.0 - (time.monotonic() - began)))

        ticker = threading.Thread(target=ticks, daemon=True)
        ticker.start()
        writer = routed.writer(rate).start()
        writer.wait_for_acks(int(rate))
        print(
            f"cluster {routed.addresses} behind HAProxy {routed.frontend}, writer at {rate:g}/s through it, "
            "ticks every 1 s, primary watch on, failover jobs inline"
        )
        delays = []
        try:
            for run in range(1, runs + 1):
                primary = sandbox.find_primary()
                done_before = Job.objects.filter(cluster=cluster, kind="failover", state="succeeded").count()
                time.sleep(0.2 + 0.8 * secrets.randbelow(1000) / 1000)  # land anywhere in the tick interval
                killed, killed_wall = time.monotonic(), time.time()
                sandbox.kill(primary, signal.SIGKILL)
                deadline = killed + 60
                while (
                    Job.objects.filter(cluster=cluster, kind="failover", state="succeeded").count()
                    == done_before
                ):
                    if time.monotonic() > deadline:
                        raise SystemExit(f"run {run}: no failover within 60 s")
                    time.sleep(0.02)
                job = Job.objects.filter(cluster=cluster, kind="failover").order_by("-id").first()
                writer.wait_for_acks(int(rate / 4), timeout=30)
                # The outage is the largest gap around the kill (an insert in flight may still be acknowledged
                # just after it); its end is the first write through HAProxy to the new primary.
                gap = writer.largest_gap(killed, time.monotonic())
                delays.append((gap.end - killed) * 1000)
                routes_ms = [
                    r["duration_ms"] for phase in job.result.get("routes", {}).values() for r in phase
                ]
                created = (job.created_at.timestamp() - killed_wall) * 1000
                finished = (job.finished_at.timestamp() - killed_wall) * 1000
                print(
                    f"run {run}: killed {routed.addresses[primary - 1]} -> {job.result['new_primary']}: first write "
                    f"through HAProxy {delays[-1]:7.1f} ms after the kill (job created at {created:.0f} ms, finished "
                    f"at {finished:.0f} ms); routes_ok {job.result.get('routes_ok')} "
                    f"({' + '.join(f'{v:.1f}' for v in routes_ms)} ms)"
                )
                sandbox.start(primary)
                server = Server.objects.get(cluster=cluster, port=sandbox.port(primary))
                deadline = time.monotonic() + 60
                while True:
                    server.refresh_from_db()
                    if not server.fenced:
                        break
                    if server.quarantined or time.monotonic() > deadline:
                        raise SystemExit(
                            f"run {run}: the killed server did not rejoin (quarantined: {server.quarantined})"
                        )
                    time.sleep(0.1)
                sandbox.wait_replicating(timeout=30, primary=sandbox.find_primary())
        finally:
            writer.stop()
            stop.set()
            ticker.join(10)
            from clusters.services.primary_watch import primary_watch

            primary_watch().forget(cluster.id)  # the servers stop next: no tick for that
        print(
            f"\nkill -> first write through HAProxy ms  p50 {statistics.median(delays):7.1f}  "
            f"max {max(delays):7.1f}  ({len(delays)} failovers; load average {os.getloadavg()[0]:.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--switchovers", type=int, default=0, help="measure the routed switchover path instead"
    )
    parser.add_argument("--failovers", type=int, default=0, help="measure the routed failover path instead")
    parser.add_argument("--rate", type=float, default=200.0, help="writer inserts per second (routed paths)")
    args = parser.parse_args()
    if args.switchovers or args.failovers:
        work = Path(tempfile.mkdtemp(prefix="bench-route-", dir="/tmp"))
        redis_process, redis_url = start_redis(work)
        os.environ["REDIS_URL"] = redis_url
        configure(str(work / "var"), str(work / "hooks"))
        try:
            if args.switchovers:
                routed_switchovers(args.switchovers, args.rate)
            else:
                routed_failovers(args.failovers, args.rate)
        finally:
            redis_process.terminate()
            redis_process.wait(10)
        return
    work = Path(tempfile.mkdtemp(prefix="bench-route-", dir="/tmp"))
    hooks = work / "hooks"
    hooks.mkdir()
    (hooks / "noop").write_text("#!/bin/sh\nexit 0\n")
    (hooks / "noop").chmod(0o755)
    configure(str(work / "var"), str(hooks))

    from clusters.routes import drivers  # noqa: F401 - registers the drivers
    from clusters.routes.bound import BoundRoute, ClusterServer
    from tests.integration.routing_helpers import HaproxyProcess, PowerDns, private_dir, remove_dir

    def bound(
        kind: str, servers, settings: dict, secrets: dict | None = None, jobs: dict | None = None
    ) -> BoundRoute:
        return BoundRoute(
            1,
            kind,
            kind,
            "bench",
            "route",
            1,
            settings,
            secrets or {},
            tuple(ClusterServer(i + 1, h, p) for i, (h, p) in enumerate(servers)),
            job_kinds=jobs or {},
        )

    haproxy_dir, pdns_dir = private_dir("bh-"), private_dir("bp-")
    haproxy = HaproxyProcess(haproxy_dir, haproxy_config(haproxy_dir / "admin.sock"))
    powerdns = PowerDns(pdns_dir)
    try:
        haproxy.start()
        powerdns.start()
        powerdns.create_zone("bench.test.")
        addresses = [f"{h}:{p}" for h, p in SERVERS]
        dns_addresses = [f"{h}:{p}" for h, p in DNS_SERVERS]
        results = {
            "HAProxy runtime": timed_runs(
                bound(
                    "haproxy",
                    SERVERS,
                    {
                        "runtime_api": f"unix://{haproxy.socket_path}",
                        "write_backend": "db_write",
                        "read_backend": "db_read",
                    },
                ),
                addresses,
                args.runs,
            ),
            "PowerDNS": timed_runs(
                bound(
                    "powerdns",
                    DNS_SERVERS,
                    {
                        "api_url": powerdns.api_url,
                        "zone": "bench.test.",
                        "write_record": "write.bench.test.",
                        "read_record": "read.bench.test.",
                        "ttl": 5,
                    },
                    {"api_key": powerdns.api_key},
                ),
                dns_addresses,
                args.runs,
            ),
            "script (no-op)": timed_runs(
                bound("script", SERVERS, {"script": "noop"}, jobs={99: "switchover"}),
                addresses,
                args.runs,
                job_id=99,
            ),
        }
        last = args.runs % 3
        state = haproxy.command("show servers state db_write")
        ready = [
            line.split()[3]
            for line in state.splitlines()[2:]
            if line.strip() and line.split()[6] in ("0", "4")
        ]
        print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
        for name, values in results.items():
            print(summary(name, values))
        print(
            f"after the runs: HAProxy write backend in service: {ready} (expected ['{addresses[last]}']); "
            f"DNS write.bench.test. = {powerdns.query('write.bench.test.')} (expected ['{DNS_SERVERS[last][0]}'])"
        )
    finally:
        haproxy.stop()
        powerdns.stop()
        remove_dir(haproxy_dir)
        remove_dir(pdns_dir)


if __name__ == "__main__":
    main()
