"""What the adopt job changes on a replica so that automatic failover can rely on it: a 1 s connect retry
and heartbeat, a short slave_net_timeout, read-only replicas, semi-sync slave side on and master side
off. Pure: clusters.jobs.adopt_steps reads the values and applies the changes."""

from __future__ import annotations

from dataclasses import dataclass

from clusters.domain.settings import ClusterSettings

ADOPT_HEARTBEAT_SECONDS = 1.0
ADOPT_CONNECT_RETRY_SECONDS = 1
ADOPT_SLAVE_NET_TIMEOUT_SECONDS = 4  # a hung source is noticed in seconds, not the default minute


@dataclass(frozen=True)
class ReplicaSetup:
    """What adopt reads on one replica (SHOW SLAVE STATUS and a few variables)."""

    address: str
    using_gtid: str
    connect_retry: int | None
    heartbeat_period: float | None
    slave_net_timeout: int | None
    read_only: bool | None
    semi_sync_slave: bool | None
    semi_sync_master: bool | None


@dataclass(frozen=True)
class ReplicaChanges:
    """What adopt changes on one replica; `restart` when its IO thread must reconnect to apply them."""

    address: str
    slave_net_timeout: bool = False
    change_master: bool = False
    semi_sync_slave_on: bool = False
    semi_sync_master_off: bool = False
    read_only_on: bool = False
    problem: str = ""

    @property
    def restart(self) -> bool:
        return self.slave_net_timeout or self.change_master or self.semi_sync_slave_on

    @property
    def any(self) -> bool:
        return self.restart or self.semi_sync_master_off or self.read_only_on

    def describe(self) -> str:
        parts = []
        if self.slave_net_timeout:
            parts.append(f"slave_net_timeout={ADOPT_SLAVE_NET_TIMEOUT_SECONDS}")
        if self.change_master:
            parts.append(
                f"MASTER_CONNECT_RETRY={ADOPT_CONNECT_RETRY_SECONDS}, "
                f"MASTER_HEARTBEAT_PERIOD={ADOPT_HEARTBEAT_SECONDS:g}"
            )
        if self.semi_sync_slave_on:
            parts.append("semi-sync slave side on")
        if self.semi_sync_master_off:
            parts.append("semi-sync master side off")
        if self.read_only_on:
            parts.append("read_only=1")
        return ", ".join(parts) or "nothing to change"


def adopt_changes(setup: ReplicaSetup, settings: ClusterSettings) -> ReplicaChanges:
    """The changes automatic failover relies on: a 1 s connect retry and heartbeat, a short
    slave_net_timeout, read-only replicas (when `replicas_read_only`), the semi-sync slave side on and the
    master side off (when `semi_sync`). A replica that does not replicate by GTID is a problem: failover
    could not repoint it safely."""
    if setup.using_gtid.lower() == "no":
        return ReplicaChanges(
            setup.address,
            problem=f"{setup.address} replicates by file and position, not by "
            "GTID: run CHANGE MASTER TO MASTER_USE_GTID=slave_pos first",
        )
    heartbeat = setup.heartbeat_period
    return ReplicaChanges(
        setup.address,
        slave_net_timeout=setup.slave_net_timeout is None
        or setup.slave_net_timeout > ADOPT_SLAVE_NET_TIMEOUT_SECONDS,
        change_master=(
            setup.connect_retry != ADOPT_CONNECT_RETRY_SECONDS
            or heartbeat is None
            or abs(heartbeat - ADOPT_HEARTBEAT_SECONDS) > 0.001
        ),
        semi_sync_slave_on=settings.semi_sync and not setup.semi_sync_slave,
        semi_sync_master_off=settings.semi_sync and bool(setup.semi_sync_master),
        read_only_on=settings.replicas_read_only and not setup.read_only,
    )
