"""Soak: dbpilot runs for a bounded time while random faults hit the databases and dbpilot itself.

Run (root, as the sandboxes need): .venv/bin/python bench/soak.py [--minutes 20] [--clusters 3] [--seed N]
    [--async] [--no-netns] [--no-sentinel] [--fence-hook]
CI runs a short part of it: tests/chaos/test_soak.py (one cluster, 40 s of faults).

What runs: dbpilot as processes on a SQLite control-plane database (one web server, two workers on every
queue, two beats) on a Redis master and its replica behind three Debian redis-sentinel processes
(`REDIS_URL=sentinel://...`; `--no-sentinel`: one plain Redis), N real 3-server MariaDB clusters, each
server in its own network namespace (clusters/providers/netns.py; `--no-netns`: loopback ports, no
network cuts), semi-synchronous replication (`--async` for asynchronous, where a primary killed before a
replica received its last commits loses them: acknowledged writes lost), registered through the API with
automatic failover (its anti-flapping guards relaxed: RELAXED_GUARDS; `rejoin_method: flashback`, so an
old primary back with a commit it never got acknowledged is repaired rather than quarantined), and
tests/writer.py inserting into each (50 rows/s, following whichever server takes writes). One fault at a
time, each chosen at random among those the rules allow:

- databases (on a cluster that is healthy: one writable server, every other replicating from it, no job
  running): SIGKILL the primary (dbpilot fails over; the node is started again 20 s later and rejoins),
  SIGKILL a replica or stop it cleanly (started again 5 s later); **cut the primary off from everyone**
  (nftables drops in its namespace: its replicas, dbpilot and the writer hear silence) for
  CUT_PRIMARY_SECONDS, longer than detection needs: dbpilot fails over, and when the cut heals the old
  primary, still writable, must be fenced (read-only) and rejoined; **cut the primary off from dbpilot
  alone** (and the writer, which shares its address) for CUT_FROM_DBPILOT_SECONDS, past failcount, while
  its replicas still receive from it: no failover may start (a failover job is reported);
- dbpilot itself: SIGKILL the active beat, a worker or the web server (each started again 5 s later);
  with Sentinel (once the previous Redis failover is over), `SENTINEL FAILOVER` or SIGKILL of the Redis
  master (started again 8 s later, empty: the Sentinels make it the new master's replica); with one
  plain Redis, restart it (its state is lost: the broker, the locks, the hot state).

After each fault it waits until every cluster is healthy again (at most 120 s) and a few seconds more.
Throughout, a watcher reads @@read_only of every running server four times a second over kept root
connections (the unix socket, which a cut does not reach): two writable servers in one cluster is an
incident. A server cut off from everyone does not count while the cut lasts (no client, dbpilot or replica
reaches it: nothing can be written or acknowledged there; the looks that saw it writable are counted
apart); from the heal on it counts, and the time until it is seen read-only is reported. At the end,
each cluster's acknowledged writes are checked on its final primary. The report: faults injected,
failovers, write gaps (the pauses between consecutive acknowledged writes longer than 250 ms: p50, p99,
max), acknowledged writes lost (must be 0), two-writable incidents (must be 0), failovers during a cut
from dbpilot alone (must be none), findings left open.

Without a fence hook, dbpilot promotes while a primary cut off from everyone is still writable (it cannot
reach it) and fences it at its first tick after the heal: the watcher sees two writable servers for up to
about a second then (docs/benchmarks.md, run 4). `--fence-hook` configures the design's answer, a required
`fence` hook (FENCE_SCRIPT: it powers the old primary off; the soak starts it again when the cut heals).
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
# A primary cut off from everyone stays cut this long: past detection (failcount probes, the replicas'
# 2.5 s heartbeat silence) and the failover, so it comes back after another server took the writes.
CUT_PRIMARY_SECONDS = 10
# A primary cut off from dbpilot (and the writer, on the same address) alone: past failcount (~2.2 s), while
# its replicas still receive from it: no failover may start.
CUT_FROM_DBPILOT_SECONDS = 6
FIRST_FAULT_AFTER_SECONDS = 5
SANDBOX_NETWORK = "10.231.0.0/16"  # clusters.providers.netns
FENCE_HOOK = "soak-power-off"
# `--fence-hook`: the soak's STONITH. dbpilot runs it (EVENT fence) before promoting when the old
# primary's state is unknown; it "powers off" that server (SIGKILL of the mariadbd found from the pid file
# the soak listed for its address, checked by its command line); the soak starts it again when its cut heals.
FENCE_SCRIPT = """#!/bin/sh
set -u
[ "$DBPILOT_EVENT" = fence ] || exit 0
entry="servers/$DBPILOT_OLD_PRIMARY"
[ -f "$entry" ] || { echo "not a soak server: $DBPILOT_OLD_PRIMARY"; exit 1; }
pidfile=$(sed -n 1p "$entry"); conf=$(sed -n 2p "$entry")
pid=$(cat "$pidfile" 2>/dev/null) || { echo "$DBPILOT_OLD_PRIMARY: no pid file, already down"; exit 0; }
if tr '\\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--defaults-file=$conf"; then
    kill -9 "$pid" && echo "$DBPILOT_OLD_PRIMARY: powered off (pid $pid)"
