"""What the API and websockets show of a cluster's live state, read from the hot store (no probing)."""

from __future__ import annotations

from clusters import hotstate
from clusters.models import Cluster, Finding


def findings_payload(cluster_id: int) -> list[dict]:
    rows = Finding.objects.filter(cluster_id=cluster_id, resolved_at__isnull=True).select_related("server")
    return [
        {
            "code": f.code,
            "severity": f.severity,
            "message": f.message,
            "server": f.server.address if f.server else None,
            "server_id": f.server_id,
            "opened_at": f.opened_at.isoformat(),
        }
        for f in rows
    ]


def topology_payload(
    cluster_id: int, *, cluster: Cluster | None = None, snapshot: dict | None = None
) -> dict:
    """The cluster's live state: the monitoring snapshot (read from the hot store unless the caller, a tick,
    has it in hand) over the cluster's servers (with theirs prefetched, no query)."""
    if cluster is None:
        cluster = Cluster.objects.prefetch_related("servers").get(pk=cluster_id)
    if snapshot is None:
        snapshot = hotstate.read_topology(cluster_id) or {}
    by_id = {s["id"]: s for s in snapshot.get("servers", [])}
    # A snapshot from a tick that began before a job changed the topology (an older epoch) must not name
    # the previous primary beside the new epoch: the primary then comes from the database, and a server
    # the snapshot still calls primary is shown as unknown until the next tick.
    stale = snapshot.get("epoch") is not None and snapshot["epoch"] < cluster.epoch
    primary = snapshot.get("primary")
    if stale:
        primary = cluster.primary.address if cluster.primary_id else None
    servers = []
    for server in cluster.servers.all():
        live = by_id.get(server.id, {})
        if stale and live.get("role") == "primary" and server.address != primary:
            live = {**live, "role": "unknown", "state": "unknown"}
        elif stale and server.address == primary:
            live = {**live, "role": "primary"}
        servers.append(
            {
                "id": server.id,
                "host": server.host,
                "port": server.port,
                "role": live.get("role", "unknown"),
                "state": live.get("state", "unknown"),
                "read_only": live.get("read_only"),
                "gtid_current_pos": live.get("gtid_current_pos"),
                "replication": live.get("replication"),
                "maintenance": server.maintenance,
                "fenced": server.fenced,
                "quarantined": server.quarantined,
            }
        )
    return {
        "primary": primary,
        "epoch": cluster.epoch,
        "servers": servers,
        "findings": findings_payload(cluster_id),
        "updated_at": snapshot.get("updated_at"),
    }
