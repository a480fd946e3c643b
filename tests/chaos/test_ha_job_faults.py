"""Faults of dbpilot itself in the middle of a switchover's write freeze, under a writer.

dbpilot runs as in production, every part a real process on a private PostgreSQL control-plane
database: the web server (daphne), two workers (every queue), a beat; a real 3-server MariaDB cluster is
registered and switched over through the API while tests/writer.py inserts. The fault is injected at the
moment the old primary turns read-only (the freeze has begun):

First switchover: PostgreSQL is crashed (pg_ctl -m immediate) and started again 3 s later. Meanwhile the API
  answers 503 JSON; afterwards the job resumes (the reaper hands it over) or finishes.
Second switchover: the worker running the job and the web server are SIGKILLed together; the other
  worker resumes the job once its lease lapses (lease, then the reaper's grace); a new web server answers.

Every time: the job ends `succeeded`, one HA job only (none started twice), never two writable servers,
one writable server at the end with the others replicating from it, and no acknowledged write missing.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pymysql
import redis

from tests.chaos.conftest import api, control_plane_env, create_tenant_token, free_port, listening
from tests.integration.failover_helpers import follows, writable_nodes
from tests.integration.switchover_helpers import address, writer_for
from tests.services_plugin import ManagedProcess, wait_for

BIN = Path(sys.executable).parent


def _web(env: dict, port: int, name: str) -> ManagedProcess:
    argv = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "controlplane.asgi:application"]
    return ManagedProcess(name, argv, env)


def _worker(env: dict, name: str) -> ManagedProcess:
    argv = [str(BIN / "celery"), "-A", "controlplane", "worker", "-n", f"{name}@%h", "-c", "2"]
    return ManagedProcess(name, argv + ["--loglevel", "INFO", "--without-gossip", "--without-mingle"], env)


def _beat(env: dict, name: str) -> ManagedProcess:
    return ManagedProcess(
        name, [str(BIN / "celery"), "-A", "controlplane", "beat", "--loglevel", "INFO"], env
    )


def _control_db(postgres):
    import psycopg

    return psycopg.connect(
        f"host=127.0.0.1 port={postgres.port} user=postgres dbname=dbpilot", autocommit=True
    )


def _job_row(postgres, job_id: int) -> tuple[str, int]:
    """The job's lease owner and attempts, read from the control-plane database."""
    with _control_db(postgres) as conn:
        return conn.execute(
            "SELECT lease_owner, attempts FROM clusters_job WHERE id = %s", (job_id,)
        ).fetchone()


def _ha_jobs(postgres, cluster_id: int) -> int:
    with _control_db(postgres) as conn:
        return conn.execute(
            "SELECT count(*) FROM clusters_job WHERE cluster_id = %s AND kind IN ('switchover', 'failover')",
            (cluster_id,),
        ).fetchone()[0]


def _owner_pid(postgres, job_id: int) -> int | None:
    parts = (_job_row(postgres, job_id)[0] or "").split(":")  # engine.worker_identity: host:pid:random
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


def _worker_of(pid: int, workers: list[ManagedProcess]) -> ManagedProcess | None:
    """The worker whose process group (it and its pool) the pid belongs to."""
    try:
        group = os.getpgid(pid)
    except OSError:
        return None
    return next((w for w in workers if w.proc.pid == group), None)


