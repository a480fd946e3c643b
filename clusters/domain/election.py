"""Candidate election for switchover and failover, with the decision table kept in the job result.

Rules, in the order a candidate is checked (the first failing rule is its `reason`, every one is a flag):
unreachable, in maintenance, quarantined, in `ignored_servers` (unless forced), not a direct replica of
the primary, log_bin off, errant transactions, replication broken by an error (a SQL error; for a
switchover also an IO error, and with `check_replication_state` threads that do not run), lag over
`max_replica_delay_seconds`, a delayed replica (MASTER_DELAY: it is behind on purpose), not semi-sync
when `candidate_requires_semi_sync`, an unreadable GTID position.

Among electable candidates the most up-to-date wins, compared per domain (MariaDB) or per source uuid
(MySQL) against the union of all electable positions: fewest missing transactions first, then
`preferred_servers`, then the smallest lag, then inventory order. For a failover the position is what
the candidate will hold once it has applied its whole relay log (received ∪ applied), since the job lets
it do that before promoting. `catch_up_from` lists the other replicas that hold transactions the winner
lacks, so the job can catch it up from them instead of losing them silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from clusters.domain.constants import STATE_UP
from clusters.domain.detection import normalize_address
from clusters.domain.gtid import (
    GtidError,
    MariadbBinlogState,
    MariadbGtidPos,
    MysqlGtidSet,
    errant_among_survivors,
    errant_gtids,
)
from clusters.domain.probe import ProbeResult
from clusters.domain.settings import ClusterSettings
from clusters.domain.topology import Topology, effective_lag

Position = MariadbGtidPos | MysqlGtidSet
LAG_UNKNOWN = "lag_unknown"
STALE_SOURCE = "stale_source"
# Flags that keep a replica from being chosen by dbpilot, but not from being named by an operator
# (a manual failover's `candidate`): what it may miss is unknown, not known to be wrong.
OPERATOR_MAY_OVERRIDE = frozenset({LAG_UNKNOWN, STALE_SOURCE})


@dataclass(frozen=True)
class Candidate:
    """A replica as election sees it. `gtid_current_pos` is gtid_executed on MySQL; `gtid_io_pos` is
    what the IO thread received (Retrieved_Gtid_Set on MySQL)."""

    address: str
    flavour: str = "mariadb"
    reachable: bool = True
    direct_replica: bool = True  # replicates from the (old) primary
    io_running: str = "Yes"
    sql_running: bool = True
    last_io_errno: int = 0
    last_io_error: str = ""
    last_sql_errno: int = 0
    last_sql_error: str = ""
    lag: float | None = None  # beyond any intended MASTER_DELAY; None when unknown
    sql_delay: int = 0
    gtid_current_pos: str = ""
    gtid_io_pos: str = ""
    gtid_binlog_state: str | None = None
    log_bin: bool | None = True
    log_slave_updates: bool | None = True
    semi_sync_enabled: bool | None = None  # rpl_semi_sync_slave_enabled
    semi_sync_active: bool | None = None  # Rpl_semi_sync_slave_status
    maintenance: bool = False
    quarantined: bool = False
    errant: tuple[str, ...] = ()
    fenced: bool = False
    # Seconds between its last receipt from the primary and the incident's start (None: unknown).
    received_before_incident: float | None = None

    @classmethod
    def from_probe(
        cls,
        probe: ProbeResult | None,
        address: str,
        *,
        direct_replica: bool,
        maintenance: bool = False,
        quarantined: bool = False,
        errant: Iterable[str] = (),
        lag: float | None = None,
        fenced: bool = False,
        received_before_incident: float | None = None,
    ) -> Candidate:
        """Build from the latest probe; `lag` overrides the probe's (e.g. the last one known before the
        primary died, when Seconds_Behind_Master became NULL)."""
        if probe is None or not probe.reachable:
            return cls(
                address,
                reachable=False,
                direct_replica=direct_replica,
                maintenance=maintenance,
                quarantined=quarantined,
                errant=tuple(errant),
                fenced=fenced,
                received_before_incident=received_before_incident,
            )
        channel = probe.channel
        mysql = probe.flavour == "mysql"
        common: dict[str, Any] = dict(
            flavour=probe.flavour or "mariadb",
            direct_replica=direct_replica and channel is not None,
            gtid_current_pos=(probe.gtid_executed if mysql else probe.gtid_current_pos) or "",
            gtid_binlog_state=probe.gtid_binlog_state,
            log_bin=probe.log_bin,
            log_slave_updates=probe.log_slave_updates,
            semi_sync_enabled=probe.semi_sync_slave_enabled,
            semi_sync_active=probe.semi_sync_slave_status,
            maintenance=maintenance,
            quarantined=quarantined,
            errant=tuple(errant),
            fenced=fenced,
            received_before_incident=received_before_incident,
        )
        if channel is None:
            return cls(address, io_running="No", sql_running=False, lag=lag, **common)
        return cls(
            address,
            io_running=channel.io_running,
            sql_running=channel.sql_running,
            last_io_errno=channel.last_io_errno,
            last_io_error=channel.last_io_error,
            last_sql_errno=channel.last_sql_errno,
            last_sql_error=channel.last_sql_error,
            lag=lag if lag is not None else effective_lag(channel),
            sql_delay=channel.sql_delay,
            gtid_io_pos=channel.gtid_io_pos,
            **common,
        )


@dataclass(frozen=True)
class CatchUpSource:
    """Another replica holding transactions the winner lacks."""

    server: str
    missing: str  # the transactions, as a GTID set (MySQL) or domain:first-last (MariaDB)
    count: int
    electable: bool
    errant: bool  # it also holds errant transactions: copying from it copies those too


@dataclass(frozen=True)
class Election:
    """The outcome: the winner (or None and why) and one decision-table row per candidate."""

    winner: str | None
    reason: str
    table: list[dict[str, Any]]
    catch_up_from: tuple[CatchUpSource, ...] = ()
    for_failover: bool = False
    requested: str | None = None

    @property
    def winner_lacks_transactions(self) -> bool:
        return bool(self.catch_up_from)

    def row(self, server: str) -> dict[str, Any] | None:
        return next((r for r in self.table if r["server"] == server), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "winner": self.winner,
            "reason": self.reason,
            "table": self.table,
            "catch_up_from": [asdict(s) for s in self.catch_up_from],
            "for_failover": self.for_failover,
            "requested": self.requested,
        }


def _parse_position(candidate: Candidate, text: str) -> Position:
    if candidate.flavour == "mysql":
        return MysqlGtidSet.parse(text)
    return MariadbGtidPos.parse(text)


def position_of(candidate: Candidate, *, for_failover: bool) -> Position:
    """Applied position, plus the received one for a failover. Raises GtidError when unreadable."""
    position = _parse_position(candidate, candidate.gtid_current_pos)
    if for_failover and candidate.gtid_io_pos:
        position = position.union(_parse_position(candidate, candidate.gtid_io_pos))  # type: ignore[arg-type]
    return position


def clean_position_of(candidate: Candidate, *, for_failover: bool) -> Position:
    """The position without the candidate's errant transactions (what it holds of the real history)."""
    position = position_of(candidate, for_failover=for_failover)
    if not candidate.errant:
        return position
    if isinstance(position, MysqlGtidSet):
        errant = MysqlGtidSet.parse(",".join(candidate.errant))
        return position.subtract(errant)
    # MariaDB: the binlog state without the errant entries says how far the real history goes.
    if candidate.gtid_binlog_state is None:
        return MariadbGtidPos()
    state = MariadbBinlogState.parse(candidate.gtid_binlog_state)
    clean: MariadbGtidPos = state.without(
        MariadbBinlogState.parse(",".join(candidate.errant)).gtids
    ).position()
    if for_failover and candidate.gtid_io_pos:
        clean = clean.union(MariadbGtidPos.parse(candidate.gtid_io_pos))
    return clean


