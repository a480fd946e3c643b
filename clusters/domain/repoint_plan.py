"""Who an HA job repoints or leaves out, decided from the servers' flags and status rows.

Pure: clusters.jobs.switchover_steps, failover_steps and rejoin_steps read SHOW SLAVE STATUS and the probes,
ask these functions, and apply the answer. A status row is the dict of SHOW SLAVE STATUS (MariaDB) or
SHOW REPLICA STATUS (MySQL 8), None for a server that replicates from nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from clusters.domain.detection import normalize_address
from clusters.domain.gtid import GtidError, MariadbGtidPos, MysqlGtidSet

Status = Mapping[str, Any]

LEFT_OUT_ERRANT = "errant transactions: repointing it would fail (error 1236) or spread them"
LEFT_OUT_MAINTENANCE = "maintenance"
LEFT_OUT_UNREACHABLE = "not reachable"


@dataclass(frozen=True)
class Member:
    """A server of the cluster as a job sees it."""

    address: str
    maintenance: bool = False
    reachable: bool = True


# --- status rows -----------------------------------------------------------------------------------------


def position_contains(flavour: str, have: str, want: str) -> bool:
    """True when the GTID position/set `have` includes `want` (False when either cannot be read)."""
    try:
        if flavour == "mysql":
            return MysqlGtidSet.parse(have).contains(MysqlGtidSet.parse(want))
        return MariadbGtidPos.parse(have).contains(MariadbGtidPos.parse(want))
    except GtidError:
        return False


def source_of(status: Status) -> str:
    """The row's source as "host:port" (as the server reports it)."""
    host = status.get("Master_Host") or status.get("Source_Host") or ""
    port = status.get("Master_Port") or status.get("Source_Port") or 0
    return f"{host}:{port}"


def points_at(status: Status, host: str, port: int) -> bool:
    source_host = status.get("Master_Host") or status.get("Source_Host") or ""
    source_port = status.get("Master_Port") or status.get("Source_Port") or 0
    try:
        return normalize_address(f"{source_host}:{int(source_port)}") == normalize_address(f"{host}:{port}")
    except (TypeError, ValueError):
        return False


def by_gtid(status: Status) -> bool:
    using = (status.get("Using_Gtid") or "").lower()
    return using == "slave_pos" or str(status.get("Auto_Position", "")) == "1"


def by_own_history(status: Status) -> bool:
    """By GTID from gtid_current_pos (MariaDB `Current_Pos`: a demoted primary until it settles), or MySQL's
    auto-position (gtid_executed counts a server's own transactions anyway)."""
    using = (status.get("Using_Gtid") or "").lower()
    return using == "current_pos" or str(status.get("Auto_Position", "")) == "1"


def io_running(status: Status | None) -> bool:
    if not status:
        return False
    return (status.get("Slave_IO_Running") or status.get("Replica_IO_Running")) == "Yes"


def replicating(status: Status | None) -> bool:
    if not status:
        return False
    sql = status.get("Slave_SQL_Running") or status.get("Replica_SQL_Running")
    return io_running(status) and sql == "Yes"


def connected_to(status: Status | None, host: str, port: int) -> bool:
    """Already following host:port by GTID with its IO thread connected: nothing to repoint."""
    return status is not None and points_at(status, host, port) and by_gtid(status) and io_running(status)


# --- who follows the new primary -------------------------------------------------------------------------


def survivors(members: Iterable[Member], old_primary: str | None) -> list[str]:
    """Reachable servers other than the old primary that are not in maintenance (a failover's survivors)."""
    return [m.address for m in members if m.address != old_primary and not m.maintenance and m.reachable]


def failover_targets(
    members: Iterable[Member], old_primary: str | None, new_primary: str, errant: Iterable[str]
) -> tuple[list[str], dict[str, str]]:
    """The survivors a failover repoints at its new primary, and every other server left out with why
    (errant transactions, maintenance, not reachable). The old primary is neither: it is fenced."""
    members = list(members)
    errant = set(errant)
    reachable = survivors(members, old_primary)
    targets = [a for a in reachable if a != new_primary and a not in errant]
    left_out = {
        **{a: LEFT_OUT_ERRANT for a in sorted(errant)},
        **{m.address: LEFT_OUT_MAINTENANCE for m in members if m.maintenance and m.address != old_primary},
        **{
            m.address: LEFT_OUT_UNREACHABLE
            for m in members
            if m.address != old_primary and m.address not in reachable and not m.maintenance
        },
    }
    return targets, left_out


def switchover_targets(addresses: Iterable[str], new_primary: str, unreachable: Iterable[str]) -> list[str]:
    """The servers that follow a switchover's new primary: all others (the old primary too) that were
    reachable when it was elected."""
    unreachable = set(unreachable)
    return [a for a in addresses if a != new_primary and a not in unreachable]