class ReadOnlyWatch:
    """@@read_only of every node on kept root connections, opened before a freeze lowers the old primary's
    max_connections; one the freeze kills is opened again, and a node that cannot be asked right now
    (1040 while its connections are lowered) is left out of that look."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.conns: dict[int, pymysql.Connection] = {}

    def read_only(self, node: int) -> bool | None:
        try:
            if node not in self.conns:
                self.conns[node] = self.sandbox.connect(node)  # root, through the socket
            with self.conns[node].cursor() as cursor:
                cursor.execute("SELECT @@read_only AS ro")
                return cursor.fetchone()["ro"] == 1
        except pymysql.Error:
            self.conns.pop(node, None)
            return None

    def writable(self) -> list[int]:
        return [n for n in self.sandbox.nodes if self.sandbox.running(n) and self.read_only(n) is False]

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()
        self.conns.clear()


def test_switchovers_survive_dbpilots_own_faults_during_the_freeze(
    postgres, sandbox_factory, tmp_path, settings
):
    """Two switchovers of one cluster under one writer: PostgreSQL crashed during the first's freeze, the
    job's worker and the web server killed during the second's."""
    sandbox = sandbox_factory(3)
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    env = control_plane_env(postgres.url, settings.REDIS_URL, tmp_path)
    token = create_tenant_token(env, "admin")
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1"
    web = _web(env, port, "chaos-ha-web-1")
    workers = [_worker(env, f"chaos-ha-worker-{n}") for n in (1, 2)]
    processes = [web, *workers, _beat(env, "chaos-ha-beat")]
    writer = writer_for(sandbox, rate=100)
    watch = ReadOnlyWatch(sandbox)
    try:
        wait_for(lambda: listening(port), 30, interval=0.2, message="the web server")
        described = sandbox.describe()
        status, _, cluster = api(
            "POST",
            f"{base}/clusters/",
            token,
            {
                "name": "chaos-ha",
                "servers": [{"host": n["host"], "port": n["port"]} for n in described["nodes"]],
                "credentials": described["credentials"]["admin"],
                "replication_credentials": described["credentials"]["replication"],
                "settings": {},
            },
        )
        assert status == 201, cluster
        primary = sandbox.find_primary()
        wait_for(
            lambda: (
                (api("GET", f"{base}/clusters/{cluster['id']}/topology/", token)[2] or {}).get("primary")
                == address(sandbox, primary)
            ),
            40,
            interval=0.3,
            message="monitoring to see the primary",
        )
        writer.start()
        time.sleep(1)

        for number, fault in enumerate(("postgres", "worker_and_web"), start=1):
            status, _, job = api("POST", f"{base}/clusters/{cluster['id']}/switchover/", token, {})
            assert status == 202, job
            job_id = job["id"]
            # The fault lands when the old primary turns read-only: the freeze has begun.
            watch.writable()  # every connection open before the freeze
            wait_for(
                lambda p=primary: watch.read_only(p), 30, interval=0.002, message="the switchover's freeze"
            )
            fault_at = time.monotonic()
            if fault == "postgres":
                postgres.stop("immediate")
                seen = []
                while time.monotonic() - fault_at < 3:
                    seen.append(api("GET", f"{base}/jobs/{job_id}/", token))
                    assert len(watch.writable()) <= 1, "two writable servers"
                    time.sleep(0.2)
                assert {code for code, _, _ in seen} == {503}, seen
                assert all(body and body.get("code") == "database_unavailable" for _, _, body in seen)
                postgres.start()
            else:
                owner = wait_for(lambda j=job_id: _owner_pid(postgres, j), 5, message="the job's worker")
                holder = _worker_of(owner, workers)
                assert holder is not None, f"no worker of ours runs the job (pid {owner})"
                holder.kill(signal.SIGKILL)
                web.kill(signal.SIGKILL)
                assert next(w for w in workers if w is not holder).alive()
                web = _web(env, port, "chaos-ha-web-2")
                processes.append(web)
                wait_for(lambda: listening(port), 30, interval=0.2, message="the new web server")

            final = None
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                assert len(watch.writable()) <= 1, "two writable servers"
                status, _, final = api("GET", f"{base}/jobs/{job_id}/", token)
                if status == 200 and final["state"] not in ("pending", "running"):
                    break
                time.sleep(0.3)
            ended_after = time.monotonic() - fault_at
            assert final and final["state"] == "succeeded", final
            writable = writable_nodes(sandbox)
            assert len(writable) == 1 and writable[0] != primary, writable
            primary = writable[0]
            for node in sandbox.nodes:
                if node != primary:
                    wait_for(
                        lambda n=node, p=primary: follows(sandbox, n, p), 20, message=f"node {node} to follow"
                    )
            assert _ha_jobs(postgres, cluster["id"]) == number  # no HA job was started twice
            gap = writer.largest_gap()
            print(
                f"\n{fault}: switchover job {job_id} {final['state']} {ended_after:.1f}s after the fault, "
                f"attempts {_job_row(postgres, job_id)[1]}; longest write gap so far {gap.ms if gap else 0:.0f} ms"
            )
            time.sleep(2)  # monitoring sees the new primary before the next switchover

        time.sleep(1)
        writer.stop()
        missing = writer.missing_on(address(sandbox, primary))
        assert not missing, f"acknowledged writes lost: {sorted(missing)[:10]}"
        print(f"writes acknowledged {writer.ack_count()}, lost 0")
    finally:
        watch.close()
        writer.stop()
        for process in processes:
            process.stop()