def _listed(address: str, addresses: Iterable[str]) -> bool:
    """Whether a settings list names this server (addresses compared in canonical form)."""
    return normalize_address(address) in {normalize_address(a) for a in addresses}


def _semi_sync(candidate: Candidate, for_failover: bool) -> bool:
    # After the primary died the slave status is OFF everywhere: a failover asks whether it was configured.
    if for_failover or candidate.semi_sync_active is None:
        return bool(candidate.semi_sync_enabled)
    return bool(candidate.semi_sync_active)


def _flags(
    candidate: Candidate, settings: ClusterSettings, *, for_failover: bool, force: bool
) -> list[tuple[str, str]]:
    """(flag, reason) for every rule the candidate fails, in rule order."""
    out: list[tuple[str, str]] = []
    if not candidate.reachable:
        out.append(("unreachable", "not reachable"))
    if candidate.maintenance:
        out.append(("maintenance", "in maintenance"))
    if candidate.quarantined:
        out.append(("quarantined", "quarantined: it holds transactions the cluster lacks"))
    if candidate.fenced:
        out.append(("fenced", "fenced: a failover left it behind and it has not rejoined yet"))
    if _listed(candidate.address, settings.ignored_servers) and not force:
        out.append(("ignored", "listed in ignored_servers"))
    if not candidate.reachable:
        return out
    if not candidate.direct_replica:
        out.append(("not_replica", "not a direct replica of the primary"))
    if candidate.log_bin is False:
        out.append(("no_log_bin", "log_bin is off: it cannot serve as a primary"))
    if candidate.errant:
        out.append(("errant", f"has errant transactions: {', '.join(candidate.errant)}"))
    if candidate.last_sql_errno:
        out.append(
            (
                "replication_error",
                f"replication broken: SQL error {candidate.last_sql_errno}: {candidate.last_sql_error}",
            )
        )
    if not for_failover:
        if candidate.last_io_errno:
            out.append(
                (
                    "replication_error",
                    f"replication broken: IO error {candidate.last_io_errno}: {candidate.last_io_error}",
                )
            )
        elif settings.check_replication_state and (
            candidate.io_running != "Yes" or not candidate.sql_running
        ):
            sql = "Yes" if candidate.sql_running else "No"
            out.append(
                ("replication_stopped", f"replication not running (IO {candidate.io_running}, SQL {sql})")
            )
    if candidate.lag is not None and candidate.lag > settings.max_replica_delay_seconds:
        out.append(
            (
                "lagging",
                f"lagging {candidate.lag:.0f}s (max_replica_delay_seconds "
                f"{settings.max_replica_delay_seconds})",
            )
        )
    if for_failover and candidate.lag is None:
        out.append(
            (
                LAG_UNKNOWN,
                "lag unknown: Seconds_Behind_Master was NULL at the last healthy ticks (IO "
                "thread stopped or broken), so it may miss any amount; name it as the "
                "candidate of a manual failover to promote it anyway",
            )
        )
    received = candidate.received_before_incident
    if for_failover and received is not None and received > settings.max_replica_delay_seconds:
        out.append(
            (
                STALE_SOURCE,
                f"it stopped receiving from the primary {received:.0f}s before the incident "
                f"(more than max_replica_delay_seconds {settings.max_replica_delay_seconds}); "
                "name it as the candidate of a manual failover to promote it anyway",
            )
        )
    if candidate.sql_delay > 0:
        out.append(
            ("delayed", f"delayed replica (MASTER_DELAY={candidate.sql_delay}s): it is behind on purpose")
        )
    if settings.candidate_requires_semi_sync and not _semi_sync(candidate, for_failover):
        out.append(("not_semi_sync", "not a semi-sync replica (candidate_requires_semi_sync)"))
    return out


