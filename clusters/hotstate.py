"""Hot, per-tick state in Redis, every key scheme of it: the latest topology snapshot, probe-failure counters,
the failover's remembered lags, confirmation and incident, the tick's single-flight lock.

It may be lost at any time; monitoring rebuilds it within a tick. The database keeps what must survive.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from functools import lru_cache

import redis
from django.conf import settings

from clusters.domain.failover_plan import Incident, continue_incident
from controlplane import redisconf

log = logging.getLogger(__name__)

TOPOLOGY_TTL_SECONDS = 120


@lru_cache(maxsize=1)
def client() -> redis.Redis:
    # Through Sentinel (REDIS_URL sentinel://...) the client finds the new master after a failover.
    return redisconf.client(redisconf.parse(settings.REDIS_URL), socket_timeout=2, socket_connect_timeout=2)


def _key(cluster_id: int, what: str) -> str:
    return f"dbpilot:cluster:{cluster_id}:{what}"


def write_topology(cluster_id: int, snapshot: dict) -> None:
    client().set(_key(cluster_id, "topology"), json.dumps(snapshot), ex=TOPOLOGY_TTL_SECONDS)


def read_topology(cluster_id: int) -> dict | None:
    try:
        raw = client().get(_key(cluster_id, "topology"))
    except redis.RedisError:
        return None
    return json.loads(raw) if raw else None


def read_topologies(cluster_ids: list[int]) -> dict[int, dict]:
    if not cluster_ids:
        return {}
    try:
        raws = client().mget([_key(cid, "topology") for cid in cluster_ids])
    except redis.RedisError:
        return {}
    return {cid: json.loads(raw) for cid, raw in zip(cluster_ids, raws, strict=True) if raw}


def write_state(cluster_id: int, state: dict) -> None:
    client().set(_key(cluster_id, "state"), json.dumps(state), ex=TOPOLOGY_TTL_SECONDS)


def note_receiving(cluster_id: int, addresses: list[str], at: float) -> bool:
    """A job saw `addresses` replicating from the cluster's primary (IO thread connected) at `at`: they are
    witnesses of that primary from now on, as if a tick had seen them receiving (a replica repointed or rejoined
    between two ticks would otherwise look like one that stopped receiving long ago; after a failover
    the entries it replaces are of the old primary's time, older still). A tick writing at the same
    instant wins (the hint is lost; the next tick sees them receiving anyway). False when it was not
    recorded."""
    key = _key(cluster_id, "state")
    try:
        with client().pipeline() as pipe:
            pipe.watch(key)
            raw = pipe.get(key)
            state = json.loads(raw) if raw else {}
            if not state:
                pipe.reset()
                return False  # no tick yet: nothing to merge into
            received = dict(state.get("received") or {})
            for address in addresses:
                received[address] = max(float(received.get(address) or 0), at)
            state["received"] = received
            pipe.multi()
            pipe.set(key, json.dumps(state), ex=TOPOLOGY_TTL_SECONDS)
            pipe.execute()
            return True
    except (redis.RedisError, ValueError, TypeError):
        return False


def read_state(cluster_id: int) -> dict:
    raw = client().get(_key(cluster_id, "state"))
    return json.loads(raw) if raw else {}


def forget(cluster_id: int) -> None:
    client().delete(
        _key(cluster_id, "topology"),
        _key(cluster_id, "state"),
        history_key(cluster_id, "1h"),
        history_key(cluster_id, "24h"),
    )


# Per-server history (clusters/services/history.py): a list of packed tick entries per cluster and range.
HISTORY_TTL_SECONDS = 25 * 3600


def history_key(cluster_id: int, range_name: str) -> str:
    return _key(cluster_id, f"history:{range_name}")


def _push_history(pipe, cluster_id: int, range_name: str, entry: bytes, keep: int, expire: bool) -> None:
    key = history_key(cluster_id, range_name)
    pipe.rpush(key, entry)
    pipe.ltrim(key, -keep, -1)
    if expire:  # once a minute is enough for a 25-hour time to live
        pipe.expire(key, HISTORY_TTL_SECONDS)


def push_history(cluster_id: int, range_name: str, entry: bytes, keep: int, expire: bool = True) -> None:
    pipe = client().pipeline(transaction=False)
    _push_history(pipe, cluster_id, range_name, entry, keep, expire)
    pipe.execute()


MONITOR_STATS_KEY = "dbpilot:monitor:stats"


def _count_tick(pipe, counts: dict[str, float]) -> None:
    for field, amount in counts.items():
        pipe.hincrbyfloat(MONITOR_STATS_KEY, field, amount)


def count_tick(counts: dict[str, float]) -> None:
    """Add to the monitoring counters Prometheus reads (controlplane/metrics.py)."""
    pipe = client().pipeline(transaction=False)
    _count_tick(pipe, counts)
    pipe.execute()


def read_monitor_stats() -> dict[str, float]:
    return {k.decode(): float(v) for k, v in client().hgetall(MONITOR_STATS_KEY).items()}


def read_states(cluster_ids: list[int]) -> dict[int, dict]:
    """Many clusters' hot state in one round trip."""
    if not cluster_ids:
        return {}
    raws = client().mget([_key(cid, "state") for cid in cluster_ids])
    return {cid: json.loads(raw) for cid, raw in zip(cluster_ids, raws, strict=True) if raw}


class Batch:
    """Hot-state writes of a shard's tick, sent in one round trip by execute()."""

    def __init__(self):
        self._pipe = client().pipeline(transaction=False)

    def write_topology(self, cluster_id: int, snapshot: dict) -> None:
        self._pipe.set(_key(cluster_id, "topology"), json.dumps(snapshot), ex=TOPOLOGY_TTL_SECONDS)

    def write_state(self, cluster_id: int, state: dict) -> None:
        self._pipe.set(_key(cluster_id, "state"), json.dumps(state), ex=TOPOLOGY_TTL_SECONDS)

    def push_history(
        self, cluster_id: int, range_name: str, entry: bytes, keep: int, expire: bool = True
    ) -> None:
        _push_history(self._pipe, cluster_id, range_name, entry, keep, expire)

    def count_tick(self, counts: dict[str, float]) -> None:
        _count_tick(self._pipe, counts)

    def execute(self) -> None:
        self._pipe.execute()


# --- failover: the replicas' last lags, the ticks' confirmation, the incident -----------------------------

HOT_TTL_SECONDS = 3600
LAGS_REWRITE_SECONDS = 30.0

# Lags this process last wrote per cluster, so a healthy tick writes Redis only when they change.
_lags_written: dict[int, tuple[dict, float]] = {}


def remember_lags(cluster_id: int, lags: dict[str, float]) -> None:
    """The replicas' lags from a healthy tick: after the primary dies Seconds_Behind_Master is NULL, so
    the failover election needs the last known ones (max_replica_delay_seconds)."""
    now = time.monotonic()
    previous = _lags_written.get(cluster_id)
    if previous is not None and previous[0] == lags and now - previous[1] < LAGS_REWRITE_SECONDS:
        return
    client().set(_key(cluster_id, "lags"), json.dumps(lags), ex=HOT_TTL_SECONDS)
    _lags_written[cluster_id] = (lags, now)


def last_lags(cluster_id: int) -> dict[str, float]:
    """The lags last remembered for the cluster: this process's own copy, else Redis's."""
    written = _lags_written.get(cluster_id)
    return dict(written[0]) if written is not None else read_lags(cluster_id)


def remember_confirmation(cluster_id: int, primary: str, observed_at: float) -> None:
    """The ticks confirmed `primary`'s failure at `observed_at`: a manual request from another process
    (which cannot measure heartbeat ages) may rely on it while it is fresh."""
    client().set(
        _key(cluster_id, "confirmed"), json.dumps({"primary": primary, "at": observed_at}), ex=HOT_TTL_SECONDS
    )


def confirmed_age(cluster_id: int, primary: str | None, now: float) -> float | None:
    """Seconds since the ticks last confirmed `primary`'s failure, or None."""
    try:
        raw = client().get(_key(cluster_id, "confirmed"))
    except Exception:  # noqa: BLE001 - unknown: the request's own probes decide alone
        return None
    data = json.loads(raw) if raw else None
    if not data or primary is None or data.get("primary") != primary:
        return None
    return max(0.0, now - float(data.get("at") or 0))


def read_lags(cluster_id: int) -> dict[str, float]:
    try:
        raw = client().get(_key(cluster_id, "lags"))
    except Exception:  # noqa: BLE001 - unknown lags are only less information
        return {}
    return json.loads(raw) if raw else {}


def track_incident(cluster_id: int, primary: str, now: float, tick_seconds: float) -> Incident:
    redis_client = client()
    raw = redis_client.get(_key(cluster_id, "incident"))
    previous = json.loads(raw) if raw else None
    incident = continue_incident(previous, primary, now, tick_seconds)
    redis_client.set(_key(cluster_id, "incident"), json.dumps(incident.as_state()), ex=HOT_TTL_SECONDS)
    return incident


def mark_notified(cluster_id: int, incident: Incident) -> None:
    state = {**incident.as_state(), "notified": True}
    client().set(_key(cluster_id, "incident"), json.dumps(state), ex=HOT_TTL_SECONDS)


# --- the routes' lock ------------------------------------------------------------------------------------


def routes_lock(cluster_id: int, seconds: float, wait: float) -> redis.lock.Lock:
    """One sync of a cluster's routes at a time (clusters.routes.notify); not taken yet."""
    return client().lock(
        _key(cluster_id, "routes"),
        timeout=seconds,
        blocking=wait > 0,
        blocking_timeout=wait if wait > 0 else None,
    )


def take_due(ticks: dict[int, float], now: float) -> list[int]:
    """The clusters whose tick (cluster id -> tick_seconds) is due since beat last sent it, marked sent
    now (clusters.services.monitoring.due_shards)."""
    if not ticks:
        return []
    redis_client = client()
    last = redis_client.mget([_key(cid, "dispatched") for cid in ticks])
    pipe = redis_client.pipeline()
    due = []
    for (cid, tick), last_raw in zip(ticks.items(), last, strict=True):
        if last_raw is None or now - float(last_raw) >= tick - 0.1:
            due.append(cid)
            pipe.set(_key(cid, "dispatched"), now, ex=120)
    pipe.execute()
    return due


# --- the tick's single-flight lock -------------------------------------------------------------------------

# The single-flight lock of a cluster's tick: the same key and value shape as redis-py's Lock (a random
# token, deleted only by its holder), taken and released for a whole shard at once.
_RELEASE = """if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"""


def tick_lock_key(cluster_id: int) -> str:
    return _key(cluster_id, "tick")


def take_tick_locks(cluster_ids: list[int], seconds: float) -> dict[int, str]:
    """Take each cluster's tick lock that is free; returns cluster id -> token for the ones taken.

    The locks are short leases (`seconds`, DBPILOT_TICK_LOCK_SECONDS) that this process renews every
    second until it releases them (_TickLeases): a tick that runs long (a failing primary's re-probes)
    keeps its lock, and the locks of a worker that dies expire within `seconds`, so the other workers tick
    its clusters again that soon."""
    pipe = client().pipeline(transaction=False)
    # The token names its holder (host:pid:random), so an operator or a test can tell whose a lock is.
    holder = f"{socket.gethostname()}:{os.getpid()}"
    tokens = {cid: f"{holder}:{secrets.token_hex(12)}" for cid in cluster_ids}
    for cid in cluster_ids:
        pipe.set(tick_lock_key(cid), tokens[cid], nx=True, px=int(seconds * 1000))
    taken = pipe.execute()
    held = {cid: tokens[cid] for cid, ok in zip(cluster_ids, taken, strict=True) if ok}
    _leases.hold(held, seconds)
    return held


def release_tick_locks(held: list[tuple[int, str]], lock_seconds: float = 15.0) -> None:
    """Release the locks this process took. If Redis does not answer (restarting, failing over), keep
    trying in the background for as long as the locks could live: otherwise a tick cut short by the
    outage would keep its clusters from being ticked until the locks expire, after Redis is back."""
    if not held:
        return
    _leases.drop(held)
    try:
        _release(held)
    except redis.RedisError as exc:
        log.warning("could not release %d tick lock(s) (%s); retrying in the background", len(held), exc)
        _defer_release(held, lock_seconds)


def _release(held: list[tuple[int, str]]) -> None:
    script = _release_script()
    pipe = client().pipeline(transaction=False)
    for cid, token in held:
        script(keys=[tick_lock_key(cid)], args=[token], client=pipe)
    pipe.execute()


_EXTEND = """if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"""
TICK_LEASE_RENEW_SECONDS = 1.0
# No tick lasts longer (re-probes stop after CONFIRM_WINDOW_SECONDS, 6 s, plus their probes): a tick hung
# past this stops being renewed, so its clusters are ticked again as they were with the old fixed TTL.
TICK_LEASE_MAX_HOLD_SECONDS = 30.0


class _TickLeases:
    """The tick locks this process holds, renewed every TICK_LEASE_RENEW_SECONDS by one daemon thread
    (one pipelined round trip for all of them). Only the holder's token renews; a lock found gone or
    taken by another (Redis lost it in a failover) is forgotten. One per process: a Celery pool process
    forked from a parent that held locks starts afresh."""

    def __init__(self):
        self._guard = threading.Lock()
        self._held: dict[int, tuple[str, int, float]] = {}  # cluster id -> (token, lease in ms, taken at)
        self._pid = 0
        self._thread: threading.Thread | None = None

    def hold(self, held: dict[int, str], seconds: float) -> None:
        if not held:
            return
        with self._guard:
            if self._pid != os.getpid():  # forked: the parent's locks and thread are not ours
                self._held, self._pid, self._thread = {}, os.getpid(), None
            now = time.monotonic()
            self._held.update({cid: (token, int(seconds * 1000), now) for cid, token in held.items()})
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._renew_forever, name="tick-leases", daemon=True)
                self._thread.start()

    def drop(self, held: list[tuple[int, str]]) -> None:
        with self._guard:
            for cid, token in held:
                if self._held.get(cid, ("",))[0] == token:
                    del self._held[cid]

    def held(self) -> dict[int, str]:
        with self._guard:
            return (
                {cid: token for cid, (token, _, _) in self._held.items()} if self._pid == os.getpid() else {}
            )

    def _renew_forever(self) -> None:
        while True:
            time.sleep(TICK_LEASE_RENEW_SECONDS)
            with self._guard:
                too_old = time.monotonic() - TICK_LEASE_MAX_HOLD_SECONDS
                for cid in [c for c, (_, _, taken) in self._held.items() if taken < too_old]:
                    log.warning(
                        "tick of cluster %s still holds its lock after %.0f s: no longer renewed",
                        cid,
                        TICK_LEASE_MAX_HOLD_SECONDS,
                    )
                    del self._held[cid]
                leases = list(self._held.items())
            if not leases:
                continue
            try:
                script = _extend_script()
                pipe = client().pipeline(transaction=False)
                for cid, (token, ms, _) in leases:
                    script(keys=[tick_lock_key(cid)], args=[token, ms], client=pipe)
                renewed = pipe.execute()
            except redis.RedisError as exc:  # Redis failing over: the leases may lapse; ticks resume after
                log.warning("could not renew %d tick lock(s): %s", len(leases), exc)
                continue
            lost = [(cid, token) for (cid, (token, _, _)), ok in zip(leases, renewed, strict=True) if not ok]
            if lost:
                self.drop(lost)


