"""Benchmark: automatic failover of a 3-node semi-sync cluster under a steady writer.

    .venv/bin/python bench/failover.py [--kill-trials 10] [--stop-trials 5] [--rate 200] [--runner queue|thread]
                                       [--inline]

Starts a throwaway control-plane database (SQLite under a temporary DBPILOT_DATA_ROOT), its own Redis, a
local sandbox (three MariaDB servers, semi-sync), and dbpilot as a deployment runs it: Celery beat, a
worker for the `ticks` queue and one for the `ha` queue (with --inline, this process ticks the cluster
itself every tick_seconds and jobs run inline: for profiling). The cluster is registered with
`failover_mode: automatic` (the adopt job arms it), `failover_limit` 0 and `failover_min_interval_seconds`
0, so every trial fails over.

SIGKILL trials (one cluster, `semi_sync_on_timeout: async`, the default): the writer (tests/writer.py,
about --rate inserts/s, following the writable server) runs throughout; at a random moment of the tick
cycle the primary is killed; then the figures; then the old primary is restarted and the script waits
until dbpilot has rejoined (or quarantined) it. SIGSTOP trials (a fresh cluster each, with
`semi_sync_on_timeout: wait`): the primary is frozen, dbpilot fails over once the replicas notice, the old
primary is resumed and must end read-only.

Per trial and as p50/p99: detection (kill → the failover job created, confirmed by the replicas),
job start (kill → the job claimed), promotion (job claimed → writes opened on the new primary), kill →
first acknowledged write on the new primary (the writer's client timeouts: connect 0.5 s, read 1 s), and
acknowledged rows missing on the new primary (lost).
Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.switchover import configure, percentile, start_redis  # noqa: E402

# The writer's client timeouts are part of "first write": against a frozen primary each attempt waits for
# them (connect 0.5 s, then the handshake or the statement, up to this read timeout).
WRITER_READ_TIMEOUT = 1.0


def start_process(
    data_root: str, redis_url: str, runner: str, argv: list[str], name: str
) -> subprocess.Popen:
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="controlplane.settings",
        DBPILOT_DATA_ROOT=data_root,
        REDIS_URL=redis_url,
        DEBUG="1",
        PYTHONUNBUFFERED="1",
        DBPILOT_FAILOVER_RUNNER=runner,
        DBPILOT_ALLOWED_SOCKET_DIRS="/tmp/dbp",
        LOG_LEVEL="WARNING",
    )
    log = open(Path(data_root) / f"{name}.log", "ab")
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "controlplane", *argv],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_dbpilot(data_root: str, redis_url: str, runner: str) -> list[subprocess.Popen]:
    common = ["--without-gossip", "--without-mingle", "--loglevel", "WARNING"]
    return [
        start_process(
            data_root,
            redis_url,
            runner,
            ["worker", "-Q", "ticks", "-n", f"ticks-{os.getpid()}@%h", "--concurrency", "2", *common],
            "worker-ticks",
        ),
        start_process(
            data_root,
            redis_url,
            runner,
            ["worker", "-Q", "ha", "-n", f"ha-{os.getpid()}@%h", "--concurrency", "2", *common],
            "worker-ha",
        ),
        start_process(
            data_root,
            redis_url,
            runner,
            ["beat", "--loglevel", "WARNING", "-s", str(Path(data_root) / "beat-schedule")],
            "beat",
        ),
    ]


class Bench:
    def __init__(self, args):
        self.args = args
        from tenants.services import create_tenant

        self.created = create_tenant("bench", "ops", "bench@example.com", "a-long-password-1", "admin")
        self.ticker = None

    def register(self, sandbox, name: str, **settings):
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
                "failover_limit": 0,
                "failover_min_interval_seconds": 0,
                **settings,
            },
        }
        parsed = registration.parse_request(self.created.tenant, payload)
        cluster = registration.register_cluster(
            self.created.team, parsed, registration.check_servers_answer(parsed), requested_by="bench"
        )
        self.wait(
            lambda: Cluster.objects.get(pk=cluster.pk).failover_armed, 60, "the adopt job to arm the cluster"
        )
        return Cluster.objects.get(pk=cluster.pk)

    def wait(self, predicate, timeout: float, what: str, interval: float = 0.02):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")
            if self.args.inline:
                self.tick_inline()
            time.sleep(interval)

    _next_tick = 0.0

    def tick_inline(self):
        """--inline: this process is the beat and the ticks worker (one tick per tick_seconds)."""
        from clusters.models import Cluster
        from clusters.services.monitoring import monitor_shard

        if time.monotonic() < self._next_tick:
            return
        self._next_tick = time.monotonic() + 1.0
        monitor_shard(list(Cluster.objects.values_list("id", flat=True)))

    def failover_after(self, cluster, after: datetime):
        from clusters.models import Job

        return (
            Job.objects.filter(cluster=cluster, kind="failover", created_at__gte=after)
            .exclude(state__in=("pending", "running"))
            .first()
        )

    def healthy(self, sandbox, primary: int) -> bool:
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
        return True

    def trial(self, sandbox, cluster, writer, primary: int, sig: int) -> dict:
        # A random moment of the tick cycle.
        time.sleep(random.uniform(0, 1.0))
        killed_wall = datetime.now(UTC)
        killed = time.monotonic()
        sandbox.kill(primary, sig)
        job = self.wait(lambda: self.failover_after(cluster, killed_wall), 60, "the failover job")
        if job.state != "succeeded":
            raise RuntimeError(f"failover job {job.id} {job.state}: {job.result.get('detail')}")
        new = next(
            n for n in sandbox.nodes if f"{sandbox.host(n)}:{sandbox.port(n)}" == job.result["new_primary"]
        )
        self.wait(
            lambda: any(a.server == job.result["new_primary"] and a.at > killed for a in list(writer.acks)),
            30,
            "a write on the new primary",
        )
        first = next(a for a in list(writer.acks) if a.server == job.result["new_primary"] and a.at > killed)
        opened = job.result.get("writes_opened_at")
        row = {
            "job": job.id,
            "new": new,
            "detection": (job.created_at - killed_wall).total_seconds() * 1000,
            "start": (job.started_at - killed_wall).total_seconds() * 1000,
            "promotion": (opened - job.started_at.timestamp()) * 1000 if opened else float("nan"),
            "first_write": (first.at - killed) * 1000,
            "timings": job.result["timings_ms"],
            "guarantee": job.result["rpo"]["guarantee"],
        }
        writer.wait_for_acks(int(self.args.rate / 4))
        lost = writer.missing_on(job.result["new_primary"])
        row["lost"] = len(lost)
        return row

    def report(self, title: str, rows: list[dict]) -> None:
        print(f"\n{title}: {len(rows)} trials")
        for key, label in (
            ("detection", "kill -> failover confirmed"),
            ("start", "kill -> job start"),
            ("promotion", "job start -> writes open"),
            ("first_write", "kill -> first write"),
        ):
            values = [r[key] for r in rows]
            print(
                f"  {label:28s} p50 {percentile(values, 0.5):7.0f} ms  p99 {percentile(values, 0.99):7.0f} ms  "
                f"mean {statistics.mean(values):7.0f} ms"
            )
        print(f"  lost acknowledged rows        total {sum(r['lost'] for r in rows)}")
        names = list(rows[0]["timings"])
        slow = sorted(names, key=lambda n: -statistics.median(r["timings"].get(n, 0) for r in rows))[:6]
        print(
            "  job steps (median ms): "
            + ", ".join(f"{n} {statistics.median(r['timings'].get(n, 0) for r in rows):.0f}" for n in slow)
        )

    def print_row(self, kind: str, number: int, row: dict) -> None:
        print(
            f"{kind} {number:2d}: job {row['job']:3d} -> node {row['new']}  confirmed {row['detection']:6.0f} ms  "
            f"job start {row['start']:6.0f} ms  promotion {row['promotion']:5.0f} ms  first write "
            f"{row['first_write']:6.0f} ms  lost {row['lost']}  ({row['guarantee']})",
            flush=True,
        )


def kill_trials(bench: Bench, args) -> list[dict]:
    """SIGKILL trials on one cluster; when dbpilot quarantines a returning old primary (it holds a
    transaction that was in its binlog but never reached a replica: not acknowledged, so not lost), the
    remaining trials go on with a fresh cluster, as an operator would rebuild that server."""
    from clusters.models import Event, Job, Server
    from clusters.providers import LocalSandbox
    from clusters.services.registration import delete_cluster
    from tests.writer import Writer

    rows: list[dict] = []
    generation = 0
    while len(rows) < args.kill_trials:
        generation += 1
        sandbox = LocalSandbox(f"b-{secrets.token_hex(3)}", 3, semi_sync=True, temporary=True)
        cluster = None
        try:
            described = sandbox.up()
            cluster = bench.register(sandbox, f"kill{generation}")
            app = sandbox.accounts.app
            writer = Writer(
                [n["address"] for n in described["nodes"]],
                app.user,
                app.password,
                rate=args.rate,
                read_timeout=WRITER_READ_TIMEOUT,
            ).start()
            writer.wait_for_acks(int(args.rate))
            primary = 1
            try:
                while len(rows) < args.kill_trials:
                    # Healthy, and no job running: a rejoin still verifying its samples would fail if
                    # its primary were killed under it (and then wait for its retry's backoff).
                    bench.wait(
                        lambda sb=sandbox, p=primary, cl=cluster: (
                            bench.healthy(sb, p)
                            and not Job.objects.filter(cluster=cl, state__in=("pending", "running")).exists()
                        ),
                        60,
                        "a healthy cluster with no job running",
                    )
                    row = bench.trial(sandbox, cluster, writer, primary, signal.SIGKILL)
                    rows.append(row)
                    bench.print_row("SIGKILL", len(rows), row)
                    old, primary = primary, row["new"]
                    sandbox.start(old)
                    host, port = sandbox.host(old), sandbox.port(old)

                    def settled(host=host, port=port, cluster=cluster):
                        server = Server.objects.get(cluster=cluster, host=host, port=port)
                        return not server.fenced or server.quarantined

                    try:
                        bench.wait(settled, 60, "the old primary to rejoin")
                    except RuntimeError:
                        from clusters.domain.failover_plan import fence_plans
                        from clusters.services.monitoring import tick_cluster

                        result = tick_cluster(cluster.id)
                        print(
                            "          fence plans:",
                            fence_plans(result.topology, result.probes, result.settings),
                        )
                        print(
                            "          servers:",
                            list(cluster.servers.values_list("port", "fenced", "quarantined")),
                        )
                        print(
                            "          events:",
                            list(
                                Event.objects.filter(cluster=cluster)
                                .order_by("-id")
                                .values_list("kind", "message")[:8]
                            ),
                        )
                        for rejoin in Job.objects.filter(cluster=cluster, kind="rejoin").order_by("-id")[:3]:
                            print(
                                f"          rejoin job {rejoin.id} {rejoin.state}: {rejoin.result.get('detail')} "
                                f"{[(s['name'], s['state'], s['detail'][:200]) for s in rejoin.steps]}"
                            )
                        raise
                    if Server.objects.get(cluster=cluster, host=host, port=port).quarantined:
                        event = Event.objects.filter(cluster=cluster, kind="server_quarantined").first()
                        print(f"          node {old} quarantined: {event.message if event else '?'}")
                        break
            finally:
                writer.stop()
            print(
                f"          writer: acknowledged rows {len(writer.acknowledged())}, "
                f"outcome unknown {len(writer.unknown)}"
            )
        finally:
            sandbox.destroy()
            if cluster is not None:
                delete_cluster(cluster)
    return rows


def stop_trials(bench: Bench, args) -> list[dict]:
    from clusters.models import Server
    from clusters.providers import LocalSandbox
    from clusters.services.registration import delete_cluster
    from tests.writer import Writer

    rows = []
    for number in range(1, args.stop_trials + 1):
        sandbox = LocalSandbox(f"b-{secrets.token_hex(3)}", 3, semi_sync=True, temporary=True)
        cluster = None
        try:
            described = sandbox.up()
            cluster = bench.register(sandbox, f"stop{number}", semi_sync_on_timeout="wait")
            app = sandbox.accounts.app
            writer = Writer(
                [n["address"] for n in described["nodes"]],
                app.user,
                app.password,
                rate=args.rate,
                read_timeout=WRITER_READ_TIMEOUT,
            ).start()
            try:
                writer.wait_for_acks(int(args.rate))
                row = bench.trial(sandbox, cluster, writer, 1, signal.SIGSTOP)
                sandbox.kill(1, signal.SIGCONT)
                bench.wait(
                    lambda sb=sandbox: sb.sql(1, "SELECT @@read_only AS ro")[0]["ro"] == 1,
                    30,
                    "the resumed old primary to be fenced read-only",
                )
                row["lost"] = len(writer.missing_on(f"{sandbox.host(row['new'])}:{sandbox.port(row['new'])}"))
            finally:
                writer.stop()
            rows.append(row)
            bench.print_row("SIGSTOP", number, row)
            old = Server.objects.get(cluster=cluster, host=sandbox.host(1), port=sandbox.port(1))
            print(
                f"          old primary read-only after SIGCONT; {'quarantined' if old.quarantined else 'fenced'}"
            )
        finally:
            sandbox.kill(1, signal.SIGCONT)
            sandbox.destroy()
            if cluster is not None:
                delete_cluster(cluster)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kill-trials", type=int, default=10)
    parser.add_argument("--stop-trials", type=int, default=5)
    parser.add_argument("--rate", type=float, default=200.0, help="writer inserts per second")
    parser.add_argument(
        "--runner",
        choices=("thread", "queue"),
        default="queue",
        help="where a failover confirmed by a tick runs (clusters.jobs.runner)",
    )
    parser.add_argument("--inline", action="store_true", help="tick and run jobs in this process (profiling)")
    parser.add_argument("--redis-url", help="an existing Redis (default: start a private one)")
    args = parser.parse_args()

    data_root = tempfile.mkdtemp(prefix="dbpilot-bench-")
    redis_process = None
    if not args.redis_url:
        redis_process, args.redis_url = start_redis(data_root)
    os.environ["DBPILOT_FAILOVER_RUNNER"] = "inline" if args.inline else args.runner
    configure(data_root, args.redis_url)
    processes = [] if args.inline else start_dbpilot(data_root, args.redis_url, args.runner)
    try:
        bench = Bench(args)
        print(
            f"runner {'inline (this process ticks)' if args.inline else args.runner}, writer at {args.rate:g}/s, "
            f"logs in {data_root}"
        )
        kill_rows = kill_trials(bench, args) if args.kill_trials else []
        stop_rows = stop_trials(bench, args) if args.stop_trials else []
        if kill_rows:
            bench.report("SIGKILL", kill_rows)
        if stop_rows:
            bench.report("SIGSTOP (semi_sync_on_timeout: wait)", stop_rows)
        return 0
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait(10)


if __name__ == "__main__":
    sys.exit(main())