def elect(
    candidates: Sequence[Candidate],
    settings: ClusterSettings,
    requested: str | None = None,
    for_failover: bool = False,
    *,
    force: bool = False,
) -> Election:
    """Choose the replica to promote. `requested` must itself be electable; `force` allows ignored servers."""
    order = {cand.address: i for i, cand in enumerate(candidates)}

    def preferred(address: str) -> bool:
        return _listed(address, settings.preferred_servers)

    rows: dict[str, dict[str, Any]] = {}
    positions: dict[str, Position] = {}
    electable: list[Candidate] = []
    for cand in candidates:
        flags = _flags(cand, settings, for_failover=for_failover, force=force)
        position_text = ""
        if cand.reachable:
            try:
                position = position_of(cand, for_failover=for_failover)
                positions[cand.address] = clean_position_of(cand, for_failover=for_failover)
                position_text = str(position)
            except GtidError as exc:
                flags.append(("gtid_unreadable", f"GTID position unreadable: {exc}"))
        extra = []
        if cand.reachable and not cand.sql_running and not any(f == "replication_stopped" for f, _ in flags):
            extra.append(
                "sql_stopped"
            )  # a failover candidate gets its SQL thread started to apply its relay log
        if cand.lag is None and cand.reachable and not any(f == LAG_UNKNOWN for f, _ in flags):
            extra.append(LAG_UNKNOWN)
        named = requested is not None and normalize_address(cand.address) == normalize_address(requested)
        blocking_flags = [(f, why) for f, why in flags if not (named and f in OPERATOR_MAY_OVERRIDE)]
        rows[cand.address] = {
            "server": cand.address,
            "gtid_pos": position_text,
            "lag": cand.lag,
            "received_before_incident": cand.received_before_incident,
            "flags": [f for f, _ in flags] + extra + (["preferred"] if preferred(cand.address) else []),
            "electable": not blocking_flags,
            "reason": blocking_flags[0][1] if blocking_flags else "",
            "behind": None,
            "chosen": False,
        }
        if not blocking_flags:
            electable.append(cand)

    def done(winner: str | None, reason: str, catch_up: tuple[CatchUpSource, ...] = ()) -> Election:
        if winner is not None:
            rows[winner]["chosen"] = True
            rows[winner]["reason"] = reason
        return Election(winner, reason, list(rows.values()), catch_up, for_failover, requested)

    reference = _union([positions[c.address] for c in electable])
    for cand in electable:
        behind = positions[cand.address].transactions_behind(reference) if reference is not None else 0  # type: ignore[arg-type]
        rows[cand.address]["behind"] = behind
        rows[cand.address]["reason"] = (
            "electable, most up to date"
            if behind == 0
            else f"electable, {behind} transaction(s) behind the best"
        )

    if requested is not None:
        requested = next((a for a in rows if normalize_address(a) == normalize_address(requested)), requested)
        if requested not in rows:
            return done(None, f"{requested} is not a replica of this cluster")
        if not rows[requested]["electable"]:
            return done(
                None, f"the requested candidate {requested} is not electable: {rows[requested]['reason']}"
            )
        return done(
            requested, "chosen: the requested candidate", _catch_up(requested, candidates, positions, rows)
        )
    if not electable:
        return done(
            None,
            "no electable replica: " + "; ".join(f"{r['server']}: {r['reason']}" for r in rows.values())
            if rows
            else "no replica to elect",
        )

    def rank(cand: Candidate) -> tuple:
        lag = cand.lag if cand.lag is not None else float("inf")
        return (rows[cand.address]["behind"], not preferred(cand.address), lag, order[cand.address])

    winner = min(electable, key=rank).address
    behind = rows[winner]["behind"]
    why = "chosen: most up to date" if behind == 0 else f"chosen: fewest missing transactions ({behind})"
    if preferred(winner):
        why += ", preferred"
    return done(winner, why, _catch_up(winner, candidates, positions, rows))


