"""A pool of database hosts made of network namespaces on this machine, each running a dbpilot agent
started the way docs/provisioning.md tells an operator to (a Celery worker of host.<name> with only the
broker's URL, the host's name and its key).

Every namespace hangs off the test bridge (clusters.providers.netns) with an address of 10.231.<k>.x,
reserved for test namespaces; the broker (this machine's Redis on loopback) is reached from inside through
a socat relay on the bridge address. Only the namespaces, agents and relay this pool created are removed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from clusters.models import DatabaseHost
from clusters.providers import netns
from clusters.providers.base import ProviderError
from clusters.providers.hosts_provider import call

REPO = Path(__file__).resolve().parents[2]
AGENT_PORTS = "3306-3320"  # each host has an address of its own: the usual port is free there


def operator_client() -> APIClient:
    user, _ = get_user_model().objects.get_or_create(
        username="platform-root", defaults={"is_superuser": True, "is_staff": True}
    )
    client = APIClient()
    client.force_authenticate(user)
    return client


@dataclass
class PoolHost:
    name: str
    zone: str
    namespace: str
    veth: str
    address: str
    data_root: Path
    key: str = ""
    agent: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        return dict(os.environ)


@dataclass
class HostPool:
    root: Path
    index: int
    hosts: list[PoolHost] = field(default_factory=list)
    relay: subprocess.Popen | None = None
    relay_port: int = 0

    @classmethod
    def create(cls, zones: list[str]) -> HostPool:
        netns.check_available()
        used = netns.used_indexes()
        index = next(i for i in range(netns.MAX_SANDBOX_INDEX, 150, -1) if i not in used)
        base = Path("/tmp/dbp") if Path("/tmp/dbp").is_dir() else None
        root = Path(tempfile.mkdtemp(prefix="hp", dir=base))
        os.chmod(root, 0o755)
        pool = cls(root, index)
        netns.ensure_bridge()
        try:
            for i, zone in enumerate(zones, start=1):
                host = PoolHost(
                    name=f"h{index}-{i}",
                    zone=zone,
                    namespace=netns.namespace_name(f"hp{index}", i),
                    veth=netns.host_veth_name(index, i),
                    address=netns.node_address(index, i),
                    data_root=root / f"h{i}",
                )
                host.data_root.mkdir(mode=0o755)
                pool.hosts.append(host)
                netns.create_node_namespace(host.namespace, host.veth, host.address)
            pool._start_relay()
        except BaseException:
            pool.destroy()
            raise
        return pool

    def _start_relay(self) -> None:
        """The broker, reachable from the namespaces at the bridge's address."""
        redis = urlparse(settings.REDIS_URL)
        with socket.socket() as probe:
            probe.bind((netns.CONTROL_ADDRESS, 0))
            self.relay_port = probe.getsockname()[1]
        self.relay = subprocess.Popen(
            [
                "socat",
                f"TCP-LISTEN:{self.relay_port},bind={netns.CONTROL_ADDRESS},fork,reuseaddr",
                f"TCP:{redis.hostname}:{redis.port or 6379}",
            ],
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((netns.CONTROL_ADDRESS, self.relay_port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def broker_url(self) -> str:
        db = urlparse(settings.REDIS_URL).path.lstrip("/") or "0"
        return f"redis://{netns.CONTROL_ADDRESS}:{self.relay_port}/{db}"

    def register(self, client: APIClient, capacity: int = 2, memory_mb: int = 4096) -> None:
        for host in self.hosts:
            response = client.post(
                "/api/v1/platform/hosts/",
                {
                    "name": host.name,
                    "address": host.address,
                    "zone": host.zone,
                    "capacity": {"instances": capacity, "memory_mb": memory_mb},
                },
                format="json",
            )
            assert response.status_code == 201, response.content
            host.key = response.json()["agent_key"]

    def register_direct(self, capacity: int = 2, memory_mb: int = 4096) -> None:
        """Through the service the API calls (the benchmark has no API client)."""
        from clusters.services.hosts import register_host

        for host in self.hosts:
            _, host.key = register_host(host.name, host.address, host.zone, capacity, memory_mb)

    def start_agent(self, host: PoolHost) -> None:
        """What an operator runs on the host: the broker, the host's name and key, where servers live."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(host.data_root),
            "PYTHONPATH": str(REPO),
            "REDIS_URL": self.broker_url(),
            "DBPILOT_AGENT_HOST": host.name,
            "DBPILOT_AGENT_KEY": host.key,
            "DBPILOT_DATA_ROOT": str(host.data_root),
            "DBPILOT_LOCAL_PORTS": AGENT_PORTS,
        }
        log = open(host.data_root / "agent.log", "ab")  # noqa: SIM115 - the agent writes it until killed
        host.agent = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                host.namespace,
                sys.executable,
                "-m",
                "celery",
                "-A",
                "controlplane",
                "worker",
                "-Q",
                f"host.{host.name}",
                "-c",
                "2",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"agent@{host.name}",
                "-l",
                "INFO",
            ],
            env=env,
            cwd=str(REPO),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_answering(self, host: PoolHost, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        row = DatabaseHost.objects.get(name=host.name)
        while True:
            try:
                call(row, "ping", timeout=5)
                return
            except ProviderError:
                if time.monotonic() > deadline or (host.agent and host.agent.poll() is not None):
                    log = (host.data_root / "agent.log").read_text(errors="replace")[-3000:]
                    raise AssertionError(f"agent of {host.name} does not answer:\n{log}") from None

    def start_agents(self) -> None:
        for host in self.hosts:
            self.start_agent(host)
        for host in self.hosts:
            self.wait_answering(host)

    def kill_agent(self, host: PoolHost) -> None:
        if host.agent is not None and host.agent.poll() is None:
            os.killpg(host.agent.pid, signal.SIGKILL)
            host.agent.wait(10)

    def kill_host(self, host: PoolHost) -> None:
        """Every process of the host's namespace (its agent, its mariadbd): the host is gone."""
        self.kill_agent(host)
        pids = subprocess.run(["ip", "netns", "pids", host.namespace], capture_output=True, text=True).stdout
        for pid in pids.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass

    def destroy(self) -> None:
        for host in self.hosts:
            self.kill_host(host)
        time.sleep(0.2)
        for host in self.hosts:
            netns.delete_veth(host.veth)
            netns.delete_namespace(host.namespace)
        if self.relay is not None and self.relay.poll() is None:
            os.killpg(self.relay.pid, signal.SIGKILL)
            self.relay.wait(10)
        netns.remove_bridge_if_unused()
        shutil.rmtree(self.root, ignore_errors=True)
