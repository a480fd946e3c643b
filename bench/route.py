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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
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
