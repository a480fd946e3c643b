"""Automatic replacement of a lost server of a provisioned cluster (pure): which server to replace, if any,
after one tick. A server down longer than `replace_after_seconds` is replaced by a new replica cloned from a
healthy server; the dead one leaves the inventory only once the new one replicates, so a replacement never
leaves fewer healthy servers than before.

Never: for a registered cluster (dbpilot does not own its servers), when the setting is 0, while the cluster
or the platform is paused, while another job runs on the cluster (one at a time), for the primary (failover
comes first: its old primary is then a fenced replica like any other), for a server in maintenance (taken
down on purpose), or without a live primary (no healthy source to clone from, nothing to replicate from).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clusters.domain import constants as c


@dataclass(frozen=True)
class ServerHealth:
    """One server as the tick saw it; `down_for` is how long it has been down (None: it is not)."""

    id: int
    address: str
    state: str
    primary: bool
    maintenance: bool
    down_for: float | None


@dataclass(frozen=True)
class ReplacementDecision:
    server_id: int | None
    reason: str


def choose_replacement(
    servers: Sequence[ServerHealth],
    *,
    provisioned: bool,
    replace_after_seconds: float,
    paused: bool,
    job_active: bool,
    recently_failed: Sequence[int] = (),
) -> ReplacementDecision:
    """The server to replace now (the one down longest), or None with the reason."""
    if not provisioned:
        return ReplacementDecision(None, "a registered cluster: dbpilot does not own its servers")
    if replace_after_seconds <= 0:
        return ReplacementDecision(None, "replace_after_seconds is 0: replacement is off")
    if paused:
        return ReplacementDecision(None, "automatic actions are paused")
    overdue = [
        s
        for s in servers
        if not s.primary
        and not s.maintenance
        and s.down_for is not None
        and s.down_for >= replace_after_seconds
    ]
    if not overdue:
        return ReplacementDecision(None, "no server has been down that long")
    if job_active:
        return ReplacementDecision(None, "another job runs on the cluster: one at a time")
    if not any(s.primary and s.state == c.STATE_UP for s in servers):
        return ReplacementDecision(None, "no live primary: nothing healthy to clone from")
    candidates = [s for s in overdue if s.id not in recently_failed]
    if not candidates:
        return ReplacementDecision(None, "its last replacement failed recently: retried later")
    target = max(candidates, key=lambda s: s.down_for or 0.0)
    return ReplacementDecision(
        target.id,
        f"{target.address} has been down {target.down_for:.0f} s (replace_after_seconds {replace_after_seconds:g})",
    )


def down_since(previous: dict[str, float], states: dict[str, str], now: float) -> dict[str, float]:
    """When each server was first seen down in its current outage (servers seen up are forgotten)."""
    return {address: previous.get(address, now) for address, state in states.items() if state == c.STATE_DOWN}
