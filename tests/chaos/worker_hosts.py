"""Tick workers on hosts of their own: network namespaces on the sandbox bridge (clusters/providers/netns.py).

Each "host" is a namespace with one veth on the bridge (10.231.<index>.<10+i>); the root namespace is
10.231.0.1 there, where the test's Redis listens and the shared MariaDB servers accept connections. The
benchmark clusters reach those servers at addresses of their own: ALIAS_NETWORK is a `local` route of the
root namespace (every address in it is this host, as 127.0.0.0/8 is), and each namespace routes it through
the bridge. Used by tests/chaos/test_tick_workers.py and bench/tick_workers.py.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

from clusters.providers import netns
from tests.services_plugin import ManagedProcess

ALIAS_NETWORK = "10.231.244.0/22"  # 1,000 addresses; sandboxes take indexes from 1 upwards
ALIAS_FIRST_OCTET = 244
ROOT_ADDRESS = netns.CONTROL_ADDRESS
SILENCE_TABLE = "dbpilot_tick_workers"


def alias(number: int) -> str:
    """The number-th distinct address of the shared servers (number from 0)."""
    if not 0 <= number < 1000:
        raise ValueError(f"alias {number}: 0 to 999")
    return f"10.231.{ALIAS_FIRST_OCTET + number // 250}.{number % 250 + 2}"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


class WorkerHosts:
    def __init__(self, name: str, count: int):
        netns.check_available()
        netns.ensure_bridge()
        used = netns.used_indexes()
        self.index = next(i for i in range(netns.MAX_SANDBOX_INDEX, 0, -1) if i not in used and i < 240)
        self.namespaces = [netns.namespace_name(name, i) for i in range(1, count + 1)]
        self.addresses = [netns.node_address(self.index, i) for i in range(1, count + 1)]
        self._veths = [netns.host_veth_name(self.index, i) for i in range(1, count + 1)]
        _ip("route", "replace", "local", ALIAS_NETWORK, "dev", "lo")
        for namespace, veth, address in zip(self.namespaces, self._veths, self.addresses, strict=True):
            netns.delete_namespace(namespace)  # a previous run's
            netns.create_node_namespace(namespace, veth, address)
            _ip("-n", namespace, "route", "replace", ALIAS_NETWORK, "via", ROOT_ADDRESS)

    def command(self, host: int, argv: list[str]) -> list[str]:
        """argv run on host `host` (from 0)."""
        return ["ip", "netns", "exec", self.namespaces[host], *argv]

    def silence(self, address: str) -> None:
        """Drop every packet to `address` (one of the aliases): a server there looks like a dead host
        (probes time out) while the others answer."""
        ruleset = (
            f"table inet {SILENCE_TABLE} {{\n"
            f"  chain input {{ type filter hook input priority 0; policy accept; ip daddr {address} drop; }}\n"
            "}\n"
        )
        subprocess.run(
            ["nft", "-f", "-"], input=ruleset, check=True, capture_output=True, text=True, timeout=30
        )

    def destroy(self) -> None:
        subprocess.run(["nft", "delete", "table", "inet", SILENCE_TABLE], capture_output=True, timeout=30)
        for namespace, veth in zip(self.namespaces, self._veths, strict=True):
            netns.delete_veth(veth)
            netns.delete_namespace(namespace)
        subprocess.run(["ip", "route", "del", "local", ALIAS_NETWORK, "dev", "lo"], capture_output=True)


def private_redis(port: int, name: str, hosts: bool = True) -> ManagedProcess:
    """A redis-server on 127.0.0.1 and, with `hosts`, on 10.231.0.1 for the worker hosts (the bridge must
    exist: WorkerHosts made it)."""
    return ManagedProcess(
        name,
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            *([ROOT_ADDRESS] if hosts else []),
            "--protected-mode",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        {},
    )


def allow_from_hosts(sandbox) -> None:
    """The sandbox's accounts are for 127.0.0.1; the worker hosts connect from 10.231.x.y: give the admin
    account the same grants from there (on the primary; replication copies them)."""
    user = sandbox.accounts.admin.user
    password = sandbox.accounts.admin.password
    grants = sandbox.sql(sandbox.primary, "SHOW GRANTS FOR %s@'127.0.0.1'", (user,))
    sandbox.sql(
        sandbox.primary, "CREATE USER IF NOT EXISTS %s@'10.231.%%' IDENTIFIED BY %s", (user, password)
    )
    for row in grants:
        grant = next(iter(row.values()))
        if grant.startswith("GRANT ") and " IDENTIFIED BY " not in grant:
            sandbox.sql(sandbox.primary, grant.replace("@`127.0.0.1`", "@`10.231.%`"))


def worker_pids(process: ManagedProcess) -> set[int]:
    """A Celery worker's process and its pool's (the children)."""
    pids = {process.proc.pid}
    for task in Path(f"/proc/{process.proc.pid}/task").glob("*"):
        children = task / "children"
        if children.exists():
            pids |= {int(p) for p in children.read_text().split()}
    return pids


class TickLog:
    """Every tick of some clusters as their hot state shows it (the topology's updated_at, written by each
    tick), polled every 0.1 s from this process."""

    def __init__(self, cluster_ids: list[int]):
        self.ticks: dict[int, list[float]] = {cid: [] for cid in cluster_ids}

    def poll(self, seconds: float) -> None:
        from clusters import hotstate

        ids = list(self.ticks)
        until = time.time() + seconds
        while time.time() < until:
            for cid, snapshot in hotstate.read_topologies(ids).items():
                at = datetime.fromisoformat(snapshot["updated_at"]).timestamp()
                if not self.ticks[cid] or at > self.ticks[cid][-1]:
                    self.ticks[cid].append(at)
            time.sleep(0.1)

    def intervals(self, start: float, end: float) -> list[float]:
        """Every interval between consecutive ticks of a cluster, both within [start, end]."""
        found = []
        for times in self.ticks.values():
            inside = [t for t in times if start <= t <= end]
            found += [b - a for a, b in zip(inside, inside[1:], strict=False)]
        return found

    def gaps_across(self, moment: float) -> dict[int, float]:
        """Per cluster: from its last tick before `moment` to its first tick after it."""
        gaps = {}
        for cid, times in self.ticks.items():
            before = [t for t in times if t <= moment]
            after = [t for t in times if t > moment]
            if before and after:
                gaps[cid] = after[0] - before[-1]
            else:
                gaps[cid] = float("inf")
        return gaps

    def all_ticked_since(self, moment: float) -> bool:
        return all(times and times[-1] > moment for times in self.ticks.values())


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")
