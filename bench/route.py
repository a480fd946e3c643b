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
    return (f"{name:<18} median {statistics.median(ordered):7.2f} ms   p90 {p90:7.2f} ms   "
            f"min {ordered[0]:7.2f} ms   max {ordered[-1]:7.2f} ms   ({len(ordered)} runs)")


def haproxy_config(socket_path: Path) -> str:
    lines = ["global", f"    stats socket {socket_path} mode 600 level admin", "defaults", "    mode tcp",
             "    timeout connect 1s", "    timeout client 10s", "    timeout server 10s",
             "backend db_write"]
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
        plan = RoutePlan("bench/route", PRIMARY_CHANGED, primary, old, tuple(a for a in addresses if a != primary),
                         run, job_id)
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
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(directory)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    import redis

    wait_until(lambda: redis.Redis(port=port).ping(), 10, "redis-server")
    return process, f"redis://127.0.0.1:{port}/0"


def routed_switchovers(runs: int, rate: float, work: Path) -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from clusters.jobs.engine import run_job
    from clusters.providers import LocalSandbox
    from clusters.routes.models import Route
    from clusters.services import registration, routing
    from clusters.services.monitoring import tick_cluster
    from clusters.services.switchover import request_switchover
    from tenants.services import create_tenant
    from tests.integration.routing_helpers import (
        HaproxyProcess,
        create_check_user,
        free_port,
        private_dir,
        remove_dir,
    )
    from tests.writer import Writer

    sandbox = LocalSandbox(f"b-{secrets.token_hex(3)}", 3, semi_sync=True, temporary=True)
    directory = private_dir("br-")
    haproxy = None
    try:
        described = sandbox.up()
        create_check_user(sandbox)
        addresses = [n["address"] for n in described["nodes"]]
        created = create_tenant("bench", "ops", "bench@example.com", "a-long-password-1", "admin")
        parsed = registration.parse_request(created.tenant, {
            "name": "bench", "servers": [{"host": n["host"], "port": n["port"]} for n in described["nodes"]],
            "credentials": described["credentials"]["admin"],
            "replication_credentials": described["credentials"]["replication"]})
        cluster = registration.register_cluster(created.team, parsed, registration.check_servers_answer(parsed),
                                                requested_by="bench")
        tick_cluster(cluster.id)
        write_port = free_port()
        route, _ = routing.create_route(cluster, {
            "kind": "haproxy", "runtime_api": f"unix://{directory}/admin.sock", "write_backend": "db_write",
            "read_backend": "db_read", "write_bind": f"127.0.0.1:{write_port}", "read_bind": f"127.0.0.1:{free_port()}"},
            requested_by="bench")
        haproxy = HaproxyProcess(directory, routing.haproxy_config(route)).start()
        frontend = f"127.0.0.1:{write_port}"
        app = sandbox.accounts.app
        writer = Writer([frontend], app.user, app.password, rate=rate, fixed=frontend).start()
        writer.wait_for_acks(int(rate))
        print(f"cluster {addresses} behind HAProxy {frontend}, writer at {rate:g}/s through it, jobs inline")
        gaps, primary = [], 1
        for run in range(1, runs + 1):
            target = primary % 3 + 1
            started = time.monotonic()
            job = request_switchover(cluster, candidate=addresses[target - 1], requested_by="bench", enqueue=False)
            job = run_job(job.id)
            done = time.monotonic()
            writer.wait_for_acks(int(rate / 2))
            if job.state != "succeeded" or not job.result.get("routes_ok"):
                raise SystemExit(f"run {run}: job {job.id} {job.state}, routes_ok {job.result.get('routes_ok')}: "
                                 f"{job.result.get('routes')}")
            gap = writer.largest_gap(started, done)
            gaps.append(gap.ms if gap else float("nan"))
            haproxy_ms = [r["duration_ms"] for phase in job.result["routes"].values() for r in phase]
            print(f"run {run:2d}: {job.result['old_primary']} -> {job.result['new_primary']}  write gap through "
                  f"HAProxy {gaps[-1]:6.1f} ms  job total {job.result.get('total_ms', float('nan')):6.1f} ms  "
                  f"HAProxy route {' + '.join(f'{v:.1f}' for v in haproxy_ms)} ms")
            primary = target
            time.sleep(0.5)
        writer.stop()
        sandbox.wait_replicating(timeout=30, primary=primary)
        lost = {a: len(writer.missing_on(a)) for a in addresses}
        ordered = sorted(gaps)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        print(f"\nwrite gap through HAProxy ms  p50 {statistics.median(ordered):7.1f}  p99 {p99:7.1f}  "
              f"max {ordered[-1]:7.1f}  ({len(ordered)} switchovers; load average {os.getloadavg()[0]:.2f})")
        print(f"acknowledged rows {len(writer.acknowledged())}, outcome unknown {len(writer.unknown)}, "
              f"lost (acknowledged, missing): {lost}; route {Route.objects.get(pk=route.pk).last_sync_detail!r}")
    finally:
        if haproxy is not None:
            haproxy.stop()
        sandbox.destroy()
        remove_dir(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--switchovers", type=int, default=0, help="measure the routed switchover path instead")
    parser.add_argument("--rate", type=float, default=200.0, help="writer inserts per second (--switchovers)")
    args = parser.parse_args()
    if args.switchovers:
        work = Path(tempfile.mkdtemp(prefix="bench-route-", dir="/tmp"))
        redis_process, redis_url = start_redis(work)
        os.environ["REDIS_URL"] = redis_url
        configure(str(work / "var"), str(work / "hooks"))
        try:
            routed_switchovers(args.switchovers, args.rate, work)
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

    def bound(kind: str, servers, settings: dict, secrets: dict | None = None, jobs: dict | None = None) -> BoundRoute:
        return BoundRoute(1, kind, kind, "bench", "route", 1, settings, secrets or {},
                          tuple(ClusterServer(i + 1, h, p) for i, (h, p) in enumerate(servers)), job_kinds=jobs or {})

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
            "HAProxy runtime": timed_runs(bound("haproxy", SERVERS, {
                "runtime_api": f"unix://{haproxy.socket_path}", "write_backend": "db_write", "read_backend": "db_read"}),
                addresses, args.runs),
            "PowerDNS": timed_runs(bound("powerdns", DNS_SERVERS, {
                "api_url": powerdns.api_url, "zone": "bench.test.", "write_record": "write.bench.test.",
                "read_record": "read.bench.test.", "ttl": 5}, {"api_key": powerdns.api_key}), dns_addresses, args.runs),
            "script (no-op)": timed_runs(bound("script", SERVERS, {"script": "noop"}, jobs={99: "switchover"}),
                                         addresses, args.runs, job_id=99),
        }
        last = args.runs % 3
        state = haproxy.command("show servers state db_write")
        ready = [line.split()[3] for line in state.splitlines()[2:] if line.strip() and line.split()[6] in ("0", "4")]
        print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
        for name, values in results.items():
            print(summary(name, values))
        print(f"after the runs: HAProxy write backend in service: {ready} (expected ['{addresses[last]}']); "
              f"DNS write.bench.test. = {powerdns.query('write.bench.test.')} (expected ['{DNS_SERVERS[last][0]}'])")
    finally:
        haproxy.stop()
        powerdns.stop()
        remove_dir(haproxy_dir)
        remove_dir(pdns_dir)


if __name__ == "__main__":
    main()
