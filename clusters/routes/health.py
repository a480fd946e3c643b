"""Which servers routes may send reads to, and what the proxies' health checks answer (plain Python).

Both read dbpilot's latest observation, the monitoring snapshot (clusters.hotstate: `{"primary",
"servers": [{"address", "role", "state", "read_only", "replication": {"io_running", "sql_running",
"seconds_behind"}}], "updated_at"}`), never the servers themselves: a health check is answered in
microseconds and a proxy polling every second costs the databases nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

UP = "up"
READ_ROLES = ("replica", "relay")


def _replication_running(server: dict[str, Any]) -> bool:
    replication = server.get("replication") or {}
    return replication.get("io_running") == "Yes" and replication.get("sql_running") == "Yes"


def _lag(server: dict[str, Any]) -> float | None:
    value = (server.get("replication") or {}).get("seconds_behind")
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def serves_reads(server: dict[str, Any], max_delay_seconds: float) -> tuple[bool, str]:
    """Whether an observed replica may take reads: up, both replication threads running, lag within
    `max_delay_seconds` (the cluster's max_replica_delay_seconds)."""
    if server.get("state") != UP:
        return False, f"state {server.get('state') or 'unknown'}"
    if server.get("role") not in READ_ROLES:
        return False, f"role {server.get('role') or 'unknown'}"
    if not _replication_running(server):
        return False, "replication is not running"
    lag = _lag(server)
    if lag is not None and lag > max_delay_seconds:
        return False, f"{lag:g}s behind (more than {max_delay_seconds:g}s)"
    return True, "replicating"


def unreadable(
    snapshot: dict[str, Any] | None, maintenance: Iterable[str], max_delay_seconds: float
) -> frozenset[str]:
    """Servers reads must avoid: in maintenance, or observed unhealthy as a replica. A server the snapshot
    shows as the primary is left out of this set: a job may just have demoted it into a healthy replica."""
    bad = set(maintenance)
    for server in (snapshot or {}).get("servers", []):
        address = server.get("address")
        if not address or address == (snapshot or {}).get("primary"):
            if server.get("state") not in (UP, None):
                bad.add(address)
            continue
        ok, _ = serves_reads(server, max_delay_seconds)
        if not ok:
            bad.add(address)
    return frozenset(a for a in bad if a)


def read_members(primary: str | None, replicas: Iterable[str], avoid: frozenset[str]) -> list[str]:
    """The servers a read backend or record should hold: the replicas not to avoid, else (none left) the
    primary, so reads still find a server."""
    members = [a for a in replicas if a != primary and a not in avoid]
    if not members and primary:
        return [primary]
    return members


@dataclass(frozen=True)
class HealthAnswer:
    healthy: bool
    reason: str
    source: str  # "observed" (monitoring snapshot) or "inventory" (no fresh snapshot: the recorded primary)

    def as_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "reason": self.reason, "source": self.source}


def _observed(snapshot: dict[str, Any] | None, address: str) -> dict[str, Any] | None:
    for server in (snapshot or {}).get("servers", []):
        if server.get("address") == address:
            return server
    return None


def primary_answer(
    address: str, snapshot: dict[str, Any] | None, recorded_primary: str | None, recorded_is_newer: bool
) -> HealthAnswer:
    """Is `address` the server writes go to? A job's recorded primary wins over an older snapshot (the
    switch is seconds-fresh, the snapshot is the previous tick's); otherwise the snapshot's writable,
    reachable primary; with no snapshot at all, the recorded primary."""
    if snapshot is None:
        healthy = recorded_primary == address
        return HealthAnswer(
            healthy, "the recorded primary" if healthy else "not the recorded primary", "inventory"
        )
    if recorded_is_newer and recorded_primary:
        healthy = recorded_primary == address
        return HealthAnswer(
            healthy,
            "primary since the last switch" if healthy else "not the primary since the last switch",
            "inventory",
        )
    if snapshot.get("primary") != address:
        return HealthAnswer(False, "not the primary", "observed")
    server = _observed(snapshot, address) or {}
    if server.get("state") != UP:
        return HealthAnswer(False, f"primary but {server.get('state') or 'unknown'}", "observed")
    if server.get("read_only"):
        return HealthAnswer(False, "primary but read-only", "observed")
    return HealthAnswer(True, "primary, writable", "observed")


def replica_answer(
    address: str,
    snapshot: dict[str, Any] | None,
    recorded_primary: str | None,
    recorded_is_newer: bool,
    maintenance: bool,
    max_delay_seconds: float,
) -> HealthAnswer:
    """May `address` take reads? Never while in maintenance or while it is the primary."""
    if maintenance:
        return HealthAnswer(False, "in maintenance", "inventory")
    if recorded_is_newer and recorded_primary == address:
        return HealthAnswer(False, "the primary since the last switch", "inventory")
    if snapshot is None:
        healthy = recorded_primary is not None and recorded_primary != address
        return HealthAnswer(
            healthy, "a replica of the recorded primary" if healthy else "no observation", "inventory"
        )
    server = _observed(snapshot, address)
    if server is None:
        return HealthAnswer(False, "not observed yet", "observed")
    if recorded_is_newer and snapshot.get("primary") == address and server.get("state") == UP:
        return HealthAnswer(True, "demoted by the last switch", "inventory")
    ok, reason = serves_reads(server, max_delay_seconds)
    return HealthAnswer(ok, reason, "observed")
