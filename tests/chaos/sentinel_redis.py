"""A Redis master, its replica and three Debian redis-sentinel processes (quorum 2) on loopback, each on its
own port: what tests/chaos/test_redis_sentinel.py and bench/soak.py point dbpilot at (`sentinel://`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from tests.chaos.conftest import free_port
from tests.services_plugin import ManagedProcess

MASTER_NAME = "dbpilot-chaos"


class SentinelRedis:
    def __init__(self, workdir: Path, prefix: str = "chaos"):
        self.dir = workdir
        self.prefix = prefix
        self.ports = {"master": free_port(), "replica": free_port()}
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[str, ManagedProcess] = {}
        for role in ("master", "replica"):
            self.start_server(role)
        sentinel = shutil.which("redis-sentinel")
        for n, port in enumerate(self.sentinel_ports):
            conf = workdir / f"sentinel-{n}.conf"  # Sentinel rewrites its own configuration file
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.ports['master']} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                f"sentinel failover-timeout {MASTER_NAME} 10000\n"
            )
            self.processes[f"sentinel-{n}"] = ManagedProcess(
                f"{prefix}-sentinel-{n}", [sentinel, str(conf)], {}
            )
        self.url = (
            "sentinel://" + ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports) + f"/{MASTER_NAME}/0"
        )

    def start_server(self, role: str) -> None:
        """(Re)start the server first started as `role` ("master" or "replica"). A restarted former
        master comes up empty and as a master: the Sentinels make it a replica of the current one."""
        argv = [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(self.ports[role]),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
        ]
        if role == "replica":
            argv += ["--replicaof", "127.0.0.1", str(self.ports["master"])]
        self.processes[role] = ManagedProcess(f"{self.prefix}-redis-{role}", argv, {})

    def role_at(self, port: int) -> str:
        return next(role for role, p in self.ports.items() if p == port)

    def master_port(self) -> int | None:
        for port in self.sentinel_ports:
            try:
                found = redis.Redis(port=port, socket_timeout=1).sentinel_get_master_addr_by_name(MASTER_NAME)
            except redis.RedisError:
                continue
            if found:
                return int(found[1])
        return None

    def replica_in_sync(self, port: int | None = None) -> bool:
        try:
            info = redis.Redis(port=port or self.ports["replica"], socket_timeout=1).info("replication")
        except redis.RedisError:
            return False
        return info.get("role") == "slave" and info.get("master_link_status") == "up"

    def sentinels_know_the_replica(self) -> bool:
        try:
            return all(
                redis.Redis(port=p, socket_timeout=1).sentinel_slaves(MASTER_NAME)
                for p in self.sentinel_ports
            )
        except redis.RedisError:
            return False

    def ready(self) -> bool:
        """Every Sentinel agrees on a master, the other server replicates from it and every Sentinel knows
        that replica: a failover can be done."""
        master = self.master_port()
        if master is None:
            return False
        others = [p for p in self.ports.values() if p != master]
        try:
            agreed = all(
                int(redis.Redis(port=p, socket_timeout=1).sentinel_get_master_addr_by_name(MASTER_NAME)[1])
                == master
                for p in self.sentinel_ports
            )
        except (redis.RedisError, TypeError):
            return False
        return agreed and all(self.replica_in_sync(p) for p in others) and self.sentinels_know_the_replica()

    def failover(self) -> None:
        """`SENTINEL FAILOVER`: the replica is promoted without agreement from the others (a forced one)."""
        redis.Redis(port=self.sentinel_ports[0], socket_timeout=5).execute_command(
            "SENTINEL", "FAILOVER", MASTER_NAME
        )

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop(timeout=5)