_leases = _TickLeases()


@lru_cache(maxsize=1)
def _extend_script():
    return client().register_script(_EXTEND)


_deferred: list[tuple[float, list[tuple[int, str]]]] = []  # (give up at, locks)
_deferred_guard = threading.Lock()
_deferred_thread: threading.Thread | None = None


def _defer_release(held: list[tuple[int, str]], lock_seconds: float) -> None:
    global _deferred_thread
    with _deferred_guard:
        _deferred.append((time.monotonic() + lock_seconds, list(held)))
        if _deferred_thread is None or not _deferred_thread.is_alive():
            _deferred_thread = threading.Thread(
                target=_release_deferred, name="tick-lock-release", daemon=True
            )
            _deferred_thread.start()


def _release_deferred() -> None:
    while True:
        time.sleep(0.25)
        with _deferred_guard:
            now = time.monotonic()
            _deferred[:] = [(until, held) for until, held in _deferred if until > now]
            if not _deferred:
                return
            pending = [lock for _, held in _deferred for lock in held]
        try:
            _release(pending)
        except redis.RedisError:
            continue
        with _deferred_guard:
            _deferred[:] = [(until, held) for until, held in _deferred if not set(held) <= set(pending)]


@lru_cache(maxsize=1)
def _release_script():
    return client().register_script(_RELEASE)