def _union(positions: Sequence[Position]) -> Position | None:
    if not positions:
        return None
    total = positions[0]
    for position in positions[1:]:
        total = total.union(position)  # type: ignore[arg-type]
    return total


def _catch_up(
    winner: str,
    candidates: Sequence[Candidate],
    positions: Mapping[str, Position],
    rows: Mapping[str, dict[str, Any]],
) -> tuple[CatchUpSource, ...]:
    mine = positions.get(winner)
    if mine is None:
        return ()
    sources = []
    for cand in candidates:
        theirs = positions.get(cand.address)
        if cand.address == winner or theirs is None:
            continue
        missing = theirs.subtract(mine)  # type: ignore[arg-type]
        if missing.count():
            sources.append(
                CatchUpSource(
                    cand.address,
                    str(missing),
                    missing.count(),
                    rows[cand.address]["electable"],
                    bool(cand.errant),
                )
            )
    return tuple(sorted(sources, key=lambda s: (-s.count, s.server)))


def candidates_from_topology(
    topology: Topology,
    probes: Mapping[str, ProbeResult],
    *,
    errant: Mapping[str, Sequence[str]] | None = None,
    lags: Mapping[str, float | None] | None = None,
    last_primary_state: str | None = None,
    primary_server_id: int | None = None,
    received_before_incident: Mapping[str, float] | None = None,
) -> list[Candidate]:
    """One Candidate per server other than the primary, in inventory order.

    Errant transactions come from `errant` when given (e.g. the open ERRANT_GTID findings); otherwise
    they are computed against the primary when it is up, or among the survivors when it is not
    (gtid.errant_among_survivors), which needs the dead primary's server_id: given, else the topology's
    (from the replicas' Master_Server_Id), else the server_id of the last GTIDs the replicas received.
    `lags` overrides the probed lag (the last known before a failure). `last_primary_state` is the
    cluster's GTID history (gtid.errant_among_survivors). `received_before_incident`: per replica, the
    seconds between its last receipt from the primary and the incident. A server marked fenced (a
    failover left it behind) is not electable while it is.
    """
    primary_view = topology.primary_view
    primary_probe = probes.get(topology.primary) if topology.primary else None
    primary_up = primary_view is not None and primary_view.state == STATE_UP and primary_probe is not None
    survivors = [
        probes[s.address] for s in topology.servers if s.address != topology.primary and s.address in probes
    ]
    if primary_server_id is None:
        primary_server_id = topology.primary_server_id or _last_received_server_id(survivors)
    edges = dict(topology.replication_edges)
    out = []
    for view in topology.servers:
        if view.address == topology.primary:
            continue
        probe = probes.get(view.address)
        if errant is not None:
            found: Sequence[str] | None = errant.get(view.address, ())
        elif probe is None or not probe.reachable:
            found = ()
        else:
            try:
                if primary_up:
                    found = errant_gtids(probe, primary_probe)  # type: ignore[arg-type]
                else:
                    found = errant_among_survivors(
                        probe,
                        survivors,
                        primary_server_id=primary_server_id,
                        last_primary_state=last_primary_state,
                    )
            except GtidError:
                found = None
        lag = (lags or {}).get(view.address)
        out.append(
            Candidate.from_probe(
                probe if view.state == STATE_UP else None,
                view.address,
                direct_replica=topology.primary is not None and edges.get(view.address) == topology.primary,
                maintenance=view.maintenance,
                quarantined=view.quarantined,
                errant=found or (),
                lag=lag,
                fenced=view.fenced,
                received_before_incident=(received_before_incident or {}).get(view.address),
            )
        )
    return out


def _last_received_server_id(survivors: Sequence[ProbeResult]) -> int | None:
    """The server id on the last GTIDs the replicas' IO threads received (MariaDB), when they all agree."""
    ids: set[int] = set()
    for probe in survivors:
        channel = probe.channel if probe.reachable and probe.flavour != "mysql" else None
        if channel is None or not channel.gtid_io_pos:
            continue
        try:
            ids.update(g.server_id for g in MariadbGtidPos.parse(channel.gtid_io_pos).gtids)
        except GtidError:
            continue
    return ids.pop() if len(ids) == 1 else None
