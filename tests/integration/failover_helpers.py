"""Helpers shared by the failover tests: register a sandbox in automatic mode (the adopt job runs), drive
monitoring ticks in this process, and read what the failover and fencing did."""

from __future__ import annotations

import time

from clusters.models import Cluster, Finding, Job, Server
from clusters.services import monitoring
from tests.integration.monitoring_helpers import register, tenant_client
from tests.integration.switchover_helpers import address


def register_cluster(sandbox, name: str = "main", **settings) -> Cluster:
    """Register through the service the API calls; with failover_mode automatic the adopt job runs (the
    tests set the runner to `inline`) and the cluster comes back armed. `cluster.client` is an API client
    with the owning team's admin token."""
    client, created = tenant_client(f"t{name}")
    cluster = register(created.team, sandbox, name, **settings)
    cluster.refresh_from_db()
    cluster.client = client
    return cluster


def tick(cluster: Cluster):
    return monitoring.tick_cluster(cluster.id)


def tick_until(
    cluster: Cluster, predicate, timeout: float = 20.0, message: str = "condition", pause: float = 0.1
):
    """Tick the cluster in this process until predicate() is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        tick(cluster)
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message} (last: {value!r})")
        time.sleep(pause)


def failover_jobs(cluster: Cluster, **filters) -> list[Job]:
    return list(Job.objects.filter(cluster=cluster, kind="failover", **filters).order_by("created_at", "id"))


def finished_failover(cluster: Cluster) -> Job | None:
    return (
        Job.objects.filter(cluster=cluster, kind="failover").exclude(state__in=("pending", "running")).first()
    )


def server(cluster: Cluster, sandbox, node: int) -> Server:
    host, _, port = address(sandbox, node).rpartition(":")
    return Server.objects.get(cluster=cluster, host=host, port=int(port))


def read_only(sandbox, node: int) -> bool:
    return bool(sandbox.sql(node, "SELECT @@read_only AS ro")[0]["ro"])


def writable_nodes(sandbox) -> list[int]:
    return [n for n in sandbox.nodes if sandbox.running(n) and not read_only(sandbox, n)]


def follows(sandbox, node: int, primary: int) -> bool:
    status = sandbox.replication_status(node)
    return bool(
        status
        and status["Slave_IO_Running"] == "Yes"
        and status["Slave_SQL_Running"] == "Yes"
        and (status["Master_Host"], int(status["Master_Port"]))
        == (sandbox.host(primary), sandbox.port(primary))
        and status["Using_Gtid"] == "Slave_Pos"
    )


def wait_applied(sandbox, node: int, primary: int, timeout: float = 20.0) -> None:
    position = sandbox.sql(primary, "SELECT @@gtid_binlog_pos AS pos")[0]["pos"]
    waited = sandbox.sql(
        node, "SELECT MASTER_GTID_WAIT(%s, %s) AS r", (position, timeout), timeout=timeout + 5
    )
    assert waited[0]["r"] == 0, f"node {node} did not reach {position}"


def open_codes(cluster: Cluster) -> set[tuple[str, str | None]]:
    return {
        (f.code, f.server.address if f.server else None)
        for f in Finding.objects.filter(cluster=cluster, resolved_at__isnull=True).select_related("server")
    }
