"""Topology analysis: from the latest probes of a cluster's servers to roles, states and findings.

`analyze` is a pure function of the inventory, the latest probe of each server, the cluster settings
and the consecutive failed-probe counts. It names the primary even when the picture is inconsistent:

1. Servers that replicate from another server of the cluster are not primaries, unless writable.
2. Among the rest, the primary is the one most reachable replicas point at; ties go to a server that is
   not fenced, then to one that is up and writable, then to `known_primary` (the last primary dbpilot
   recorded), then to one that is up, then to the first in inventory order.
3. A server with no follower is still the primary when it is writable, when it is the known primary,
   or when it is the only server; otherwise there is no primary (NO_PRIMARY).

So with the primary down, it is the server the replicas still point at; with two writable servers, the
one the replicas follow. Every finding code is documented in docs/findings.md.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from clusters.domain import constants as c
from clusters.domain.detection import channel_receiving, heartbeat_stale, normalize_address, source_address
from clusters.domain.findings import FindingData, worst_severity
from clusters.domain.gtid import GtidError, errant_gtids, purged_transactions_needed
from clusters.domain.probe import (
    ALIVE_OUTCOMES,
    AUTH_FAILED,
    ERROR_REPLY,
    OK,
    ProbeResult,
    ReplicationChannel,
)
from clusters.domain.settings import ClusterSettings


@dataclass(frozen=True)
class InventoryServer:
    """A server as the inventory knows it (the database row, as plain data)."""

    id: int
    address: str
    maintenance: bool = False
    fenced: bool = False  # dbpilot demoted or failed over away from it: it must stay read-only
    quarantined: bool = False  # it holds transactions the cluster lacks: no rejoin


@dataclass(frozen=True)
class ServerView:
    """One server in the analysed topology (the `servers` of the topology payload)."""

    id: int
    address: str
    role: str
    state: str
    read_only: bool | None
    gtid_current_pos: str | None
    # {"source", "io_running", "sql_running" ("Yes"/"No"...), "seconds_behind", "sql_delay"} or None
    replication: dict[str, Any] | None
    lag: float | None  # seconds behind its source beyond any intended MASTER_DELAY
    maintenance: bool
    fenced: bool = False
    quarantined: bool = False
    failures: int = 0
    server_id: int | None = None
    flavour: str = ""
    version: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Topology:
    """The analysed picture of a cluster at one instant."""

    primary: str | None
    servers: tuple[ServerView, ...]
    findings: tuple[FindingData, ...]
    replication_edges: tuple[tuple[str, str], ...]  # (replica, source)
    primary_server_id: int | None = None
    observed_at: float | datetime | None = None

    def server(self, address: str | None) -> ServerView | None:
        return next((s for s in self.servers if s.address == address), None)

    @property
    def primary_view(self) -> ServerView | None:
        return self.server(self.primary)

    @property
    def unobserved(self) -> frozenset[str]:
        """Servers whose details could not be seen this tick (their other findings are unknown)."""
        return frozenset(s.address for s in self.servers if s.state != c.STATE_UP)

    @property
    def health(self) -> str:
        return worst_severity(f.severity for f in self.findings)

    def findings_for(self, address: str | None) -> tuple[FindingData, ...]:
        return tuple(f for f in self.findings if f.server == address)

    def as_dict(self) -> dict[str, Any]:
        observed = (
            self.observed_at.isoformat() if isinstance(self.observed_at, datetime) else self.observed_at
        )
        return {
            "primary": self.primary,
            "servers": [s.as_dict() for s in self.servers],
            "findings": [f.as_dict() for f in self.findings],
            "replication_edges": [list(e) for e in self.replication_edges],
            "observed_at": observed,
        }


def effective_lag(channel: ReplicationChannel) -> float | None:
    """Seconds_Behind_Master minus the intended MASTER_DELAY (never below 0); None when unknown.

    A delayed replica's Seconds_Behind_Master includes the delay it was asked to keep, so only what
    exceeds SQL_Delay is lag.
    """
    if channel.seconds_behind is None:
        return None
    return float(max(0, channel.seconds_behind - max(0, channel.sql_delay)))


def _version_number(version: str) -> str:
    match = re.match(r"\d+\.\d+\.\d+", version or "")
    return match.group(0) if match else (version or "")


def analyze(
    inventory: Sequence[InventoryServer],
    probes: Mapping[str, ProbeResult],
    settings: ClusterSettings,
    failures: Mapping[str, int],
    now: float | datetime | None = None,
    *,
    known_primary: str | None = None,
) -> Topology:
    """Analyse one observation of a cluster. Pure: no I/O, no clock (`now` is only recorded)."""
    return _Analysis(inventory, probes, settings, failures, known_primary).run(now)


class _Analysis:
    """The working state of one `analyze` call."""

    def __init__(
        self,
        inventory: Sequence[InventoryServer],
        probes: Mapping[str, ProbeResult],
        settings: ClusterSettings,
        failures: Mapping[str, int],
        known_primary: str | None,
    ):
        self.inventory = list(inventory)
        self.settings = settings
        self.known_primary = known_primary
        self.probes = {s.address: probes.get(s.address) for s in self.inventory}
        self.up = {a: p for a, p in self.probes.items() if p is not None and p.outcome == OK}
        self.failures = {s.address: self._failure_count(s.address, failures) for s in self.inventory}
        self.findings: dict[str, FindingData] = {}
        self._by_normalized = {normalize_address(s.address): s.address for s in self.inventory}
        self._by_server_id = self._unique_server_ids()
        self.channels = {a: p.channel for a, p in self.up.items() if p.channel is not None}
        # resolved inventory address of each channel's source, or None when it is not a cluster server
        self.sources = {a: self._resolve(ch) for a, ch in self.channels.items()}
        self.followers = Counter(src for a, src in self.sources.items() if src is not None and src != a)
        self.primary: str | None = None
        self.states: dict[str, str] = {}
        self.writable_roots: set[str] = set()

    # --- small readers ---

    def _failure_count(self, address: str, failures: Mapping[str, int]) -> int:
        count = failures.get(address, 0)
        probe = self.probes.get(address)
        if probe is not None and probe.outcome not in ALIVE_OUTCOMES:
            count = max(count, 1)  # this probe failed even if the caller has not counted it yet
        return count

    def _unique_server_ids(self) -> dict[int, str]:
        seen = Counter(p.server_id for p in self.up.values() if p.server_id is not None)
        return {
            p.server_id: a for a, p in self.up.items() if p.server_id is not None and seen[p.server_id] == 1
        }

    def _resolve(self, channel: ReplicationChannel) -> str | None:
        source = source_address(channel)
        if source in self._by_normalized:
            return self._by_normalized[source]
        if channel.source_host.lower() == "localhost":
            local = source.replace("localhost", "127.0.0.1", 1)
            if local in self._by_normalized:
                return self._by_normalized[local]
        if channel.source_server_id is not None:
            return self._by_server_id.get(channel.source_server_id)
        return None

    def _writable(self, address: str) -> bool:
        probe = self.up.get(address)
        return probe is not None and probe.read_only is False

    def _replicates_in_cluster(self, address: str) -> bool:
        source = self.sources.get(address)
        return source is not None and source != address

    def _base_state(self, address: str) -> str:
        probe = self.probes.get(address)
        count = self.failures[address]
        if probe is None:
            if count == 0:
                return c.STATE_UNKNOWN
        elif probe.outcome == OK:
            return c.STATE_UP
        elif probe.outcome == AUTH_FAILED:
            return c.STATE_AUTH_FAILED
        elif probe.outcome == ERROR_REPLY:
            return c.STATE_ERROR_REPLY
        return c.STATE_DOWN if count >= self.settings.failcount else c.STATE_SUSPECT

    def _add(self, code: str, message: str, server: str | None = None, **details: Any) -> None:
        finding = FindingData(code, c.FINDING_SEVERITY[code], message, server, details)
        self.findings.setdefault(finding.key, finding)  # the first reason given for a (code, server) wins

    # --- the primary ---

    def _choose_primary(self) -> str | None:
        order = {s.address: i for i, s in enumerate(self.inventory)}
        fenced = {s.address for s in self.inventory if s.fenced}
        candidates = [
            s.address
            for s in self.inventory
            if not self._replicates_in_cluster(s.address) or self._writable(s.address)
        ]
        if not candidates:
            return None

        def rank(address: str) -> tuple:
            return (
                self.followers[address],
                address not in fenced,
                self._writable(address),
                address == self.known_primary,
                address in self.up,
                -order[address],
            )

        best = max(candidates, key=rank)
        if (
            self.followers[best]
            or self._writable(best)
            or best == self.known_primary
            or len(self.inventory) == 1
        ):
            return best
        return None

    # --- run ---

    def run(self, now: float | datetime | None) -> Topology:
        primary = self._choose_primary()
        states = {s.address: self._base_state(s.address) for s in self.inventory}
        receiving_from_primary = [
            a
            for a, src in self.sources.items()
            if primary is not None and src == primary and a != primary and channel_receiving(self.channels[a])
        ]
        if primary is not None and states[primary] == c.STATE_DOWN and receiving_from_primary:
            states[primary] = c.STATE_UNREACHABLE
        self.primary, self.states = primary, states

        self._cluster_findings()
        for server in self.inventory:
            if server.address == primary:
                self._primary_findings(server, receiving_from_primary)
            else:
                self._other_findings(server)
        for server in self.inventory:
            if server.address in self.up and not server.maintenance:
                self._settings_findings(server.address)

        views = tuple(self._view(s) for s in self.inventory)
        edges = tuple(
            (a, src if src is not None else source_address(self.channels[a]))
            for a, src in self.sources.items()
        )
        return Topology(
            primary=primary,
            servers=views,
            findings=tuple(self.findings.values()),
            replication_edges=edges,
            primary_server_id=self._primary_server_id(),
            observed_at=now,
        )

    def _primary_server_id(self) -> int | None:
        if self.primary is None:
            return None
        probe = self.up.get(self.primary)
        if probe is not None and probe.server_id is not None:
            return probe.server_id
        ids = {self.channels[a].source_server_id for a, src in self.sources.items() if src == self.primary}
        ids.discard(None)
        return ids.pop() if len(ids) == 1 else None

    def _role(self, address: str) -> str:
        if address == self.primary:
            return c.ROLE_PRIMARY
        if address not in self.up:
            return c.ROLE_UNKNOWN
        if address in self.channels:
            return c.ROLE_RELAY if self.followers[address] else c.ROLE_REPLICA
        return c.ROLE_ORPHAN

    def _view(self, server: InventoryServer) -> ServerView:
        probe = self.up.get(server.address)
        channel = self.channels.get(server.address)
        replication = None
        if channel is not None:
            source = self.sources[server.address]
            replication = {
                "source": source if source is not None else source_address(channel),
                "io_running": channel.io_running,
                "sql_running": "Yes" if channel.sql_running else "No",
                "seconds_behind": channel.seconds_behind,
                "sql_delay": channel.sql_delay,
            }
        position = None
        if probe is not None:
            position = probe.gtid_executed if probe.flavour == "mysql" else probe.gtid_current_pos
        return ServerView(
            id=server.id,
            address=server.address,
            role=self._role(server.address),
            state=self.states[server.address],
            read_only=probe.read_only if probe else None,
            gtid_current_pos=position,
            replication=replication,
            lag=effective_lag(channel) if channel is not None else None,
            maintenance=server.maintenance,
            fenced=server.fenced,
            quarantined=server.quarantined,
            failures=self.failures[server.address],
            server_id=probe.server_id if probe else None,
            flavour=probe.flavour if probe else "",
            version=probe.version if probe else "",
        )

    # --- findings ---

    def _cluster_findings(self) -> None:
        writable_roots = [a for a in self.up if self._writable(a) and not self._replicates_in_cluster(a)]
        if len(writable_roots) > 1:
            others = [a for a in writable_roots if a != self.primary]
            self._add(
                c.TWO_WRITABLE_PRIMARIES,
                f"{len(writable_roots)} servers accept writes as primaries: {', '.join(writable_roots)}. "
                f"Applications may be writing to both. Set read_only=ON on {', '.join(others)} "
                "and compare their GTIDs before anything else.",
                servers=writable_roots,
                primary=self.primary,
            )
        self.writable_roots = set(writable_roots)
        if self.primary is None:
            self._add(
                c.NO_PRIMARY,
                "No primary: no server is writable and no replica points at a common source. "
                "Make the intended primary writable and point the others at it, or run a failover.",
                states={a: self.states[a] for a in self.states},
            )
            return
        replicas = [a for a, src in self.sources.items() if src == self.primary and a != self.primary]
        if not replicas:
            if len(self.inventory) == 1:
                message = (
                    f"{self.primary} is a one-server cluster: there is no replica to fail over to. "
                    "Add a replica to make it highly available."
                )
            else:
                message = (
                    f"No reachable server replicates from the primary {self.primary}: there is no "
                    "replica to fail over to. Repair or repoint the replicas."
                )
            self._add(c.NO_REPLICA, message, servers=len(self.inventory))
        versions = {a: p.version for a, p in self.up.items() if p.version}
        numbers = {f"{self.up[a].flavour} {_version_number(v)}".strip() for a, v in versions.items()}
        if len(numbers) > 1:
            self._add(
                c.VERSION_MISMATCH,
                f"Servers run different versions ({', '.join(sorted(numbers))}). Replicas should run the "
                "primary's version or newer; finish the upgrade so any replica can become primary.",
                versions=versions,
            )

    def _primary_findings(self, server: InventoryServer, receiving: list[str]) -> None:
        address = server.address
        state = self.states[address]
        probe = self.probes.get(address)
        failed = self.failures[address]
        outcome = f"{probe.outcome}: {probe.error}".rstrip(": ") if probe is not None else "not probed"
        if server.maintenance:
            self._add(
                c.SERVER_MAINTENANCE,
                f"Primary {address} is in maintenance: automatic failover is "
                "held back while it is. Turn maintenance off when the work is done.",
                address,
            )
        if state == c.STATE_SUSPECT:
            self._add(
                c.PRIMARY_SUSPECT,
                f"Primary {address} failed {failed} of {self.settings.failcount} "
                f"probes ({outcome}); dbpilot is re-probing it.",
                address,
                failures=failed,
                outcome=probe.outcome if probe else None,
                receiving=receiving,
            )
        elif state == c.STATE_UNREACHABLE:
            self._add(
                c.PRIMARY_UNREACHABLE,
                f"dbpilot cannot reach primary {address} ({failed} failed probes, "
                f"{outcome}) but {', '.join(receiving)} still receive(s) from it: only the control plane "
                "lost it, so there is no failover. Check the network between dbpilot and the primary.",
                address,
                failures=failed,
                receiving=receiving,
            )
        elif state == c.STATE_DOWN:
            self._add(
                c.PRIMARY_DOWN,
                f"Primary {address} is down: {failed} consecutive failed probes "
                f"({outcome}) and no reachable replica receives from it. With failover_mode automatic "
                "dbpilot fails over once the replicas confirm; otherwise start a failover.",
                address,
                failures=failed,
                outcome=probe.outcome if probe else None,
            )
        elif state == c.STATE_AUTH_FAILED:
            self._auth_failed(address)
        elif state == c.STATE_ERROR_REPLY:
            self._error_reply(address, primary=True)
        if state != c.STATE_UP:
            return
        primary_probe = self.up[address]
        if primary_probe.read_only:
            self._add(
                c.PRIMARY_READ_ONLY,
                f"Primary {address} is read-only: applications cannot write. "
                "Set read_only=OFF on it if it should take writes, or run a switchover.",
                address,
            )
        channel = self.channels.get(address)
        if channel is not None:
            self._add(
                c.PRIMARY_HAS_SOURCE,
                f"Primary {address} still has replication configured from "
                f"{source_address(channel)}: run STOP SLAVE; RESET SLAVE ALL on it so it cannot apply "
                "another server's writes.",
                address,
                source=source_address(channel),
                io_running=channel.io_running,
            )
        self._semi_sync_primary(address, primary_probe)

    def _semi_sync_primary(self, address: str, probe: ProbeResult) -> None:
        if self.settings.semi_sync and probe.semi_sync_master_enabled is False:
            self._add(
                c.SEMI_SYNC_OFF,
                f"Semi-sync is expected but off on primary {address}: commits are "
                "acknowledged before any replica has them. Set rpl_semi_sync_master_enabled=ON.",
                address,
            )
        elif probe.semi_sync_master_enabled and probe.semi_sync_master_status is False:
            self._add(
                c.SEMI_SYNC_INACTIVE,
                f"Semi-sync is enabled on primary {address} but inactive: it fell "
                "back to asynchronous replication (no replica acknowledged within the timeout), so a "
                "failover now can lose acknowledged writes. Check the semi-sync replicas.",
                address,
                clients=probe.semi_sync_master_clients,
            )
        wants_semi_sync = self.settings.semi_sync or probe.semi_sync_master_enabled
        wait_point = (probe.semi_sync_wait_point or "").upper()
        if wants_semi_sync and wait_point and wait_point != "AFTER_SYNC":
            self._add(
                c.SEMI_SYNC_WAIT_POINT,
                f"Primary {address} runs rpl_semi_sync_master_wait_point="
                f"{wait_point}: other sessions can read a transaction no replica has yet. "
                "Set it to AFTER_SYNC.",
                address,
                wait_point=wait_point,
            )

    def _error_reply(self, address: str, *, primary: bool) -> None:
        probe = self.probes.get(address)
        errno = probe.errno if probe is not None else None
        error = probe.error if probe is not None else ""
        consequence = (
            "it is alive, so this is no reason to fail over (no failover); applications are "
            "likely refused too. "
            if primary
            else "it is alive. "
        )
        self._add(
            c.SERVER_ERROR_REPLY,
            f"{address} answers dbpilot with an error ({error}): {consequence}"
            "Raise max_connections or the user's limits, or find what holds the connections.",
            address,
            errno=errno,
        )

    def _auth_failed(self, address: str) -> None:
        self._add(
            c.AUTH_FAILED,
            f"{address} refuses dbpilot's credentials (access denied): update the "
            "cluster's credentials or the user's grants on that server.",
            address,
        )

    def _other_findings(self, server: InventoryServer) -> None:
        address = server.address
        state = self.states[address]
        probe = self.up.get(address)
        if server.maintenance:
            self._add(
                c.SERVER_MAINTENANCE,
                f"{address} is in maintenance: it is never elected and its "
                "replication health is not reported. Turn maintenance off when the work is done.",
                address,
            )
        if server.quarantined:
            self._add(
                c.SERVER_QUARANTINED,
                f"{address} is quarantined: it holds transactions the cluster "
                "lacks and will not rejoin by itself. Rebuild it from the primary, or recover those "
                "transactions first.",
                address,
            )
        if server.maintenance:
            pass  # expected to be stopped or rebuilt: reachability is not news
        elif state == c.STATE_AUTH_FAILED:
            self._auth_failed(address)
        elif state == c.STATE_ERROR_REPLY:
            self._error_reply(address, primary=False)
        elif state in (c.STATE_SUSPECT, c.STATE_DOWN):
            probe_failed = self.probes.get(address)
            outcome = probe_failed.outcome if probe_failed else "not probed"
            self._add(
                c.REPLICA_UNREACHABLE,
                f"{address} is {state}: {self.failures[address]} consecutive "
                f"failed probes ({outcome}). It cannot be failed over to; check that the server runs "
                "and that dbpilot can reach it.",
                address,
                state=state,
                failures=self.failures[address],
                outcome=outcome,
            )
        if probe is None:
            return
        self._safety_findings(server, probe)
        if server.maintenance:
            return
        channel = self.channels.get(address)
        if channel is None:
            if not server.quarantined:
                target = f"a replica of {self.primary}" if self.primary else "a replica of the primary"
                self._add(
                    c.SERVER_NOT_REPLICATING,
                    f"{address} is not the primary and replicates from nothing:"
                    f" make it {target} (CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos).",
                    address,
                )
        else:
            self._channel_findings(address, channel)
        if self.settings.semi_sync and probe.semi_sync_slave_enabled is False:
            self._add(
                c.SEMI_SYNC_OFF,
                f"Semi-sync is expected but off on replica {address}: it never "
                "acknowledges commits. Set rpl_semi_sync_slave_enabled=ON and restart its IO thread.",
                address,
            )

    def _safety_findings(self, server: InventoryServer, probe: ProbeResult) -> None:
        """Findings reported even for servers in maintenance: they can lose or diverge data."""
        address = server.address
        if probe.read_only is False:
            if server.fenced:
                self._add(
                    c.FENCED_SERVER_WRITABLE,
                    f"{address} was demoted or failed over away from, yet it "
                    "is writable: set read_only=ON on it now (dbpilot fences it at the next tick).",
                    address,
                )
            if self.settings.replicas_read_only and address not in self.writable_roots:
                self._add(
                    c.REPLICA_NOT_READ_ONLY,
                    f"{address} is not the primary but is writable: writes to it "
                    "become errant transactions. Set read_only=ON on it.",
                    address,
                )
        primary_probe = self.up.get(self.primary) if self.primary else None
        if primary_probe is None:
            return
        try:
            errant = errant_gtids(probe, primary_probe)
            purged = purged_transactions_needed(probe, primary_probe)
        except GtidError as exc:
            self._add(
                c.GTID_UNREADABLE,
                f"The GTIDs of {address} or of the primary {self.primary} cannot be "
                f"read ({exc}): errant and purged transactions cannot be checked. Report this to the "
                "dbpilot operators with the values shown.",
                address,
                error=str(exc),
            )
            return
        if errant:
            self._add(
                c.ERRANT_GTID,
                f"{address} has transactions the primary {self.primary} never had: "
                f"{', '.join(errant)}. It cannot be promoted safely and a replica of it may break; "
                "remove them (or rebuild the server) after checking what they changed.",
                address,
                gtids=errant,
            )
        if purged and not server.maintenance:
            self._add(
                c.BINLOG_PURGED_NEEDED,
                f"{address} still needs transactions {purged} that the primary "
                f"{self.primary} has already purged from its binary logs: it cannot catch up by "
                "replication. Rebuild it from a backup or a clone of a current server.",
                address,
                missing=purged,
            )

    def _channel_findings(self, address: str, channel: ReplicationChannel) -> None:
        source = self.sources[address]
        if self.primary is not None and source != self.primary:
            named = source or source_address(channel)
            where = "a server outside this cluster" if source is None else "not the primary"
            self._add(
                c.REPLICA_WRONG_SOURCE,
                f"{address} replicates from {named}, {where}: repoint it to "
                f"{self.primary} (CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos).",
                address,
                source=named,
                primary=self.primary,
            )
        primary_failing = source == self.primary and self.states.get(self.primary or "") != c.STATE_UP
        if channel.io_running != "Yes" and not primary_failing:
            error = (
                f" Last IO error {channel.last_io_errno}: {channel.last_io_error}"
                if channel.last_io_errno
                else ""
            )
            self._add(
                c.REPLICA_IO_STOPPED,
                f"The IO thread of {address} is {channel.io_running}: it receives "
                f"nothing from {source or source_address(channel)}.{error} Fix the cause and run START "
                "SLAVE.",
                address,
                io_running=channel.io_running,
                last_io_errno=channel.last_io_errno,
                last_io_error=channel.last_io_error,
            )
        elif channel.io_running == "Yes" and heartbeat_stale(channel) and not primary_failing:
            self._add(
                c.REPLICA_NOT_RECEIVING,
                f"{address} says its IO thread runs but has received nothing "
                f"for {channel.last_heartbeat_age_seconds:.0f}s (heartbeat period "
                f"{channel.heartbeat_period:g}s): the connection to its source is stuck. Check the "
                "network between them.",
                address,
                age_seconds=channel.last_heartbeat_age_seconds,
            )
        if not channel.sql_running:
            error = (
                f" Last SQL error {channel.last_sql_errno}: {channel.last_sql_error}"
                if channel.last_sql_errno
                else ""
            )
            self._add(
                c.REPLICA_SQL_STOPPED,
                f"The SQL thread of {address} is stopped: it applies nothing."
                f"{error} Fix the cause and run START SLAVE.",
                address,
                last_sql_errno=channel.last_sql_errno,
                last_sql_error=channel.last_sql_error,
            )
        lag = effective_lag(channel)
        if lag is not None and lag > self.settings.max_replica_delay_seconds:
            delay = f" beyond its intended MASTER_DELAY of {channel.sql_delay}s" if channel.sql_delay else ""
            self._add(
                c.REPLICA_LAGGING,
                f"{address} is {lag:.0f}s behind its source{delay} (limit "
                f"max_replica_delay_seconds={self.settings.max_replica_delay_seconds}): it is not "
                "electable until it catches up.",
                address,
                lag=lag,
                seconds_behind=channel.seconds_behind,
                sql_delay=channel.sql_delay,
            )
        if channel.using_gtid.lower() == "no":
            self._add(
                c.GTID_NOT_USED,
                f"{address} replicates by binlog file and position, not by GTID: "
                "failover cannot repoint it safely. Run CHANGE MASTER TO MASTER_USE_GTID=slave_pos "
                "(MySQL: SOURCE_AUTO_POSITION=1).",
                address,
            )

    def _settings_findings(self, address: str) -> None:
        probe = self.up[address]
        if probe.log_bin is False:
            self._add(
                c.LOG_BIN_OFF,
                f"Binary logging is off on {address}: it cannot be a primary, and a "
                "primary without it cannot have replicas. Enable log_bin (needs a restart).",
                address,
            )
        if probe.log_slave_updates is False and len(self.inventory) > 1:
            self._add(
                c.LOG_SLAVE_UPDATES_OFF,
                f"log_slave_updates is off on {address}: its binary log lacks "
                "replicated transactions, so after a promotion the other replicas cannot catch up from "
                "it. Enable log_slave_updates.",
                address,
            )
        fmt = (probe.binlog_format or "").upper()
        if probe.log_bin is not False and fmt and fmt != "ROW":
            self._add(
                c.BINLOG_FORMAT_NOT_ROW,
                f"{address} logs in binlog_format={fmt}: statement-based "
                "replication can diverge replicas. Set binlog_format=ROW.",
                address,
                binlog_format=fmt,
            )
        if probe.flavour == "mysql":
            if probe.gtid_mode is not None and probe.gtid_mode.upper() != "ON":
                self._add(
                    c.GTID_NOT_USED,
                    f"gtid_mode is {probe.gtid_mode} on {address}: failover by GTID "
                    "needs gtid_mode=ON and enforce_gtid_consistency=ON.",
                    address,
                    gtid_mode=probe.gtid_mode,
                )
        elif probe.gtid_strict_mode is False:
            self._add(
                c.GTID_STRICT_MODE_OFF,
                f"gtid_strict_mode is off on {address}: an out-of-order or "
                "duplicate GTID is accepted silently and errant transactions hide in gtid_current_pos. "
                "Set gtid_strict_mode=ON.",
                address,
            )