def read_gtid_history(cluster_id: int) -> str | None:
    """The union of every primary's gtid_binlog_state and positions the ticks saw healthy (kept in the
    cluster's state by clusters.services.monitoring): what errant transactions are judged against once
    the primary is gone (clusters.domain.gtid.errant_among_survivors). None when unknown."""
    try:
        return read_state(cluster_id).get("gtid_history")
    except redis.RedisError:
        return None


def read_semi_sync_at(cluster_id: int, primary: str | None) -> dict | None:
    """The primary's semi-sync state as the ticks last saw it healthy (None when unknown)."""
    try:
        state = read_state(cluster_id)
    except redis.RedisError:
        return None
    if primary is None or state.get("primary") != primary:
        return None
    return state.get("semi_sync_at")


def read_last_received(cluster_id: int) -> tuple[dict[str, float], float | None]:
    """When each replica was last seen receiving from the primary, and since when the primary fails."""
    try:
        state = read_state(cluster_id)
    except redis.RedisError:
        return {}, None
    return dict(state.get("received") or {}), state.get("failing_since")


def read_incident(cluster_id: int) -> dict | None:
    """The failing primary's last incident (primary, since, last_seen), or None."""
    try:
        raw = client().get(_key(cluster_id, "incident"))
    except redis.RedisError:
        return None
    return json.loads(raw) if raw else None
