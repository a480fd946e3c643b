"""Per-server history in Redis: recorded by the monitoring tick, read by the metrics API and Prometheus.

Each tick of a cluster appends one packed entry (every server's sample, clusters/domain/history.py) to
the cluster's 1-hour list, and once a minute the minute's aggregate to its 24-hour list; both are
trimmed to their length in the same pipeline, which is the shard's hot-state write (no round trip of its
own). The rate memory and the running minute live in the cluster's hot state, written in that same trip.
Memory: about 23 bytes per server per entry; bench/history.py measures it.
"""

from __future__ import annotations

import redis

from clusters import hotstate
from clusters.domain.history import (
    DAY_SAMPLES,
    HOUR_SAMPLES,
    MinuteAggregate,
    PrimaryCheckpoints,
    RateMemory,
    Sample,
    gtid_sequence,
    make_sample,
    pack_entry,
    unpack_entry,
)


def _seq(position: str | None) -> int | None:
    return None if position is None else sum(gtid_sequence(position).values())  # "": nothing applied yet


def samples_of(
    topology, probes: dict, memory: RateMemory, now: float, checkpoints: PrimaryCheckpoints | None = None
) -> list[Sample]:
    samples = []
    checkpoints = checkpoints or PrimaryCheckpoints()
    primary = next((v for v in topology.servers if v.address == topology.primary), None)
    if primary is not None and primary.state == "up":
        checkpoints.add(now, _seq(primary.gtid_current_pos))
    for view in topology.servers:
        probe = probes.get(view.address)
        reachable = bool(probe is not None and probe.reachable)
        semi = None
        if reachable:
            semi = probe.semi_sync_master_status if view.role == "primary" else probe.semi_sync_slave_status
        lag = view.lag
        if lag is None and reachable and view.replication and view is not primary:
            lag = checkpoints.lag(_seq(view.gtid_current_pos), now)  # SQL thread stopped: no Seconds_Behind
        samples.append(
            make_sample(
                view.id,
                reachable=reachable,
                lag=lag,
                replication=view.replication,
                semi_sync=semi,
                connections=probe.threads_connected if reachable else None,
                reads_total=probe.reads_total if reachable else None,
                writes_total=probe.writes_total if reachable else None,
                gtid_position=view.gtid_current_pos,
                now=now,
                memory=memory,
            )
        )
    return samples


def record(store, cluster_id: int, topology, probes: dict, state: dict, observed: float) -> None:
    """Append this tick's samples (and a finished minute) through `store` (hotstate or a shard's Batch);
    keeps the rate memory and the running minute in `state`, which the caller writes next."""
    hist = state.get("history") or {}
    memory = RateMemory(hist.get("rates"))
    checkpoints = PrimaryCheckpoints(hist.get("primary"))
    samples = samples_of(topology, probes, memory, observed, checkpoints)
    memory.forget_missing({f"{s.server_id}:{k}" for s in samples for k in "rwg"})
    minute = MinuteAggregate(hist.get("minute"))
    done = minute.add(observed, samples)
    store.push_history(cluster_id, "1h", pack_entry(observed, samples), HOUR_SAMPLES, expire=done is not None)
    if done is not None:
        store.push_history(cluster_id, "24h", done, DAY_SAMPLES)
    state["history"] = {
        "rates": memory.to_state(),
        "minute": minute.to_state(),
        "primary": checkpoints.to_state(),
    }


def read(cluster_id: int, range_name: str, since: float | None = None) -> list[tuple[int, list[Sample]]]:
    """The entries of a range, oldest first (an empty list when Redis has none or is down)."""
    try:
        raws = hotstate.client().lrange(hotstate.history_key(cluster_id, range_name), 0, -1)
    except redis.RedisError:
        return []
    entries = [unpack_entry(raw) for raw in raws]
    if since is not None:
        entries = [e for e in entries if e[0] >= since]
    return entries


def latest(cluster_ids: list[int]) -> dict[int, dict[int, Sample]]:
    """The latest tick's samples of each cluster, by server id, in one round trip."""
    if not cluster_ids:
        return {}
    pipe = hotstate.client().pipeline(transaction=False)
    for cid in cluster_ids:
        pipe.lindex(hotstate.history_key(cid, "1h"), -1)
    out = {}
    for cid, raw in zip(cluster_ids, pipe.execute(), strict=True):
        if raw:
            out[cid] = {s.server_id: s for s in unpack_entry(raw)[1]}
    return out


TICK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0)


def tick_counts(clusters: int, skipped: int, probes: int, seconds: float) -> dict[str, float]:
    """What one shard's tick adds to the monitoring counters (a histogram of shard tick durations)."""
    counts = {"shards": 1, "clusters": clusters, "skipped": skipped, "probes": probes, "seconds": seconds}
    for bound in TICK_BUCKETS:
        if seconds <= bound:
            counts[f"le:{bound}"] = 1
    return counts


MARK_KINDS = {"finding_opened", "finding_resolved", "job_finished", "primary_changed"}


def chart(cluster, range_name: str, series: list[str], now: float, after: float | None = None) -> dict:
    """What GET /clusters/{id}/metrics/ answers (see clusters/api/history.py)."""
    from datetime import UTC, datetime

    from clusters.domain.history import RANGES, series_points
    from clusters.models import Event

    since = now - RANGES[range_name]
    if after is not None:
        since = max(since, after + 1e-6)
    entries = read(cluster.id, range_name, since)
    if range_name == "24h":  # the running minute, not yet pushed, would leave the latest minute blank
        entries += [
            e for e in read(cluster.id, "1h", max(since, (entries[-1][0] + 60) if entries else since))
        ]
    points = series_points(entries, series)
    servers = []
    for server in cluster.servers.all():
        row = points.get(server.id, {"t": [], **{name: [] for name in series}})
        servers.append({"id": server.id, "address": server.address, **row})
    marks = []
    events = Event.objects.filter(
        cluster=cluster, kind__in=MARK_KINDS, created_at__gte=datetime.fromtimestamp(since, tz=UTC)
    ).order_by("created_at")[:500]
    for event in events:
        kind = event.kind
        if kind == "job_finished":
            job_kind = (event.data or {}).get("kind")
            if job_kind not in ("failover", "switchover"):
                continue
            kind = job_kind
        marks.append(
            {
                "t": event.created_at.timestamp(),
                "kind": kind,
                "severity": event.severity,
                "message": event.message,
            }
        )
    return {
        "cluster": cluster.id,
        "range": range_name,
        "resolution_seconds": 1 if range_name == "1h" else 60,
        "series": series,
        "servers": servers,
        "marks": marks,
    }
