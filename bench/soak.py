"""Soak: dbpilot runs for a bounded time while random faults hit the databases and dbpilot itself.

Run (root, as the sandboxes need): .venv/bin/python bench/soak.py [--minutes 20] [--clusters 3] [--seed N]
CI runs a short part of it: tests/chaos/test_soak.py (one cluster, 25 s of faults).

What runs: a private Redis, dbpilot as processes on a SQLite control-plane database (one web server, two
workers on every queue, two beats), N real 3-server MariaDB clusters (semi-synchronous replication; `--async` for asynchronous, where a
primary killed before a replica received its last commits loses them: acknowledged writes lost) registered through the API with
automatic failover (its anti-flapping guards relaxed: RELAXED_GUARDS), and tests/writer.py inserting into each (50 rows/s, following whichever server takes
writes). One fault at a time, each chosen at random among those the rules allow:

- databases (on a cluster that is healthy: one writable server, every other replicating from it, no job
  running): SIGKILL the primary (dbpilot fails over; the node is started again 20 s later and rejoins),
  SIGKILL a replica or stop it cleanly (started again 5 s later);
- dbpilot itself: SIGKILL the active beat, a worker or the web server (each started again 5 s later),
  restart Redis (its state is lost: the broker, the locks, the hot state).

After each fault it waits until every cluster is healthy again (at most 120 s) and a few seconds more.
Throughout, a watcher reads @@read_only of every running server four times a second over kept root
connections: two writable servers in one cluster is an incident. At the end, each cluster's acknowledged
writes are checked on its final primary. The report: faults injected, failovers, write gaps (the pauses
between consecutive acknowledged writes longer than 250 ms: p50, p99, max), acknowledged writes lost
(must be 0), two-writable incidents (must be 0), findings left open.

Not injected (said in the report): network cuts (tests/integration/test_ha_safety.py covers them) and
Redis Sentinel failovers (tests/chaos/test_redis_sentinel.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GAP_SECONDS = 0.25
# The anti-flapping guards let 3 automatic failovers an hour through, 60 s apart: with them a soak's
# primary kills after the third are refused and wait for the node to come back. Relaxed so that every
# kill of a primary exercises a failover.
RELAXED_GUARDS = {"failover_limit": 100, "failover_min_interval_seconds": 0}
HEALTHY_WAIT_SECONDS = 120
BIN = Path(sys.executable).parent


@dataclass
class SoakReport:
    seconds: float = 0.0
    clusters: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    failovers: int = 0
    jobs: dict[str, int] = field(default_factory=dict)
    gaps_ms: list[float] = field(default_factory=list)
    acknowledged: int = 0
    lost: int = 0
    two_writable: list[str] = field(default_factory=list)
    unhealthy_after_fault: list[str] = field(default_factory=list)
    findings_open: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        gaps = sorted(self.gaps_ms)

        def pct(f: float) -> str:
            return f"{gaps[min(len(gaps) - 1, int(f * len(gaps)))]:.0f}" if gaps else "-"

        return [
            f"soak: {self.seconds / 60:.1f} min, {self.clusters} cluster(s) of 3 servers under writers",
            f"  faults injected: {sum(self.faults.values())} ({', '.join(f'{k} {v}' for k, v in sorted(self.faults.items()))})",
            f"  failovers: {self.failovers}; jobs: {json.dumps(self.jobs, sort_keys=True)}",
            f"  write gaps over {GAP_SECONDS * 1000:.0f} ms: {len(gaps)}; p50 {pct(0.5)} ms, p99 {pct(0.99)} ms, "
            f"max {max(gaps, default=0):.0f} ms",
            f"  acknowledged writes: {self.acknowledged}; lost: {self.lost}",
            f"  two-writable incidents: {len(self.two_writable)}"
            + (f" ({'; '.join(self.two_writable[:5])})" if self.two_writable else ""),
            f"  not healthy within {HEALTHY_WAIT_SECONDS} s of a fault: {self.unhealthy_after_fault or 'none'}",
            f"  findings left open: {self.findings_open or 'none'}",
            "  not injected: network cuts, Redis Sentinel failovers (covered by their own tests)",
        ]


class _Watch(threading.Thread):
    """@@read_only of every running server of every cluster, 4 times a second, on kept root connections."""

    def __init__(self, sandboxes, report: SoakReport):
        super().__init__(name="soak-watch", daemon=True)
        self.sandboxes = sandboxes
        self.report = report
        self.conns: dict[tuple[int, int], object] = {}
        self.stop_event = threading.Event()

    def _read_only(self, index: int, node: int) -> bool | None:
        import pymysql

        sandbox = self.sandboxes[index]
        key = (index, node)
        try:
            if key not in self.conns:
                self.conns[key] = sandbox.connect(node, timeout=1)
            with self.conns[key].cursor() as cursor:
                cursor.execute("SELECT @@read_only AS ro")
                return cursor.fetchone()["ro"] == 1
        except (pymysql.Error, OSError, Exception):  # noqa: BLE001 - a node going down: unknown this look
            self.conns.pop(key, None)
            return None

    def writable(self, index: int) -> list[int]:
        sandbox = self.sandboxes[index]
        return [n for n in sandbox.nodes if sandbox.running(n) and self._read_only(index, n) is False]

    def run(self) -> None:
        while not self.stop_event.wait(0.25):
            for index in range(len(self.sandboxes)):
                writable = self.writable(index)
                if len(writable) > 1:
                    self.report.two_writable.append(
                        f"cluster {index + 1} nodes {writable} at {time.strftime('%H:%M:%S')}"
                    )


class Soak:
    def __init__(
        self, seconds: float, clusters: int, seed: int | None, workdir: Path, semi_sync: bool = True
    ):
        self.seconds = seconds
        self.semi_sync = semi_sync
        self.rng = random.Random(seed)
        self.workdir = workdir
        self.report = SoakReport(clusters=clusters)
        self.n_clusters = clusters
        self.processes: dict[str, object] = {}
        self.sandboxes: list = []
        self.writers: list = []
        self.cluster_ids: list[int] = []
        self.restarts: list[tuple[float, callable]] = []

    # --- dbpilot's processes ------------------------------------------------------------------------------

    def _start(self, name: str):
        from tests.services_plugin import ManagedProcess

        argv = {
            "web": [
                str(BIN / "daphne"),
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "controlplane.asgi:application",
            ],
            "worker-1": self._worker_argv("soak-worker-1"),
            "worker-2": self._worker_argv("soak-worker-2"),
            "beat-1": [str(BIN / "celery"), "-A", "controlplane", "beat", "--loglevel", "INFO"],
            "beat-2": [str(BIN / "celery"), "-A", "controlplane", "beat", "--loglevel", "INFO"],
        }[name]
        self.processes[name] = ManagedProcess(f"soak-{name}", argv, self.env)

    @staticmethod
    def _worker_argv(name: str) -> list[str]:
        return [str(BIN / "celery"), "-A", "controlplane", "worker", "-n", f"{name}@%h", "-c", "2"] + [
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ]

    def _start_redis(self):
        from tests.chaos.worker_hosts import private_redis

        self.redis = private_redis(self.redis_port, "soak-redis", hosts=False)
        _wait(lambda: _redis_answers(self.redis_port), 10, "redis-server")

    # --- set-up ---------------------------------------------------------------------------------------------

    def setup(self) -> None:
        from clusters.providers import LocalSandbox
        from tests.chaos.conftest import api, control_plane_env, create_tenant_token, free_port, listening
        from tests.writer import Writer

        self.redis_port = free_port()
        self._start_redis()
        self.db_path = self.workdir / "dbpilot.sqlite3"
        self.db_path.unlink(missing_ok=True)
        self.env = control_plane_env(
            f"sqlite:///{self.db_path}", f"redis://127.0.0.1:{self.redis_port}/0", self.workdir
        )
        token = create_tenant_token(self.env, "admin")
        self.port = free_port()
        for name in ("web", "worker-1", "worker-2", "beat-1", "beat-2"):
            self._start(name)
        _wait(lambda: listening(self.port), 60, "the web server")
        base = f"http://127.0.0.1:{self.port}/api/v1"
        for number in range(self.n_clusters):
            sandbox = LocalSandbox(
                f"soak-{os.getpid()}-{number + 1}", 3, temporary=True, semi_sync=self.semi_sync
            )  # runs may overlap
            self.sandboxes.append(sandbox)
            sandbox.up()
            described = sandbox.describe()
            status, _, cluster = api(
                "POST",
                f"{base}/clusters/",
                token,
                {
                    "name": f"soak-{number + 1}",
                    "servers": [{"host": n["host"], "port": n["port"]} for n in described["nodes"]],
                    "credentials": described["credentials"]["admin"],
                    "replication_credentials": described["credentials"]["replication"],
                    "settings": {"failover_mode": "automatic", **RELAXED_GUARDS},
                },
            )
            if status != 201:
                raise RuntimeError(f"registering cluster {number + 1}: {status} {cluster}")
            self.cluster_ids.append(cluster["id"])
            app = sandbox.accounts.app
            addresses = [f"{n['host']}:{n['port']}" for n in described["nodes"]]
            self.writers.append(Writer(addresses, app.user, app.password, rate=50))
        for index in range(self.n_clusters):
            _wait(lambda i=index: self.healthy(i), 90, f"cluster {index + 1} to be armed and healthy")
        for writer in self.writers:
            writer.start()

    # --- health -------------------------------------------------------------------------------------------

    def _db(self, query: str, args=()) -> list[tuple]:
        with sqlite3.connect(self.db_path, timeout=10) as conn:
            return conn.execute(query, args).fetchall()

    def healthy(self, index: int) -> bool:
        sandbox = self.sandboxes[index]
        if not all(sandbox.running(n) for n in sandbox.nodes):
            return False
        writable = self.watch.writable(index) if hasattr(self, "watch") else _writable(sandbox)
        if len(writable) != 1:
            return False
        primary = writable[0]
        try:
            for node in sandbox.nodes:
                if node == primary:
                    continue
                status = sandbox.replication_status(node)
                if not (
                    status
                    and status["Slave_IO_Running"] == "Yes"
                    and status["Slave_SQL_Running"] == "Yes"
                    and int(status["Master_Port"]) == sandbox.port(primary)
                ):
                    return False
            active = self._db(
                "SELECT count(*) FROM clusters_job WHERE cluster_id = ? AND state IN ('pending', 'running')",
                (self.cluster_ids[index],),
            )[0][0]
            armed = self._db(
                "SELECT failover_armed FROM clusters_cluster WHERE id = ?", (self.cluster_ids[index],)
            )
        except Exception:  # noqa: BLE001 - a server or the database busy: not healthy this look
            return False
        return active == 0 and bool(armed and armed[0][0])

    def all_healthy(self) -> bool:
        return all(self.healthy(i) for i in range(self.n_clusters))

    # --- faults -------------------------------------------------------------------------------------------

    def _later(self, delay: float, action) -> None:
        self.restarts.append((time.monotonic() + delay, action))

    def _run_due_restarts(self, force: bool = False) -> None:
        now = time.monotonic()
        for entry in list(self.restarts):
            if force or entry[0] <= now:
                self.restarts.remove(entry)
                try:
                    entry[1]()
                except Exception as exc:  # noqa: BLE001 - say so; the end check decides
                    print(f"  restart failed: {exc}", file=sys.stderr)

    def _active_beat(self) -> str:
        """The beat that sent the schedule last (the lease holder)."""
        from tests.chaos.conftest import log_times

        def last_send(name: str) -> float:
            return max(log_times(self.processes[name].log_text(), "Sending due task"), default=0.0)

        return max(("beat-1", "beat-2"), key=last_send)

    def inject(self) -> str:
        healthy = [i for i in range(self.n_clusters) if self.healthy(i)]
        kinds = ["kill_beat", "kill_worker", "kill_web", "restart_redis"]
        if healthy:
            kinds += ["kill_primary"] * 3 + ["kill_replica", "stop_replica"]
        kind = self.rng.choice(kinds)
        if kind in ("kill_primary", "kill_replica", "stop_replica"):
            index = self.rng.choice(healthy)
            sandbox = self.sandboxes[index]
            primary = self.watch.writable(index)[0]
            if kind == "kill_primary":
                node = primary
                sandbox.kill(node, signal.SIGKILL)
                self._later(20, lambda s=sandbox, n=node: s.start(n))
            else:
                node = self.rng.choice([n for n in sandbox.nodes if n != primary])
                if kind == "kill_replica":
                    sandbox.kill(node, signal.SIGKILL)
                else:
                    sandbox.stop(node)
                self._later(5, lambda s=sandbox, n=node: s.start(n))
            label = f"{kind} (cluster {index + 1}, node {node})"
        elif kind == "restart_redis":
            self.redis.kill(signal.SIGKILL)
            self.redis.stop()
            self._later(2, self._start_redis)
            label = kind
        else:
            name = {
                "kill_beat": self._active_beat(),
                "kill_worker": self.rng.choice(["worker-1", "worker-2"]),
            }.get(kind, "web")
            self.processes[name].kill(signal.SIGKILL)
            self.processes[name].stop()
            self._later(5, lambda n=name: self._start(n))
            label = f"{kind} ({name})"
        self.report.faults[kind] = self.report.faults.get(kind, 0) + 1
        return label

    # --- the run ------------------------------------------------------------------------------------------

    def run(self) -> SoakReport:
        started = time.monotonic()
        try:
            self.setup()
            self.watch = _Watch(self.sandboxes, self.report)
            self.watch.start()
            print(
                f"soak: set up in {time.monotonic() - started:.0f} s; faults for {self.seconds:.0f} s",
                file=sys.stderr,
            )
            run_from = time.monotonic()
            while time.monotonic() - run_from < self.seconds:
                label = self.inject()
                fault_at = time.monotonic()
                print(f"  {time.strftime('%H:%M:%S')} {label}", file=sys.stderr)
                while True:
                    time.sleep(0.5)
                    self._run_due_restarts()
                    if not self.restarts and self.all_healthy():
                        break
                    if time.monotonic() - fault_at > HEALTHY_WAIT_SECONDS:
                        self.report.unhealthy_after_fault.append(label)
                        self._run_due_restarts(force=True)
                        break
                time.sleep(self.rng.uniform(2, 6))
            self.report.seconds = time.monotonic() - run_from
            self._run_due_restarts(force=True)
            _wait_quietly(self.all_healthy, HEALTHY_WAIT_SECONDS)
            # Findings resolve after a few healthy ticks (hysteresis): give the last fault's that long.
            _wait_quietly(
                lambda: not self._db("SELECT 1 FROM clusters_finding WHERE resolved_at IS NULL"), 20
            )
            self.finish()
        finally:
            self.teardown()
        return self.report

    def finish(self) -> None:
        for writer in self.writers:
            writer.stop()
        for index, (sandbox, writer) in enumerate(zip(self.sandboxes, self.writers, strict=True)):
            acks = list(writer.acks)
            self.report.acknowledged += len(acks)
            self.report.gaps_ms += [
                (b.at - a.at) * 1000
                for a, b in zip(acks, acks[1:], strict=False)
                if b.at - a.at > GAP_SECONDS
            ]
            writable = self.watch.writable(index)
            if len(writable) != 1:
                self.report.two_writable.append(f"cluster {index + 1}: writable at the end {writable}")
                continue
            primary = writable[0]
            self.report.lost += len(writer.missing_on(f"{sandbox.host(primary)}:{sandbox.port(primary)}"))
        for kind, state, count in self._db(
            "SELECT kind, state, count(*) FROM clusters_job GROUP BY kind, state"
        ):
            self.report.jobs[f"{kind} {state}"] = count
        self.report.failovers = self.report.jobs.get("failover succeeded", 0)
        self.report.findings_open = [
            f"{code} (cluster {cid})"
            for code, cid in self._db(
                "SELECT code, cluster_id FROM clusters_finding WHERE resolved_at IS NULL"
            )
        ]

    def teardown(self) -> None:
        if hasattr(self, "watch"):
            self.watch.stop_event.set()
        for writer in self.writers:
            writer.stop()
        for process in self.processes.values():
            process.stop()
        if hasattr(self, "redis"):
            self.redis.stop()
        for sandbox in self.sandboxes:
            sandbox.destroy()


def _writable(sandbox) -> list[int]:
    out = []
    for node in sandbox.nodes:
        try:
            if sandbox.running(node) and sandbox.sql(node, "SELECT @@read_only AS ro")[0]["ro"] == 0:
                out.append(node)
        except Exception:  # noqa: BLE001
            continue
    return out


def _redis_answers(port: int) -> bool:
    import redis

    try:
        return redis.Redis(port=port, socket_timeout=1).ping()
    except redis.RedisError:
        return False


def _wait(predicate, timeout: float, what: str) -> None:
    if not _wait_quietly(predicate, timeout):
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def _wait_quietly(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def run(seconds: float, clusters: int = 3, seed: int | None = None, semi_sync: bool = True) -> SoakReport:
    workdir = Path(tempfile.mkdtemp(prefix="dbpilot-soak-"))
    return Soak(seconds, clusters, seed, workdir, semi_sync).run()


def main() -> int:
    parser = argparse.ArgumentParser(description="dbpilot soak: random faults under writers")
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--async", dest="semi_sync", action="store_false", help="asynchronous replication (may lose writes)"
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    report = run(args.minutes * 60, args.clusters, args.seed, args.semi_sync)
    print("\n".join(report.lines()))
    return 0 if report.lost == 0 and not report.two_writable else 1


if __name__ == "__main__":
    sys.exit(main())
