"""When a quarantined server leaves quarantine by itself: someone rebuilt or repaired it, so it now holds
nothing the primary lacks and replicates read-only from it (pure; decided on one tick's probes)."""

from __future__ import annotations

from collections.abc import Mapping

from clusters.domain import constants as c
from clusters.domain.detection import channel_points_at
from clusters.domain.failover_plan import extra_transactions
from clusters.domain.probe import ProbeResult
from clusters.domain.rejoin_plan import quarantine_can_end
from clusters.domain.topology import Topology


def quarantine_releases(topology: Topology, probes: Mapping[str, ProbeResult]) -> list[tuple[str, str]]:
    """(address, reason) of every quarantined server whose quarantine can end on this tick's probes."""
    primary = topology.primary_view
    if primary is None or primary.state != c.STATE_UP:
        return []
    primary_probe = probes.get(primary.address)
    if primary_probe is None or not primary_probe.reachable:
        return []
    out = []
    for view in topology.servers:
        probe = probes.get(view.address)
        if not view.quarantined or view.address == primary.address or probe is None or not probe.reachable:
            continue
        channel = probe.channel
        following = (
            channel is not None
            and channel_points_at(channel, primary.address, primary_probe.server_id)
            and channel.using_gtid.lower() != "no"
            and channel.io_running == "Yes"
            and bool(channel.sql_running)
        )
        writable = probe.read_only is False or (probe.flavour == "mysql" and probe.super_read_only is False)
        ok, reason = quarantine_can_end(
            extra_gtids=extra_transactions(probe, primary_probe),
            replicates_from_primary=following,
            writable=writable,
        )
        if ok:
            out.append((view.address, reason))
    return out
