"""Builders of probe results and inventories for the domain unit tests (a healthy 3-server cluster by default)."""

from __future__ import annotations

from dataclasses import replace

from clusters.domain.probe import ProbeResult, ReplicationChannel
from clusters.domain.topology import InventoryServer

P, R1, R2 = "127.0.0.1:3301", "127.0.0.1:3302", "127.0.0.1:3303"  # never dialled: pure tests
SERVER_IDS = {P: 1, R1: 2, R2: 3}


def channel(source: str = P, **fields) -> ReplicationChannel:
    host, _, port = source.rpartition(":")
    values = dict(
        source_host=host.strip("[]"),
        source_port=int(port),
        io_running="Yes",
        sql_running=True,
        seconds_behind=0,
        using_gtid="Slave_Pos",
        gtid_io_pos="0-1-100",
        heartbeat_period=1.0,
        last_heartbeat_age_seconds=0.3,
    )
    values.update(fields)
    return ReplicationChannel(**values)


def primary(address: str = P, **fields) -> ProbeResult:
    values = dict(
        address=address,
        outcome="ok",
        flavour="mariadb",
        version="10.11.6-MariaDB-0+deb12u1-log",
        server_id=SERVER_IDS.get(address, 9),
        read_only=False,
        gtid_current_pos="0-1-100",
        gtid_binlog_pos="0-1-100",
        gtid_slave_pos="",
        gtid_binlog_state="0-1-100",
        gtid_strict_mode=True,
        log_bin=True,
        log_slave_updates=True,
        binlog_format="ROW",
        gtid_list_of_oldest_binlog="",
        semi_sync_master_enabled=False,
        semi_sync_slave_enabled=False,
        semi_sync_wait_point="AFTER_SYNC",
        longest_trx_seconds=0,
        longest_write_trx_seconds=0,
        longest_query_seconds=0,
    )
    values.update(fields)
    return ProbeResult(**values)


def replica(
    address: str = R1, source: str = P, *, channel_fields: dict | None = None, **fields
) -> ProbeResult:
    values = dict(
        read_only=True,
        gtid_slave_pos="0-1-100",
        replication=(channel(source, **(channel_fields or {})),),
    )
    values.update(fields)
    return primary(address, **values)


def failed(address: str, outcome: str = "refused") -> ProbeResult:
    return ProbeResult(address=address, outcome=outcome, error="cannot connect")


def inventory(*addresses: str, **flags: set[str]) -> list[InventoryServer]:
    """inventory(P, R1, maintenance={R1}, fenced=..., quarantined=...)"""
    return [
        InventoryServer(
            id=i + 1,
            address=a,
            maintenance=a in flags.get("maintenance", set()),
            fenced=a in flags.get("fenced", set()),
            quarantined=a in flags.get("quarantined", set()),
        )
        for i, a in enumerate(addresses)
    ]


def healthy(**overrides: ProbeResult) -> dict[str, ProbeResult]:
    """Probes of a healthy cluster P -> R1, R2; keyword overrides by name p/r1/r2."""
    probes = {"p": primary(P), "r1": replica(R1), "r2": replica(R2)}
    probes.update(overrides)
    return {probe.address: probe for probe in probes.values()}


def with_channel(probe: ProbeResult, **fields) -> ProbeResult:
    return replace(probe, replication=(replace(probe.replication[0], **fields),))
