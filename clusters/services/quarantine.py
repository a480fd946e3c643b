"""Quarantine ends: a quarantined server that holds nothing the primary lacks and replicates read-only
from it leaves quarantine by itself (called by clusters.services.fencing after every tick), and an
operator can clear it (`POST .../servers/{id}/rejoin/`, clusters.services.repair)."""

from __future__ import annotations

from clusters.credentials import cluster_settings
from clusters.domain.quarantine import quarantine_releases
from clusters.domain.rejoin_plan import fallbacks, rejoin_chain
from clusters.events import record_event
from clusters.models import Cluster, Server


def release_quarantined(result, cluster: Cluster | None) -> list[str]:
    """End the quarantine of every server this tick shows repaired; returns their addresses."""
    if cluster is None or not any(s.quarantined for s in result.topology.servers):
        return []
    released = []
    servers = {s.address: s for s in cluster.servers.all()}
    for address, reason in quarantine_releases(result.topology, result.probes):
        server = servers.get(address)
        if server is not None and end_quarantine(cluster, server, reason, by="dbpilot"):
            released.append(address)
    return released


def end_quarantine(cluster: Cluster, server: Server, reason: str, *, by: str) -> bool:
    """Clear the quarantine (and the fence flag when it already replicates from the primary: `reason`
    says so); True when it was quarantined."""
    changed = Server.objects.filter(pk=server.pk, quarantined=True).update(quarantined=False, fenced=False)
    if changed:
        record_event(
            cluster.pk,
            "server_quarantine_ended",
            f"{server.address} is no longer quarantined ({by}): {reason}",
            data={"server": server.address, "server_id": server.pk, "by": by},
        )
    return bool(changed)


def repairs_before_quarantine(cluster: Cluster) -> bool:
    """Whether the cluster's rejoin_method has a repair (flashback, reseed) to try before quarantine."""
    chain = rejoin_chain(
        cluster_settings(cluster).rejoin_method, provisioned=cluster.origin == Cluster.Origin.PROVISIONED
    )
    return bool(fallbacks(chain))
