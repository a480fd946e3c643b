"""Hot, per-tick state in Redis: the latest topology snapshot and probe-failure counters.

It may be lost at any time; monitoring rebuilds it within a tick. The database keeps what must survive.
"""
from __future__ import annotations

import json
from functools import lru_cache

import redis
from django.conf import settings

TOPOLOGY_TTL_SECONDS = 120


@lru_cache(maxsize=1)
def client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


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


def read_state(cluster_id: int) -> dict:
    raw = client().get(_key(cluster_id, "state"))
    return json.loads(raw) if raw else {}


def forget(cluster_id: int) -> None:
    client().delete(_key(cluster_id, "topology"), _key(cluster_id, "state"))
