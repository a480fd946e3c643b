"""The monitoring tick: probe every server of a cluster in parallel, analyse, record what changed.

One tick per cluster every `tick_seconds`, single-flight (a tick still running means the next is
skipped, not queued). After a failed probe of the primary the tick re-probes every
`reprobe_interval_ms` until the primary answers or `failcount` is reached, so a crash is confirmed in
well under `failcount × tick_seconds`. Hot state (failure counters, the finding tracker, the latest
topology) lives in Redis; findings and events go to the database only when they change.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import close_old_connections, transaction
from django.utils import timezone as dj_timezone

from clusters import hotstate
from clusters.adapters.probe import probe_servers
from clusters.domain.findings import finding_key
from clusters.domain.hysteresis import FindingTracker
from clusters.domain.probe import ProbeResult
from clusters.domain.settings import ClusterSettings
from clusters.domain.topology import InventoryServer, Topology, analyze
from clusters.models import Cluster, Finding
from clusters.services.access import admin_credentials, cluster_settings, connect_options
from clusters.services.events import publish_on_commit, record_event

log = logging.getLogger(__name__)
TICK_LOCK_SECONDS = 10


@dataclass
class TickResult:
    cluster_id: int
    topology: Topology
    probes: dict[str, ProbeResult]
    failures: dict[str, int]
    settings: ClusterSettings
    observed_at: float


def _inventory(cluster: Cluster) -> list[InventoryServer]:
    return [
        InventoryServer(id=s.id, address=s.address, maintenance=s.maintenance, fenced=s.fenced, quarantined=s.quarantined)
        for s in cluster.servers.all()
    ]


def _count_failures(previous: dict[str, int], probes: dict[str, ProbeResult]) -> dict[str, int]:
    return {addr: (0 if probe.reachable else previous.get(addr, 0) + 1) for addr, probe in probes.items()}


def _apply_findings(cluster: Cluster, topology: Topology, opened: list[str], resolved: list[str], now: datetime) -> None:
    by_key = {finding_key(f.code, f.server): f for f in topology.findings}
    servers = {s.address: s for s in cluster.servers.all()}
    for key in opened:
        finding = by_key.get(key)
        if finding is None:
            continue
        server = servers.get(finding.server) if finding.server else None
        Finding.objects.create(
            cluster=cluster, server=server, code=finding.code, severity=finding.severity,
            message=finding.message, details=finding.details, opened_at=now,
        )
        record_event(cluster.id, "finding_opened", finding.message, severity=finding.severity,
                     data={"code": finding.code, "server": finding.server, "server_id": server.id if server else None,
                           "details": finding.details})
    for key in resolved:
        code, _, address = key.partition("|")
        server = servers.get(address) if address else None
        rows = Finding.objects.filter(cluster=cluster, code=code, server=server, resolved_at__isnull=True)
        for row in rows:
            row.resolved_at = now
            row.save(update_fields=["resolved_at"])
            record_event(cluster.id, "finding_resolved", f"Resolved: {row.message}", severity="info",
                         data={"code": code, "server": address or None, "server_id": server.id if server else None})


def snapshot_of(topology: Topology, now: datetime) -> dict:
    return {
        "primary": topology.primary,
        "servers": [
            {
                "id": s.id,
                "address": s.address,
                "role": s.role,
                "state": s.state,
                "read_only": s.read_only,
                "gtid_current_pos": s.gtid_current_pos,
                "replication": s.replication,
            }
            for s in topology.servers
        ],
        "updated_at": now.isoformat(),
    }


def _digest(snapshot: dict) -> str:
    """What counts as a topology change for live viewers (positions and lag change every tick: excluded)."""
    essential = {
        "primary": snapshot["primary"],
        "servers": [
            (s["id"], s["role"], s["state"], s["read_only"],
             (s["replication"] or {}).get("source"), (s["replication"] or {}).get("io_running"),
             (s["replication"] or {}).get("sql_running"))
            for s in snapshot["servers"]
        ],
    }
    return hashlib.sha1(json.dumps(essential, sort_keys=True).encode()).hexdigest()


def tick_cluster(cluster_id: int, cluster: Cluster | None = None) -> TickResult | None:
    """One monitoring tick of one cluster. Returns None when the cluster is gone.

    While the last known primary is failing but not yet down, the tick re-probes every
    `reprobe_interval_ms`, recording each round (so "suspect" is visible before "down").
    """
    if cluster is None:
        cluster = Cluster.objects.select_related("tenant").prefetch_related("servers").filter(pk=cluster_id).first()
    if cluster is None:
        return None
    settings = cluster_settings(cluster)
    credentials = admin_credentials(cluster)
    options = connect_options(settings)
    targets = [(s.address, credentials, options) for s in cluster.servers.all()]
    inventory = _inventory(cluster)
    state = hotstate.read_state(cluster_id)
    while True:
        probes = probe_servers(targets)
        failures = _count_failures(state.get("failures", {}), probes)
        result = _record(cluster, inventory, settings, probes, failures, state)
        primary = state.get("primary")
        if not (primary in failures and 0 < failures[primary] < settings.failcount):
            from clusters.services.failover import after_tick  # failover and fencing decide from this tick

            after_tick(result, epoch=cluster.epoch)
            return result
        time.sleep(settings.reprobe_interval_ms / 1000)


def _record(cluster: Cluster, inventory, settings: ClusterSettings, probes, failures, state: dict) -> TickResult:
    """Analyse one round of probes and record what changed; updates `state` in place."""
    cluster_id = cluster.id
    observed = time.time()
    topology = analyze(inventory, probes, settings, failures, observed, known_primary=state.get("primary"))
    tracker = FindingTracker.from_state(state.get("tracker"))
    current = {finding_key(f.code, f.server): f.severity for f in topology.findings}
    opened, resolved = tracker.update(current, observed, unobserved=topology.unobserved)
    now = datetime.fromtimestamp(observed, tz=UTC)
    snapshot = snapshot_of(topology, now)
    digest = _digest(snapshot)
    changed = digest != state.get("digest")
    primary_id = next((s.id for s in topology.servers if s.address == topology.primary), None)
    if opened or resolved or (primary_id is not None and primary_id != cluster.primary_id):
        with transaction.atomic():
            _apply_findings(cluster, topology, opened, resolved, now)
            if primary_id is not None and primary_id != cluster.primary_id:
                Cluster.objects.filter(pk=cluster.pk).update(primary_id=primary_id, updated_at=dj_timezone.now())
                cluster.primary_id = primary_id
                record_event(cluster.id, "primary_observed", f"Primary is {topology.primary}",
                             data={"primary": topology.primary, "server_id": primary_id})
    previous = hotstate.read_topology(cluster_id) if changed else None
    hotstate.write_topology(cluster_id, snapshot)
    if changed:
        from clusters.services.routing import on_topology_changed  # read routes follow replica health

        on_topology_changed(cluster_id, snapshot, previous)
    if changed or opened or resolved:
        from clusters.services.topology_view import topology_payload

        publish_on_commit(cluster_id, {"type": "topology", "cluster_id": cluster_id, "topology": topology_payload(cluster_id)})
    state.update(
        failures=failures,
        primary=topology.primary or state.get("primary"),
        tracker=tracker.to_state(),
        digest=digest,
        observed_at=observed,
    )
    hotstate.write_state(cluster_id, state)
    return TickResult(cluster_id, topology, probes, failures, settings, observed)


def _locked_tick(cluster: Cluster) -> None:
    cluster_id = cluster.id
    lock = hotstate.client().lock(f"dbpilot:cluster:{cluster_id}:tick", timeout=TICK_LOCK_SECONDS, blocking=False)
    if not lock.acquire(blocking=False):
        return  # the previous tick still runs: skip, never queue
    try:
        tick_cluster(cluster_id, cluster)
    except Exception:  # noqa: BLE001 - one cluster's failure must not stop the shard
        log.exception("tick of cluster %s failed", cluster_id)
    finally:
        try:
            lock.release()
        except Exception:  # noqa: BLE001 - expired lock
            pass
        close_old_connections()


_SHARD_EXECUTOR = ThreadPoolExecutor(max_workers=32, thread_name_prefix="tick")


def monitor_shard(cluster_ids: list[int]) -> None:
    """Tick a shard of clusters concurrently (probing is I/O bound); the inventory is read in one go."""
    close_old_connections()
    clusters = list(Cluster.objects.filter(id__in=cluster_ids).select_related("tenant").prefetch_related("servers"))
    list(_SHARD_EXECUTOR.map(_locked_tick, clusters))


def due_shards(shard_size: int, now: float | None = None) -> list[list[int]]:
    """Clusters whose tick is due, in shards. Each cluster's own tick_seconds is honoured."""
    now = now or time.time()
    client = hotstate.client()
    due: list[int] = []
    rows = list(Cluster.objects.values_list("id", "settings"))
    last = client.mget([f"dbpilot:cluster:{cid}:dispatched" for cid, _ in rows]) if rows else []
    pipe = client.pipeline()
    for (cid, raw_settings), last_raw in zip(rows, last, strict=True):
        tick = float((raw_settings or {}).get("tick_seconds", 1) or 1)
        if last_raw is None or now - float(last_raw) >= tick - 0.1:
            due.append(cid)
            pipe.set(f"dbpilot:cluster:{cid}:dispatched", now, ex=120)
    pipe.execute()
    return [due[i:i + shard_size] for i in range(0, len(due), shard_size)]
