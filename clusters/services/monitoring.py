"""The monitoring tick: probe every server of a cluster in parallel, analyse, record what changed.

One tick per cluster every `tick_seconds`, single-flight (a tick still running means the next is
skipped, not queued). After a failed probe of the primary the tick re-probes every
`reprobe_interval_ms` until the primary answers or `failcount` is reached, so a crash is confirmed in
well under `failcount × tick_seconds`; those re-probes give the failing primary a short timeout
(REPROBE_TIMEOUT_SECONDS): the first failed probe already waited the whole one. While the primary is down
but the replicas do not confirm it yet (a frozen primary: their heartbeats are not stale yet), the
re-probes go on until they can (CONFIRM_WINDOW_SECONDS), instead of waiting for the next tick.

A shard of clusters is ticked together (monitor_shard): its locks, hot state and writes each take one Redis
round trip, and every server of the shard is probed at once from one thread (adapters.probe.probe_many).
Only a cluster whose primary is failing continues in a thread of its own, re-probing. Hot state (failure
counters, the finding tracker, the latest topology) lives in Redis; findings and events go to the
database only when they change.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property

from django.conf import settings as django_settings
from django.db import close_old_connections, transaction
from django.utils import timezone as dj_timezone

from clusters import hotstate
from clusters.adapters.mysql import ConnectOptions, Credentials
from clusters.adapters.probe import probe_many
from clusters.credentials import admin_credentials, cluster_settings, connect_options
from clusters.domain.constants import OUTSIDE_ANALYSIS_CODES, STATE_UP
from clusters.domain.detection import (
    Confirmation,
    confirm_for_topology,
    confirmation_may_come,
    count_failures,
    failure_streak_continues,
    receiving_replicas,
)
from clusters.domain.failover_plan import semi_sync_observation, settle_new_primary
from clusters.domain.findings import finding_key
from clusters.domain.gtid import history_with
from clusters.domain.hysteresis import FindingTracker
from clusters.domain.probe import ProbeResult
from clusters.domain.settings import ClusterSettings
from clusters.domain.topology import Topology, analyze
from clusters.events import publish_on_commit, record_event
from clusters.models import Cluster, Finding, Job, Server
from clusters.services import failover, history, primary_watch, replacement, routing
from clusters.services.topology_view import topology_payload

log = logging.getLogger(__name__)
REPROBE_TIMEOUT_SECONDS = (
    0.4  # a re-probe of a failing primary: the first failed probe waited the full timeout
)
CONFIRM_WINDOW_SECONDS = 6.0  # how long after the first failure re-probes wait for the replicas to confirm


@dataclass
class TickResult:
    cluster_id: int
    topology: Topology
    probes: dict[str, ProbeResult]
    failures: dict[str, int]
    settings: ClusterSettings
    observed_at: float
    # Wall-clock time each replica was last seen receiving from the primary, and the start of the
    # primary's current failure (None while healthy): a witness of a failure was receiving until it began.
    last_received: dict[str, float] = field(default_factory=dict)
    failing_since: float | None = None
    # The round before this one (None when the hot state is new): the failover's observation_fresh guard.
    previous_observed_at: float | None = None

    @cached_property
    def confirmation(self) -> Confirmation:
        """The replicas' confirmation of the primary's failure, computed once for everyone that reads this
        round (failover's decision, the re-probe loop)."""
        return confirm_for_topology(
            self.topology,
            self.probes,
            self.settings,
            last_received=self.last_received,
            incident_since=self.failing_since,
        )


def _count_failures(previous: dict[str, int], probes: dict[str, ProbeResult]) -> dict[str, int]:
    # A server that answered with an error (credentials, too many connections) is alive: not counted.
    return {addr: count_failures(previous.get(addr, 0), probe) for addr, probe in probes.items()}


def _previous_failures(plan: _TickPlan) -> dict[str, int]:
    """The failure counts a new round continues: none when the previous round is older than three ticks
    (monitoring stalled): a streak never spans a gap in observation, which is what the failover's
    `observation_fresh` guard checks on the tick path."""
    previous_observed = plan.state.get("observed_at")
    if not failure_streak_continues(previous_observed, time.time(), plan.settings.tick_seconds):
        return {}
    return plan.state.get("failures", {})


def _apply_findings(
    cluster: Cluster, topology: Topology, opened: list[str], resolved: list[str], now: datetime
) -> None:
    by_key = {finding_key(f.code, f.server): f for f in topology.findings}
    servers = {s.address: s for s in cluster.servers.all()}
    for key in opened:
        finding = by_key.get(key)
        if finding is None:
            continue
        server = servers.get(finding.server) if finding.server else None
        Finding.objects.create(
            cluster=cluster,
            server=server,
            code=finding.code,
            severity=finding.severity,
            message=finding.message,
            details=finding.details,
            opened_at=now,
        )
        record_event(
            cluster.id,
            "finding_opened",
            finding.message,
            severity=finding.severity,
            data={
                "code": finding.code,
                "server": finding.server,
                "server_id": server.id if server else None,
                "details": finding.details,
            },
        )
    for key in resolved:
        code, _, address = key.partition("|")
        server = servers.get(address) if address else None
        rows = Finding.objects.filter(cluster=cluster, code=code, server=server, resolved_at__isnull=True)
        for row in rows:
            row.resolved_at = now
            row.save(update_fields=["resolved_at"])
            record_event(
                cluster.id,
                "finding_resolved",
                f"Resolved: {row.message}",
                severity="info",
                data={"code": code, "server": address or None, "server_id": server.id if server else None},
            )


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
            (
                s["id"],
                s["role"],
                s["state"],
                s["read_only"],
                (s["replication"] or {}).get("source"),
                (s["replication"] or {}).get("io_running"),
                (s["replication"] or {}).get("sql_running"),
            )
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
        cluster = (
            Cluster.objects.select_related("tenant").prefetch_related("servers").filter(pk=cluster_id).first()
        )
    if cluster is None:
        return None
    plan = _TickPlan(cluster, hotstate.read_state(cluster_id))
    probes = probe_many(plan.targets(), details=False)
    return _continue_tick(plan, dict(zip(plan.addresses, probes, strict=True)), hotstate)


@dataclass
class _TickPlan:
    """What a tick of one cluster needs before probing: inventory, settings, targets, hot state."""

    cluster: Cluster
    state: dict

    def __post_init__(self):
        servers = list(self.cluster.servers.all())
        self.settings = cluster_settings(self.cluster)
        self.credentials = admin_credentials(self.cluster)
        self.options = connect_options(self.settings)
        self.addresses = [s.address for s in servers]
        self.inventory = [s.as_inventory() for s in servers]

    def targets(self, reprobe: bool = False) -> list[tuple[str, Credentials, ConnectOptions]]:
        """A server that failed its last probe gets the short timeout (it already had a full one), and so
        does the primary in a re-probe round: a dead host must not hold up a shard for a whole second
        every tick. Answering within that short timeout is enough to count as up again."""
        failures = self.state.get("failures", {})
        primary = self.state.get("primary")
        short = replace(
            self.options,
            connect_timeout=min(self.options.connect_timeout, REPROBE_TIMEOUT_SECONDS),
            read_timeout=min(self.options.read_timeout, REPROBE_TIMEOUT_SECONDS),
        )
        return [
            (a, self.credentials, short if failures.get(a) or (reprobe and a == primary) else self.options)
            for a in self.addresses
        ]

    def reprobing(self) -> bool:
        """Whether this cluster's primary failed recently enough for re-probes (see _continue_tick)."""
        since = self.state.get("failing_since")
        return since is not None and time.time() - since <= CONFIRM_WINDOW_SECONDS


def _failing_primary(plan: _TickPlan, failures: dict[str, int]) -> bool:
    primary = plan.state.get("primary")
    return primary in failures and 0 < failures[primary] < plan.settings.failcount


def _awaiting_confirmation(plan: _TickPlan, result: TickResult, reprobe_round: bool) -> bool:
    """The primary is down, the replicas do not confirm it yet but still may (a frozen primary's replicas
    see their heartbeats go stale seconds later), and the incident is recent: re-probe instead of waiting
    a whole tick (whose first probe would spend the full timeout on the primary again)."""
    primary = plan.state.get("primary")
    if primary is None or not plan.reprobing() or result.failures.get(primary, 0) < plan.settings.failcount:
        return False
    if result.confirmation.confirmed:
        return False
    return confirmation_may_come(
        result.topology,
        result.probes,
        result.settings,
        reprobe_round=reprobe_round,
        last_received=result.last_received,
        incident_since=result.failing_since,
    )


def _continue_tick(plan: _TickPlan, probes: dict[str, ProbeResult], store) -> TickResult:
    """Record a first round of probes, then re-probe while the primary is failing (see the module docstring)."""
    cluster = plan.cluster
    reprobe_round = False
    while True:
        failures = _count_failures(_previous_failures(plan), probes)
        result = _record(cluster, plan.inventory, plan.settings, probes, failures, plan.state, store)
        if _failing_primary(plan, failures):
            time.sleep(plan.settings.reprobe_interval_ms / 1000)
        else:
            _after_round(result, cluster)
            if not _awaiting_confirmation(plan, result, reprobe_round) or _failover_started(cluster.id):
                return result
            time.sleep(plan.settings.reprobe_interval_ms / 1000)
        store = hotstate
        reprobe_round = True
        probes = dict(zip(plan.addresses, probe_many(plan.targets(reprobe=True), details=False), strict=True))


def _after_round(result: TickResult, cluster: Cluster) -> None:
    """Failover and fencing decide from each finished round; a primary seen up is watched between ticks."""
    failover.after_tick(result, epoch=cluster.epoch)
    try:
        replacement.after_tick(result, cluster)  # a provisioned cluster's server down too long is replaced
    except Exception:  # noqa: BLE001 - the next tick tries again
        log.exception("cluster %s: replacing a lost server failed", result.cluster_id)
    view = result.topology.primary_view
    if view is not None and view.state == STATE_UP:
        try:
            primary_watch.after_healthy_tick(result.cluster_id, view.address, tick=monitor_shard)
        except Exception:  # noqa: BLE001 - no watch: the ticks still find a crash
            log.exception("cluster %s: watching the primary failed", result.cluster_id)


def _failover_started(cluster_id: int) -> bool:
    return Job.objects.active_ha(cluster_id) is not None


def _recorded_open_findings(cluster: Cluster) -> dict[str, str]:
    """The open findings of the database that ticks own (key -> severity): what a tracker whose hot state
    was lost (a Redis restart, a new Redis) must still resolve."""
    rows = (
        Finding.objects.filter(cluster=cluster, resolved_at__isnull=True)
        .exclude(code__in=OUTSIDE_ANALYSIS_CODES)
        .select_related("server")
    )
    return {finding_key(f.code, f.server.address if f.server else None): f.severity for f in rows}


def _record(
    cluster: Cluster, inventory, settings: ClusterSettings, probes, failures, state: dict, store=hotstate
) -> TickResult:
    """Analyse one round of probes and record what changed; updates `state` in place. `store` takes the
    hot-state writes (hotstate itself, or a shard's batch that sends them together)."""
    cluster_id = cluster.id
    observed = time.time()
    topology = analyze(inventory, probes, settings, failures, observed, known_primary=state.get("primary"))
    if topology.primary is not None and topology.primary != state.get("primary_seen"):
        state["primary_seen"], state["primary_since"] = topology.primary, observed
    # a new primary's semi-sync replicas are reconnecting: not an error for a few seconds
    topology = settle_new_primary(topology, state.get("primary_since"), observed)
    tracker = (
        FindingTracker.from_state(state["tracker"])
        if state.get("tracker") is not None
        else FindingTracker.resuming(_recorded_open_findings(cluster))
    )
    current = {finding_key(f.code, f.server): f.severity for f in topology.findings}
    opened, resolved = tracker.update(current, observed, unobserved=topology.unobserved)
    now = datetime.fromtimestamp(observed, tz=UTC)
    snapshot = snapshot_of(topology, now)
    snapshot["epoch"] = cluster.epoch  # the epoch this tick began with: a payload never mixes two epochs
    digest = _digest(snapshot)
    changed = digest != state.get("digest")
    primary_id = next((s.id for s in topology.servers if s.address == topology.primary), None)
    if opened or resolved or (primary_id is not None and primary_id != cluster.primary_id):
        with transaction.atomic():
            _apply_findings(cluster, topology, opened, resolved, now)
            if primary_id is not None and primary_id != cluster.primary_id:
                Cluster.objects.filter(pk=cluster.pk).update(
                    primary_id=primary_id, updated_at=dj_timezone.now()
                )
                cluster.primary_id = primary_id
                record_event(
                    cluster.id,
                    "primary_observed",
                    f"Primary is {topology.primary}",
                    data={"primary": topology.primary, "server_id": primary_id},
                )
    previous = hotstate.read_topology(cluster_id) if changed else None
    if changed or opened or resolved:
        hotstate.write_topology(
            cluster_id, snapshot
        )  # now: the payload published below and route syncs read it
    else:
        store.write_topology(cluster_id, snapshot)
    if changed:
        routing.on_topology_changed(  # read routes follow replica health
            cluster_id, snapshot, previous
        )
    if changed or opened or resolved:
        payload = topology_payload(cluster_id, cluster=cluster, snapshot=snapshot)  # the snapshot in hand
        publish_on_commit(cluster_id, {"type": "topology", "cluster_id": cluster_id, "topology": payload})
    known_primary = topology.primary or state.get("primary")
    primary_failures = failures.get(known_primary, 0) if known_primary else 0
    last_received = {a: t for a, t in (state.get("received") or {}).items() if a in probes}
    last_received.update({a: observed for a in receiving_replicas(topology, probes)})
    primary_probe = probes.get(topology.primary) if topology.primary else None
    primary_up = topology.primary_view is not None and topology.primary_view.state == STATE_UP
    previous_observed = state.get("observed_at")
    state.update(
        failures=failures,
        primary=known_primary,
        tracker=tracker.to_state(),
        digest=digest,
        observed_at=observed,
        failing_since=(state.get("failing_since") or observed) if primary_failures else None,
        received=last_received,
        # every primary's gtid_binlog_state seen healthy: what "errant" is judged against (gtid.py)
        gtid_history=history_with(state.get("gtid_history"), primary_probe if primary_up else None),
        # the primary's semi-sync as last seen healthy: a failover's RPO states what held at the incident
        semi_sync_at=(semi_sync_observation(primary_probe, observed) if primary_up else None)
        or state.get("semi_sync_at"),
    )
    history.record(store, cluster_id, topology, probes, state, observed)  # same round trip as write_state
    store.write_state(cluster_id, state)
    return TickResult(
        cluster_id,
        topology,
        probes,
        failures,
        settings,
        observed,
        last_received,
        state["failing_since"],
        previous_observed_at=previous_observed,
    )


def _reprobe_in_thread(plan: _TickPlan, probes: dict[str, ProbeResult], token: str) -> None:
    try:
        _continue_tick(plan, probes, hotstate)
    except Exception:  # noqa: BLE001 - one cluster's failure must not stop the others
        log.exception("tick of cluster %s failed", plan.cluster.id)
    finally:
        hotstate.release_tick_locks([(plan.cluster.id, token)])
        close_old_connections()


# Mostly waiting on servers; enough for many primaries failing at once (a partition) within the lock time.
_REPROBE_EXECUTOR = ThreadPoolExecutor(max_workers=64, thread_name_prefix="reprobe")


def monitor_shard(cluster_ids: list[int]) -> None:
    """Tick a shard of clusters together.

    One Redis round trip takes the clusters' single-flight locks and reads their hot state; every server of
    the shard is probed at once; each cluster is analysed and recorded, its hot-state writes batched into
    one more round trip. A cluster whose primary is failing goes on re-probing in a thread of its own
    (holding its lock); the others' locks are released together.
    """
    close_old_connections()
    clusters = list(Cluster.objects.filter(id__in=cluster_ids).prefetch_related("servers"))
    if not clusters:
        return
    started = time.monotonic()
    # Leases renewed while the tick runs (re-probes included): a dead worker's expire in this time.
    lock_seconds = django_settings.DBPILOT_TICK_LOCK_SECONDS
    tokens = hotstate.take_tick_locks([c.id for c in clusters], lock_seconds)
    held = [
        (c, tokens[c.id]) for c in clusters if tokens.get(c.id)
    ]  # a tick still running: skip, never queue
    if not held:
        hotstate.count_tick({"skipped": len(clusters)})
        return
    states = hotstate.read_states([c.id for c, _ in held])
    plans: list[tuple[_TickPlan, str]] = []
    for cluster, token in held:
        try:
            plans.append((_TickPlan(cluster, states.get(cluster.id, {})), token))
        except Exception:  # noqa: BLE001 - e.g. undecryptable credentials: that cluster only
            log.exception("tick of cluster %s failed", cluster.id)
            hotstate.release_tick_locks([(cluster.id, token)])
    targets = [t for plan, _ in plans for t in plan.targets()]
    try:
        results = iter(probe_many(targets, details=False))
    except Exception:  # noqa: BLE001 - never leave the locks to expire
        log.exception("probing shard %s failed", [plan.cluster.id for plan, _ in plans])
        hotstate.release_tick_locks([(plan.cluster.id, token) for plan, token in plans])
        close_old_connections()
        return
    batch = hotstate.Batch()
    finished: list[tuple[_TickPlan, TickResult]] = []
    released: list[tuple[int, str]] = []
    try:
        for plan, token in plans:
            probes = {address: next(results) for address in plan.addresses}
            try:
                failures = _count_failures(_previous_failures(plan), probes)
                if _failing_primary(plan, failures) or plan.reprobing():
                    _REPROBE_EXECUTOR.submit(
                        _reprobe_in_thread, plan, probes, token
                    )  # re-probes and decides alone
                    continue
                result = _record(
                    plan.cluster, plan.inventory, plan.settings, probes, failures, plan.state, batch
                )
                finished.append((plan, result))
            except Exception:  # noqa: BLE001 - one cluster's failure must not stop the shard
                log.exception("tick of cluster %s failed", plan.cluster.id)
            released.append((plan.cluster.id, token))
    finally:
        batch.count_tick(
            history.tick_counts(
                len(plans), len(clusters) - len(held), len(targets), time.monotonic() - started
            )
        )  # for Prometheus, same trip
        try:
            batch.execute()
        except Exception:  # Redis failing: no action on this tick; the locks go when Redis is back
            hotstate.release_tick_locks(released, lock_seconds)
            close_old_connections()
            raise
        for plan, result in finished:
            try:
                _after_round(result, plan.cluster)
            except Exception:  # noqa: BLE001
                log.exception("tick of cluster %s failed after recording", plan.cluster.id)
        hotstate.release_tick_locks(released)
        close_old_connections()


def due_shards(shard_size: int, now: float | None = None) -> list[list[int]]:
    """Clusters whose tick is due, in shards. Each cluster's own tick_seconds is honoured."""
    now = now or time.time()
    # A cluster still being provisioned has no servers yet: nothing to tick (no "no primary" finding).
    ticks = {
        cid: float((raw or {}).get("tick_seconds", 1) or 1)
        for cid, raw in Cluster.objects.filter(id__in=Server.objects.values("cluster_id")).values_list(
            "id", "settings"
        )
    }
    due = hotstate.take_due(ticks, now)
    shards = [due[i : i + shard_size] for i in range(0, len(due), shard_size)]
    # Workers take shards in the order sent, and a shard not started within a second expires: when they
    # fall behind, always sending the same shards last would starve those clusters. Start elsewhere each
    # second, so a shortfall is spread over every cluster.
    turn = int(now) % len(shards) if shards else 0
    return shards[turn:] + shards[:turn]