else
    echo "$DBPILOT_OLD_PRIMARY: already down"
fi
"""
BIN = Path(sys.executable).parent


@dataclass
class SoakReport:
    seconds: float = 0.0
    clusters: int = 0
    seed: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    failovers: int = 0
    jobs: dict[str, int] = field(default_factory=dict)
    gaps_ms: list[float] = field(default_factory=list)
    acknowledged: int = 0
    lost: int = 0
    two_writable: list[str] = field(default_factory=list)
    # Writable while cut off from every client and from dbpilot: not an incident (no one can write there);
    # how long a healed old primary stayed writable is (fenced_after_heal_ms).
    writable_while_cut: int = 0
    fenced_after_heal_ms: list[float] = field(default_factory=list)
    failovers_on_one_sided_cut: list[str] = field(default_factory=list)
    redis: str = "one Redis"
    unhealthy_after_fault: list[str] = field(default_factory=list)
    findings_open: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        gaps = sorted(self.gaps_ms)

        def pct(f: float) -> str:
            return f"{gaps[min(len(gaps) - 1, int(f * len(gaps)))]:.0f}" if gaps else "-"

        return [
            f"soak: {self.seconds / 60:.1f} min, {self.clusters} cluster(s) of 3 servers under writers; {self.redis}; seed {self.seed}",
            f"  faults injected: {sum(self.faults.values())} ({', '.join(f'{k} {v}' for k, v in sorted(self.faults.items()))})",
            f"  failovers: {self.failovers}; jobs: {json.dumps(self.jobs, sort_keys=True)}",
            f"  write gaps over {GAP_SECONDS * 1000:.0f} ms: {len(gaps)}; p50 {pct(0.5)} ms, p99 {pct(0.99)} ms, "
            f"max {max(gaps, default=0):.0f} ms",
            f"  acknowledged writes: {self.acknowledged}; lost: {self.lost}",
            f"  two-writable incidents: {len(self.two_writable)}"
            + (f" ({'; '.join(self.two_writable)})" if self.two_writable else ""),
            f"  old primaries cut off then healed: fenced (read-only) {_figures(self.fenced_after_heal_ms)} ms "
            f"after the heal; looks that saw one writable while cut off: {self.writable_while_cut}",
            f"  failovers during a cut from dbpilot alone (must be none): {self.failovers_on_one_sided_cut or 'none'}",
            f"  not healthy within {HEALTHY_WAIT_SECONDS} s of a fault: {self.unhealthy_after_fault or 'none'}",
            f"  findings left open: {self.findings_open or 'none'}",
        ]


class _Watch(threading.Thread):
    """@@read_only of every running server of every cluster, 4 times a second, on kept root connections
    (the unix socket: it sees a server that is cut off from the network too).

    A server cut off from everyone (`cut_off`) is not counted as writable while the cut lasts: no client
    and no dbpilot can reach it, and its replicas no longer acknowledge its commits. Once healed it counts
    at once, and the time until it is seen read-only is kept (`healed`)."""

    def __init__(self, sandboxes, report: SoakReport):
        super().__init__(name="soak-watch", daemon=True)
        self.sandboxes = sandboxes
        self.report = report
        self.local = threading.local()  # connections per thread: the main loop asks too
        self.stop_event = threading.Event()
        self.cut_off: set[tuple[int, int]] = set()
        self.healed: dict[tuple[int, int], float] = {}  # (cluster index, node) -> monotonic time of the heal
        self.lock = threading.Lock()
        self.episodes: dict[int, dict] = {}  # cluster index -> the two-writable episode going on

    def _read_only(self, index: int, node: int) -> bool | None:
        import pymysql

        sandbox = self.sandboxes[index]
        key = (index, node)
        if not hasattr(self.local, "conns"):
            self.local.conns = {}
        conns = self.local.conns
        try:
            if key not in conns:
                conns[key] = sandbox.connect(node, timeout=1)
            with conns[key].cursor() as cursor:
                cursor.execute("SELECT @@read_only AS ro")
                return cursor.fetchone()["ro"] == 1
        except (pymysql.Error, OSError, Exception):  # noqa: BLE001 - a node going down: unknown this look
            conns.pop(key, None)
            return None

    def writable(self, index: int) -> list[int]:
        sandbox = self.sandboxes[index]
        with self.lock:
            cut_off = {node for i, node in self.cut_off if i == index}
        out = []
        for node in sandbox.nodes:
            if not sandbox.running(node):
                continue
            read_only = self._read_only(index, node)
            if node in cut_off:
                if threading.current_thread() is self:
                    self.report.writable_while_cut += read_only is False
            elif read_only is False:
                out.append(node)
        return out

    def cut(self, index: int, node: int) -> None:
        with self.lock:
            self.cut_off.add((index, node))

    def heal(self, index: int, node: int) -> None:
        with self.lock:
            self.cut_off.discard((index, node))
            self.healed[(index, node)] = time.monotonic()

    def _check_healed(self) -> None:
        with self.lock:
            healed = dict(self.healed)
        for (index, node), at in healed.items():
            read_only = self._read_only(index, node)
            if read_only or time.monotonic() - at > HEALTHY_WAIT_SECONDS:
                if read_only:
                    self.report.fenced_after_heal_ms.append((time.monotonic() - at) * 1000)
                with self.lock:
                    self.healed.pop((index, node), None)

    def run(self) -> None:
        while not self.stop_event.wait(0.25):
            self._check_healed()
            for index in range(len(self.sandboxes)):
                self._look(index, self.writable(index))

    def _look(self, index: int, writable: list[int]) -> None:
        """One incident per episode: from the first look that saw two writable servers to the first that
        did not, with how long it lasted (to the last look that saw it)."""
        episode = self.episodes.get(index)
        if len(writable) > 1:
            if episode is None:
                self.report.two_writable.append("")
                episode = self.episodes[index] = {
                    "entry": len(self.report.two_writable) - 1,
                    "at": time.strftime("%H:%M:%S"),
                    "from": time.monotonic(),
                    "nodes": set(),
                }
            episode["nodes"] |= set(writable)
            episode["to"] = time.monotonic()
        elif episode is not None:
            del self.episodes[index]
        if episode is not None:
            lasted = (episode["to"] - episode["from"]) * 1000
            self.report.two_writable[episode["entry"]] = (
                f"cluster {index + 1} nodes {sorted(episode['nodes'])} at {episode['at']}, "
                f"seen for {lasted:.0f} ms"
            )


class Soak:
    def __init__(
        self,
        seconds: float,
        clusters: int,
        seed: int | None,
        workdir: Path,
        semi_sync: bool = True,
        netns: bool = True,
        sentinel: bool = True,
        fence_hook: bool = False,
    ):
        self.fence_hook = fence_hook
        self.seconds = seconds
        self.semi_sync = semi_sync
        self.netns = netns
        self.sentinel = sentinel
        self.seed = random.SystemRandom().randrange(1_000_000) if seed is None else seed  # said: rerun it
        self.rng = random.Random(self.seed)
        self.workdir = workdir
        self.report = SoakReport(clusters=clusters, seed=self.seed)
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

    def _start_sentinel_redis(self) -> str:
        from tests.chaos.sentinel_redis import SentinelRedis

        redis_dir = self.workdir / "redis"
        redis_dir.mkdir(exist_ok=True)
        self.sentinel_redis = SentinelRedis(redis_dir, prefix=f"soak-{os.getpid()}")
        _wait(lambda: self.sentinel_redis.master_port() is not None, 20, "the Sentinels to name a master")
        self.report.redis = "Redis master + replica behind 3 Sentinels"
        return self.sentinel_redis.url

    # --- set-up ---------------------------------------------------------------------------------------------

    def setup(self) -> None:
        from clusters.providers import LocalSandbox
        from tests.chaos.conftest import api, control_plane_env, create_tenant_token, free_port, listening
        from tests.writer import Writer

        if self.sentinel:
            redis_url = self._start_sentinel_redis()
        else:
            self.redis_port = free_port()
            self._start_redis()
            redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.db_path = self.workdir / "dbpilot.sqlite3"
        self.db_path.unlink(missing_ok=True)
        self.env = control_plane_env(f"sqlite:///{self.db_path}", redis_url, self.workdir)
        if self.netns:  # the servers live in network namespaces the sandboxes create, on 10.231.0.0/16
            self.env["DBPILOT_ALLOWED_NETWORKS"] += f",{SANDBOX_NETWORK}"
        if self.fence_hook:
            self.hooks_dir = self.workdir / "hooks"
            (self.hooks_dir / "servers").mkdir(parents=True, exist_ok=True)
            script = self.hooks_dir / FENCE_HOOK
            script.write_text(FENCE_SCRIPT)
            script.chmod(0o755)
            self.env["DBPILOT_HOOKS_DIR"] = str(self.hooks_dir)
            self.report.redis += f"; fence hook {FENCE_HOOK} (required)"
        token = create_tenant_token(self.env, "admin")
        self.port = free_port()
        for name in ("web", "worker-1", "worker-2", "beat-1", "beat-2"):
            self._start(name)
        _wait(lambda: listening(self.port), 60, "the web server")
        base = f"http://127.0.0.1:{self.port}/api/v1"
        for number in range(self.n_clusters):
            sandbox = LocalSandbox(
                f"soak-{os.getpid()}-{number + 1}",
                3,
                temporary=True,
                semi_sync=self.semi_sync,
                netns=self.netns,
            )  # runs may overlap
            self.sandboxes.append(sandbox)
            sandbox.up()
            described = sandbox.describe()
            if self.fence_hook:
                for node in sandbox.nodes:
                    config = sandbox.process(node).config
                    entry = self.hooks_dir / "servers" / f"{sandbox.host(node)}:{sandbox.port(node)}"
                    entry.write_text(f"{config.pid_file}\n{config.config_path}\n")
            status, _, cluster = api(
                "POST",
                f"{base}/clusters/",
                token,
                {
                    "name": f"soak-{number + 1}",
                    "servers": [{"host": n["host"], "port": n["port"]} for n in described["nodes"]],
                    "credentials": described["credentials"]["admin"],
                    "replication_credentials": described["credentials"]["replication"],
                    "settings": {
                        "failover_mode": "automatic",
                        # An old primary cut off while a commit waited for its acknowledgement comes
                        # back holding it (unacknowledged): the repair dbpilot has rolls it back.
                        "rejoin_method": ["flashback"],
                        **({"fence": FENCE_HOOK, "fence_required": True} if self.fence_hook else {}),
                        **RELAXED_GUARDS,
                    },
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
        if self.sentinel:  # the Sentinels learn the replica from the master within 10 s: long done by now
            _wait(self.sentinel_redis.ready, 30, "the Sentinels to know the Redis replica")
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

    def _heal(self, index: int, node: int) -> None:
        self.sandboxes[index].heal(node)
        self.watch.heal(index, node)
        if not self.sandboxes[index].running(node):  # powered off by the fence hook: on again
            self.sandboxes[index].start(node)

    def _failover_jobs(self, index: int) -> int:
        return self._db(
            "SELECT count(*) FROM clusters_job WHERE cluster_id = ? AND kind = 'failover'",
            (self.cluster_ids[index],),
        )[0][0]

    def _heal_one_sided(self, index: int, node: int, failovers_before: int) -> None:
        self.sandboxes[index].heal(node)
        if self._failover_jobs(index) != failovers_before:
            self.report.failovers_on_one_sided_cut.append(
                f"cluster {index + 1} node {node}, healed at {time.strftime('%H:%M:%S')}"
            )

    def _active_beat(self) -> str:
        """The beat that sent the schedule last (the lease holder)."""
        from tests.chaos.conftest import log_times

        def last_send(name: str) -> float:
            return max(log_times(self.processes[name].log_text(), "Sending due task"), default=0.0)

        return max(("beat-1", "beat-2"), key=last_send)

    def inject(self) -> str:
        healthy = [i for i in range(self.n_clusters) if self.healthy(i)]
        kinds = ["kill_beat", "kill_worker", "kill_web"]
        if not self.sentinel:
            kinds.append("restart_redis")
        elif self.sentinel_redis.ready():  # the previous Redis failover is over: one can be done
            kinds += ["redis_sentinel_failover", "kill_redis_master"]
        if healthy:
            kinds += ["kill_primary"] * 3 + ["kill_replica", "stop_replica"]
            if self.netns:
                kinds += ["cut_primary"] * 2 + ["cut_primary_from_dbpilot"]
        kind = self.rng.choice(kinds)
        if kind in ("cut_primary", "cut_primary_from_dbpilot"):
            index = self.rng.choice(healthy)
            sandbox = self.sandboxes[index]
            node = self.watch.writable(index)[0]
            if kind == "cut_primary":
                self.watch.cut(index, node)
                sandbox.cut(node)
                self._later(CUT_PRIMARY_SECONDS, lambda i=index, n=node: self._heal(i, n))
            else:
                failovers_before = self._failover_jobs(index)
                sandbox.cut(node, from_control=True, from_peers=False)
                self._later(
                    CUT_FROM_DBPILOT_SECONDS,
                    lambda i=index, n=node, b=failovers_before: self._heal_one_sided(i, n, b),
                )
            label = f"{kind} (cluster {index + 1}, node {node})"
        elif kind in ("kill_primary", "kill_replica", "stop_replica"):
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
        elif kind == "redis_sentinel_failover":
            before = self.sentinel_redis.master_port()
            self.sentinel_redis.failover()
            label = f"{kind} (master was :{before})"
        elif kind == "kill_redis_master":
            port = self.sentinel_redis.master_port()
            role = self.sentinel_redis.role_at(port)
            self.sentinel_redis.processes[role].kill(signal.SIGKILL)
            self.sentinel_redis.processes[role].stop()
            # Back after the Sentinels promoted the other one (1 s down-after, then the election): empty,
            # it becomes the new master's replica.
            self._later(8, lambda r=role: self.sentinel_redis.start_server(r))
            label = f"{kind} (:{port})"
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
            # A few ticks first: a failover right after registration is refused while the replicas' lag
            # is still unknown to dbpilot (electable_candidate), which is no fault of the soak's to test.
            time.sleep(FIRST_FAULT_AFTER_SECONDS)
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
        if hasattr(self, "sentinel_redis"):
            self.sentinel_redis.stop()
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


def _figures(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{len(ordered)}x: p50 {ordered[len(ordered) // 2]:.0f}, max {ordered[-1]:.0f}"


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


def run(
    seconds: float,
    clusters: int = 3,
    seed: int | None = None,
    semi_sync: bool = True,
    netns: bool = True,
    sentinel: bool = True,
    fence_hook: bool = False,
) -> SoakReport:
    workdir = Path(tempfile.mkdtemp(prefix="dbpilot-soak-"))
    return Soak(seconds, clusters, seed, workdir, semi_sync, netns, sentinel, fence_hook).run()


def main() -> int:
    parser = argparse.ArgumentParser(description="dbpilot soak: random faults under writers")
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--async", dest="semi_sync", action="store_false", help="asynchronous replication (may lose writes)"
    )
    parser.add_argument(
        "--no-netns",
        dest="netns",
        action="store_false",
        help="servers on loopback ports: no network cuts (no root, ip or nft needed for them)",
    )
    parser.add_argument(
        "--no-sentinel",
        dest="sentinel",
        action="store_false",
        help="one plain Redis (restarted as a fault) instead of a master, a replica and 3 Sentinels",
    )
    parser.add_argument(
        "--fence-hook",
        action="store_true",
        help=f"a required fence hook ({FENCE_HOOK}) powers off an old primary whose state is unknown",
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    report = run(
        args.minutes * 60,
        args.clusters,
        args.seed,
        args.semi_sync,
        args.netns,
        args.sentinel,
        args.fence_hook,
    )
    print("\n".join(report.lines()))
    return 0 if report.lost == 0 and not report.two_writable else 1


if __name__ == "__main__":
    sys.exit(main())
