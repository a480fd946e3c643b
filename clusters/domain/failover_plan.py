"""Failover decisions as plain data: what a tick does about a failing primary, which incident it belongs to,
the re-confirmation inside the job, what the job can promise about lost writes (RPO), and what to do with
a fenced server that reappears.

Everything here is a pure function of probes, the analysed topology, settings and times, so the rules run
in microseconds under unit tests; clusters.services.failover and clusters.services.fencing read the
database and Redis, call these, and act.

Order of the rules, as a tick applies them:

1. Only a primary that is `down` (failcount failed probes) or `unreachable` concerns failover.
2. The replicas must confirm (clusters.domain.detection): otherwise the tick waits, and a primary that
   only dbpilot lost stays a finding (PRIMARY_UNREACHABLE), never a failover.
3. Every guard of an automatic failover is evaluated (none short-circuited): mode, armed, pauses, limit,
   interval, fresh observation, maintenance, an electable candidate, no errant candidate, replication
   credentials. All pass: start the failover job. Any blocks: one `refused` job per incident.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from clusters.domain import constants as c
from clusters.domain.detection import Confirmation, channel_points_at, confirm_for_topology
from clusters.domain.election import Election, candidates_from_topology, elect
from clusters.domain.gtid import GtidError, MariadbBinlogState, MariadbGtidPos, MysqlGtidSet
from clusters.domain.guards import Check, Instant, automatic_failover_checks, blocking
from clusters.domain.probe import ProbeResult
from clusters.domain.settings import ClusterSettings
from clusters.domain.topology import Topology

# A failing primary seen again within this many ticks is the same incident (a flapping primary too).
INCIDENT_GAP_TICKS = 3
# A primary down this long without the replicas confirming gets one event saying why nothing happens.
UNCONFIRMED_NOTICE_SECONDS = 5.0

CHECK_REPLICATION_CREDENTIALS = "replication_credentials"
CHECK_NO_EXTRA_GTIDS = "no_extra_gtids"

IDLE = "idle"  # the primary is fine (or there is none to speak of)
WAIT = "wait"  # failing, not confirmed by the replicas: a finding, no action
START = "start"  # confirmed, every guard passes: start the failover job
REFUSE = "refuse"  # confirmed, guards block: one refused job per incident


# --- incidents -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Incident:
    """One episode of a failing primary: from the first tick that saw it failing until it is fine again
    for longer than INCIDENT_GAP_TICKS. One refused job (and one notice) per incident, not per tick."""

    primary: str
    since: float
    last_seen: float
    notified: bool = False

    @property
    def key(self) -> str:
        return f"{self.primary}@{self.since:.3f}"

    def as_state(self) -> dict[str, Any]:
        return asdict(self)


def continue_incident(
    previous: Mapping[str, Any] | None, primary: str, now: float, tick_seconds: float
) -> Incident:
    """The incident this failing tick belongs to: the previous one when it concerns the same primary and
    was seen less than INCIDENT_GAP_TICKS ago, else a new one starting now."""
    if previous:
        try:
            same = previous.get("primary") == primary
            recent = now - float(previous["last_seen"]) <= INCIDENT_GAP_TICKS * tick_seconds
            if same and recent:
                return Incident(primary, float(previous["since"]), now, bool(previous.get("notified")))
        except (KeyError, TypeError, ValueError):
            pass  # a damaged state starts a new incident
    return Incident(primary, now, now)


# --- the tick's decision ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TickDecision:
    """What a tick does about the primary, and the evidence (kept in the job it starts or refuses)."""

    action: str
    reason: str
    checks: tuple[Check, ...] = ()
    confirmation: Confirmation | None = None
    election: Election | None = None

    @property
    def blocking(self) -> list[Check]:
        return blocking(self.checks)

    def checks_as_dicts(self) -> list[dict[str, object]]:
        return [check.as_dict() for check in self.checks]


def primary_failing(topology: Topology) -> bool:
    """The primary is down or unreachable (suspect is still being re-probed by the tick itself)."""
    view = topology.primary_view
    return view is not None and view.state in (c.STATE_DOWN, c.STATE_UNREACHABLE)


def credentials_check(has_replication_credentials: bool) -> Check:
    return Check(
        CHECK_REPLICATION_CREDENTIALS,
        has_replication_credentials,
        "replication credentials are set"
        if has_replication_credentials
        else "no replication credentials: replicas cannot be repointed; PATCH the cluster's "
        "replication_credentials",
    )


def received_before_incident(
    last_received: Mapping[str, float] | None, incident_since: float | None
) -> dict[str, float]:
    """Per replica, seconds between its last receipt from the primary and the incident's start."""
    if not last_received or incident_since is None:
        return {}
    return {a: max(0.0, incident_since - float(t)) for a, t in last_received.items()}


# IO thread states of a replica whose replication is configured and running (MariaDB's Slave_IO_Running).
_IO_RUNNING = ("Yes", "Connecting", "Preparing")


def lags_to_remember(topology: Topology, previous: Mapping[str, float] | None = None) -> dict[str, float]:
    """The replicas' lags a healthy tick leaves for a failover's election (after the primary dies,
    Seconds_Behind_Master is NULL). It is NULL for a moment too while a replica (re)connects, after a
    switchover, a rejoin or a restart: a replica whose threads both run keeps its last known lag through
    that moment, instead of turning "lag unknown" (unelectable) should the primary die then. A replica with
    its IO or SQL thread stopped loses it: its lag is unknown, as the failover rule wants (one that stopped
    receiving long ago is caught by `received_before_incident` too)."""
    lags = {s.address: s.lag for s in topology.servers if s.address != topology.primary and s.lag is not None}
    for address in reconnecting_replicas(topology):
        if previous and address in previous:
            lags[address] = previous[address]
    return lags


def reconnecting_replicas(topology: Topology) -> list[str]:
    """Replicas whose lag is NULL while both their threads run (a moment of reconnecting): the only ones
    whose last known lag is worth reading back, so a healthy tick reads it only when there are some."""
    out = []
    for server in topology.servers:
        if server.address == topology.primary or server.lag is not None:
            continue
        replication = server.replication or {}
        if replication.get("io_running") in _IO_RUNNING and replication.get("sql_running") == "Yes":
            out.append(server.address)
    return out


def failover_election(
    topology: Topology,
    probes: Mapping[str, ProbeResult],
    settings: ClusterSettings,
    *,
    lags: Mapping[str, float | None] | None = None,
    requested: str | None = None,
    last_primary_state: str | None = None,
    last_received: Mapping[str, float] | None = None,
    incident_since: float | None = None,
) -> Election:
    """The failover election: positions include what each replica received (it applies its relay log
    before promotion); lags are the last known before the failure (Seconds_Behind_Master is NULL once
    the IO thread lost its source); a replica whose lag is unknown or that stopped receiving long before
    the incident is not chosen (an operator may name it). `last_primary_state` is the cluster's GTID
    history, what errant transactions are judged against."""
    candidates = candidates_from_topology(
        topology,
        probes,
        lags=lags,
        last_primary_state=last_primary_state,
        received_before_incident=received_before_incident(last_received, incident_since),
    )
    return elect(candidates, settings, requested=requested, for_failover=True)


def decide_failover(
    *,
    topology: Topology,
    probes: Mapping[str, ProbeResult],
    settings: ClusterSettings,
    failover_armed: bool,
    platform_paused: bool,
    now: Instant,
    last_observation_at: Instant | None,
    failovers: Sequence[Instant],
    has_replication_credentials: bool,
    lags: Mapping[str, float | None] | None = None,
    last_received: Mapping[str, float] | None = None,
    incident_since: float | None = None,
    gtid_history: str | None = None,
    confirmation: Confirmation | None = None,
) -> TickDecision:
    """The decision of one tick. `failovers` are the start times of earlier automatic failovers since
    the counters were last reset; `confirmation`: the replicas' confirmation when the caller has it."""
    view = topology.primary_view
    if not primary_failing(topology):
        state = view.state if view is not None else "none"
        return TickDecision(IDLE, f"the primary is {state}")
    if confirmation is None:
        confirmation = confirm_for_topology(
            topology, probes, settings, last_received=last_received, incident_since=incident_since
        )
    if not confirmation.confirmed:
        return TickDecision(WAIT, confirmation.reason, confirmation=confirmation)
    election = failover_election(
        topology,
        probes,
        settings,
        lags=lags,
        last_primary_state=gtid_history,
        last_received=last_received,
        incident_since=incident_since,
    )
    checks = automatic_failover_checks(
        settings=settings,
        failover_armed=failover_armed,
        platform_paused=platform_paused,
        now=now,
        last_observation_at=last_observation_at,
        failovers=failovers,
        election=election,
        primary_maintenance=bool(view and view.maintenance),
        confirmation=confirmation,
    )
    checks.append(credentials_check(has_replication_credentials))
    failing = blocking(checks)
    if failing:
        reason = "automatic failover blocked: " + "; ".join(f"{ch.name}: {ch.detail}" for ch in failing)
        return TickDecision(REFUSE, reason, tuple(checks), confirmation, election)
    return TickDecision(
        START, f"{confirmation.reason}; promoting {election.winner}", tuple(checks), confirmation, election
    )


def unconfirmed_notice_due(incident: Incident, primary_state: str, now: float) -> bool:
    """Whether to write the one event saying a down primary is not failed over because the replicas do
    not confirm (an unreachable primary has its own finding, PRIMARY_UNREACHABLE)."""
    return (
        primary_state == c.STATE_DOWN
        and not incident.notified
        and now - incident.since >= UNCONFIRMED_NOTICE_SECONDS
    )


# --- inside the job --------------------------------------------------------------------------------------


def reconfirm(
    fresh: Confirmation,
    probes: Mapping[str, ProbeResult],
    *,
    tick_confirmed_age: float | None,
    settings: ClusterSettings,
) -> Check:
    """The job's own look just before it acts, from fresh probes.

    A replica's heartbeat age is measured between two probes of the same process, so a job running in
    another process sees an IO thread that says Yes with no age yet. Such a replica cannot tell; the
    tick's confirmation stands for it when that confirmation is fresh (within OBSERVATION_MAX_AGE_TICKS).
    A replica seen receiving (an age) always refuses: the primary is alive.
    """
    if fresh.confirmed:
        return Check(c.GUARD_PRIMARY_FAILURE, True, fresh.reason)
    unknown = [address for address in fresh.still_receiving if _heartbeat_age_unknown(probes.get(address))]
    fresh_enough = (
        tick_confirmed_age is not None
        and tick_confirmed_age <= c.OBSERVATION_MAX_AGE_TICKS * settings.tick_seconds
    )
    if fresh.still_receiving and len(unknown) == len(fresh.still_receiving) and fresh_enough:
        return Check(
            c.GUARD_PRIMARY_FAILURE,
            True,
            f"confirmed by the tick {tick_confirmed_age:.1f}s ago; "
            f"{', '.join(unknown)}: IO thread Yes, heartbeat age not measurable from this process",
        )
    return Check(c.GUARD_PRIMARY_FAILURE, False, fresh.reason)


def heartbeat_age_unknown(probes: Mapping[str, ProbeResult]) -> list[str]:
    """The servers whose channel says IO thread Yes with no heartbeat age measurable from this process."""
    return [address for address, probe in probes.items() if _heartbeat_age_unknown(probe)]


def _heartbeat_age_unknown(probe: ProbeResult | None) -> bool:
    channel = probe.channel if probe is not None and probe.reachable else None
    return channel is not None and channel.io_running == "Yes" and channel.last_heartbeat_age_seconds is None


# --- what the job can promise (RPO) ----------------------------------------------------------------------

GUARANTEE_NONE_LOST = "no_acknowledged_write_lost"
GUARANTEE_AT_RISK = "acknowledged_writes_at_risk"
GUARANTEE_ASYNC = "asynchronous"
# Findings on the old primary that void the semi-sync promise.
SEMI_SYNC_VOIDING = frozenset({c.SEMI_SYNC_OFF, c.SEMI_SYNC_INACTIVE, c.SEMI_SYNC_WAIT_POINT})


SEMI_SYNC_WAIT_FOREVER_MS = 4294967295  # rpl_semi_sync_master_timeout's maximum: commits never fall back


def semi_sync_observation(probe: ProbeResult | None, observed_at: float) -> dict[str, Any] | None:
    """What a healthy primary's probe says about its semi-sync (kept by the ticks, read by a failover's
    RPO statement: the state that held at the incident, not the cluster's settings). `status` comes from
    the probe's details, re-read about every 10 s (`details_age_seconds`)."""
    if probe is None or not probe.reachable or probe.semi_sync_master_enabled is None:
        return None
    return {
        "enabled": probe.semi_sync_master_enabled,
        "status": probe.semi_sync_master_status,
        "timeout_ms": probe.semi_sync_timeout_ms,
        "wait_no_slave": probe.semi_sync_wait_no_slave,
        "wait_point": probe.semi_sync_wait_point,
        "clients": probe.semi_sync_master_clients,
        "observed_at": observed_at,
        "details_age_seconds": probe.details_age_seconds,
    }


def _observed_risk(observed: Mapping[str, Any]) -> tuple[str, str] | None:
    """(guarantee, risk) from the servers' semi-sync state at the incident; None when it promises nothing
    is lost."""
    if not observed.get("enabled"):
        return GUARANTEE_ASYNC, (
            "the old primary ran without semi-sync (rpl_semi_sync_master_enabled OFF): "
            "transactions it acknowledged but had not sent are lost"
        )
    if observed.get("status") is False:
        return GUARANTEE_AT_RISK, (
            "the old primary's semi-sync had fallen back to asynchronous "
            "(Rpl_semi_sync_master_status OFF): acknowledged writes may be lost"
        )
    wait_point = (observed.get("wait_point") or "").upper()
    if wait_point and wait_point != "AFTER_SYNC":
        return GUARANTEE_AT_RISK, (
            f"the old primary ran rpl_semi_sync_master_wait_point={wait_point}: "
            "acknowledged writes may be lost"
        )
    timeout = observed.get("timeout_ms")
    if timeout is None or int(timeout) < SEMI_SYNC_WAIT_FOREVER_MS:
        shown = "unknown" if timeout is None else f"{int(timeout)} ms"
        return GUARANTEE_AT_RISK, (
            f"the old primary's semi-sync falls back to asynchronous after {shown} "
            "without an acknowledgement: commits acknowledged after such a fallback "
            "may be lost"
        )
    if observed.get("wait_no_slave") is False:
        return GUARANTEE_AT_RISK, (
            "the old primary ran rpl_semi_sync_master_wait_no_slave OFF: with no "
            "semi-sync replica connected its commits were not waiting"
        )
    return None


def rpo_statement(
    *,
    survivors_hold: str,
    settings: ClusterSettings,
    old_primary: str | None,
    primary_findings: Sequence[str] = (),
    unreachable_replicas: Sequence[str] = (),
    observed: Mapping[str, Any] | None = None,
    observed_known: bool = False,
) -> dict[str, Any]:
    """The RPO part of a failover's result.

    `survivors_hold` is the new primary's position once it holds everything the survivors had. What the
    dead primary committed beyond it is unknown until it returns: a lower bound. Semi-sync with
    AFTER_SYNC and `semi_sync_on_timeout: wait` promises that every acknowledged commit reached a replica;
    that replica's transactions are all on the new primary, so nothing acknowledged is lost, provided no
    replica that may have acknowledged is missing and the primary had not fallen back or run otherwise.
    """
    if observed_known:
        return _observed_rpo(
            survivors_hold=survivors_hold,
            settings=settings,
            old_primary=old_primary,
            primary_findings=primary_findings,
            unreachable_replicas=unreachable_replicas,
            observed=observed,
        )
    voiding = sorted(set(primary_findings) & SEMI_SYNC_VOIDING)
    base = {
        "survivors_hold": survivors_hold,
        "old_primary": old_primary,
        "lower_bound": True,
        "note": "what the old primary may have committed beyond survivors_hold is unknown until it returns; "
        "then its extra transactions, if any, are listed and it is quarantined",
        "semi_sync": settings.semi_sync,
        "semi_sync_on_timeout": settings.semi_sync_on_timeout,
    }
    if not settings.semi_sync:
        return {
            **base,
            "guarantee": GUARANTEE_ASYNC,
            "risk": "asynchronous replication: transactions the old primary acknowledged but had not sent "
            "to any replica are lost",
        }
    if settings.semi_sync_on_timeout != "wait":
        return {
            **base,
            "guarantee": GUARANTEE_AT_RISK,
            "risk": f"semi-sync falls back to asynchronous after {settings.semi_sync_timeout_ms} ms without "
            "an acknowledgement (semi_sync_on_timeout: async): commits acknowledged after such a "
            "fallback may be lost",
        }
    return _semi_sync_risk(
        base, voiding, unreachable_replicas, "none: semi-sync AFTER_SYNC with no fallback to asynchronous"
    )


def _observed_rpo(
    *,
    survivors_hold: str,
    settings: ClusterSettings,
    old_primary: str | None,
    primary_findings: Sequence[str],
    unreachable_replicas: Sequence[str],
    observed: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The RPO from the old primary's semi-sync state as the last healthy probes saw it (`observed`);
    `None` means nothing was kept: the statement says so and promises nothing."""
    base = {
        "survivors_hold": survivors_hold,
        "old_primary": old_primary,
        "lower_bound": True,
        "note": "what the old primary may have committed beyond survivors_hold is unknown until it returns; "
        "then its extra transactions, if any, are listed and it is quarantined",
        "semi_sync": settings.semi_sync,
        "semi_sync_on_timeout": settings.semi_sync_on_timeout,
        "observed": dict(observed) if observed else None,
        "source": "servers" if observed else "unknown",
    }
    if not observed:
        return {
            **base,
            "guarantee": GUARANTEE_AT_RISK,
            "risk": "the old primary's semi-sync state at the incident is unknown (no healthy probe of it "
            "was kept): nothing can be promised",
        }
    found = _observed_risk(observed)
    if found is not None:
        return {**base, "guarantee": found[0], "risk": found[1]}
    voiding = sorted(set(primary_findings) & SEMI_SYNC_VOIDING)
    return _semi_sync_risk(
        base,
        voiding,
        unreachable_replicas,
        "none: the old primary ran semi-sync AFTER_SYNC without a timeout and had not fallen back",
    )


def _semi_sync_risk(base: dict, voiding: list[str], unreachable_replicas, none_lost: str) -> dict:
    """The last words of an RPO statement once semi-sync held as required: what can still void it."""
    if voiding:
        return {
            **base,
            "guarantee": GUARANTEE_AT_RISK,
            "risk": f"the old primary's semi-sync was not as required ({', '.join(voiding)}): "
            "acknowledged writes may be lost",
        }
    if unreachable_replicas:
        return {
            **base,
            "guarantee": GUARANTEE_AT_RISK,
            "risk": f"{', '.join(unreachable_replicas)} could not be reached: an acknowledgement may have "
            "come from it",
        }
    return {
        **base,
        "guarantee": GUARANTEE_NONE_LOST,
        "risk": f"{none_lost}, and every replica that could have acknowledged a commit was reached",
    }


# --- a fenced server reappears ---------------------------------------------------------------------------


def extra_transactions(server: ProbeResult, primary: ProbeResult) -> list[str] | None:
    """Transactions `server` holds that `primary` lacks; None when the probes cannot tell.

    MariaDB: from both gtid_binlog_state (one entry per domain and server id), so a transaction the old
    primary committed and never sent shows even when the new primary has written the same sequence
    numbers since. MySQL: gtid_executed minus gtid_executed.
    """
    try:
        if server.flavour == "mysql" or primary.flavour == "mysql":
            if server.gtid_executed is None or primary.gtid_executed is None:
                return None
            extra = MysqlGtidSet.parse(server.gtid_executed).subtract(
                MysqlGtidSet.parse(primary.gtid_executed)
            )
            return extra.gtids()
        if server.gtid_binlog_state is None or primary.gtid_binlog_state is None:
            return None
        mine = MariadbBinlogState.parse(server.gtid_binlog_state)
        theirs = MariadbBinlogState.parse(primary.gtid_binlog_state)
        return [str(g) for g in mine.errant_relative_to(theirs)]
    except GtidError:
        return None


FENCE_READ_ONLY = "read_only"
FENCE_REJOIN = "rejoin"
FENCE_QUARANTINE = "quarantine"
FENCE_SETTLED = "settled"  # a healthy read-only replica of the primary again: the fence flag can go


@dataclass(frozen=True)
class FencePlan:
    """What to do with one fenced server seen this tick. `make_read_only` first, always; then at most one
    of rejoin, quarantine (with the extra GTIDs) or settled."""

    address: str
    make_read_only: bool
    next_step: str | None
    reason: str
    extra_gtids: tuple[str, ...] = field(default=())


def _writable(probe: ProbeResult) -> bool:
    return probe.read_only is False or (probe.flavour == "mysql" and probe.super_read_only is False)


def fence_plans(
    topology: Topology,
    probes: Mapping[str, ProbeResult],
    settings: ClusterSettings,
    *,
    may_rejoin: bool = True,
) -> list[FencePlan]:
    """For every fenced server that answered this tick: make it read-only if it is not (in any mode, paused
    or not), then, with `autorejoin` and `may_rejoin` (no pause), rejoin it as a replica of the current
    primary when its GTIDs are a subset of the primary's, or quarantine it when it has extra ones."""
    plans = []
    primary = topology.primary_view
    primary_probe = probes.get(primary.address) if primary is not None else None
    for view in topology.servers:
        probe = probes.get(view.address)
        if not view.fenced or probe is None or not probe.reachable:
            continue
        writable = _writable(probe)
        if view.quarantined:
            if writable:
                plans.append(FencePlan(view.address, True, None, "quarantined, yet writable"))
            continue
        if (
            primary is None
            or primary.address == view.address
            or primary.state != c.STATE_UP
            or primary_probe is None
            or not primary_probe.reachable
        ):
            if writable:
                plans.append(FencePlan(view.address, True, None, "writable while no other primary is up"))
            continue
        channel = probe.channel
        following = (
            channel is not None
            and channel_points_at(channel, primary.address, primary_probe.server_id)
            and channel.using_gtid.lower() != "no"
            and channel.io_running == "Yes"
            and channel.sql_running
        )
        if following and not writable:
            plans.append(FencePlan(view.address, False, FENCE_SETTLED, f"replicates from {primary.address}"))
            continue
        if not settings.autorejoin or not may_rejoin:
            why = "autorejoin is off" if not settings.autorejoin else "automatic actions are paused"
            if writable:
                plans.append(FencePlan(view.address, True, None, f"writable; not rejoined: {why}"))
            continue
        extra = extra_transactions(probe, primary_probe)
        if extra is None:
            plans.append(FencePlan(view.address, writable, None, "GTIDs cannot be compared: not rejoined"))
        elif extra:
            plans.append(
                FencePlan(
                    view.address,
                    writable,
                    FENCE_QUARANTINE,
                    f"holds transactions {primary.address} lacks: {', '.join(extra)}",
                    tuple(extra),
                )
            )
        elif following:
            plans.append(
                FencePlan(view.address, writable, FENCE_SETTLED, f"replicates from {primary.address}")
            )
        else:
            plans.append(
                FencePlan(
                    view.address,
                    writable,
                    FENCE_REJOIN,
                    f"its GTIDs are all on {primary.address}: rejoin it as a replica",
                )
            )
    return plans


def blind_fence_targets(topology: Topology, probes: Mapping[str, ProbeResult]) -> list[str]:
    """Fenced servers whose probe timed out while something accepts their connections: a resumed primary
    whose sessions hang on a semi-sync acknowledgement that never comes can block the probe's reads (binlog
    state) and still be writable. Monitoring tries to make them read-only without a probe (a dead host
    refuses at once; a frozen one costs the fence's connect timeout, so the caller spaces the tries)."""
    out = []
    for view in topology.servers:
        probe = probes.get(view.address)
        if (
            view.fenced
            and view.address != topology.primary
            and probe is not None
            and probe.outcome == "timeout"
        ):
            out.append(view.address)
    return out


# How long after a failing primary's incident began a restarted, read-only primary is reopened.
REOPEN_WITHIN_SECONDS = 3600.0


def reopen_decision(
    topology: Topology,
    probes: Mapping[str, ProbeResult],
    settings: ClusterSettings,
    *,
    incident: Mapping[str, Any] | None,
    now: float,
    paused: bool,
) -> tuple[bool, str]:
    """A primary that came back read-only after an incident in which no failover happened (refused, or not
    needed) gets its writes back when dbpilot is sure: automatic mode and no pause (the user's consent to
    act), the same primary as the incident's, restarted since the incident began (its uptime says so: a
    primary made read-only by a person without a restart is left alone), not fenced, quarantined or in
    maintenance, no other server writable, and none holding a transaction it lacks."""
    view = topology.primary_view
    if view is None or view.state != c.STATE_UP:
        return False, "no live primary"
    probe = probes.get(view.address)
    if probe is None or not probe.reachable or not probe.read_only:
        return False, "the primary is writable"
    if settings.failover_mode != "automatic" or settings.paused or paused:
        return False, "failover_mode is manual or automatic actions are paused"
    if view.fenced or view.quarantined or view.maintenance:
        return False, "the primary is fenced, quarantined or in maintenance"
    if not incident or incident.get("primary") != view.address:
        return False, "no recent incident of this primary"
    since = float(incident.get("since") or 0)
    if now - since > REOPEN_WITHIN_SECONDS:
        return False, "the incident is too old"
    if probe.uptime_seconds is None or probe.uptime_seconds > now - since + 5:
        return False, "it did not restart during the incident: read-only on purpose?"
    try:
        mine = MariadbGtidPos.parse(probe.gtid_current_pos) if probe.flavour != "mysql" else None
    except GtidError:
        return False, "its GTID position is unreadable"
    for other in topology.servers:
        if other.address == view.address:
            continue
        theirs = probes.get(other.address)
        if theirs is None or not theirs.reachable:
            continue
        if theirs.read_only is False:
            return False, f"{other.address} is writable"
        if mine is None:
            return False, "MySQL positions are not compared here"
        try:
            if not mine.contains(MariadbGtidPos.parse(theirs.gtid_current_pos)):
                return False, f"{other.address} holds transactions it lacks"
        except GtidError:
            return False, f"{other.address}'s GTID position is unreadable"
    return True, (
        f"{view.address} restarted read-only during the incident that began {now - since:.0f}s ago, "
        "no failover happened, and it is still the most advanced server"
    )


# --- right after a new primary -----------------------------------------------------------------------

SEMI_SYNC_SETTLE_SECONDS = 10.0


def settle_new_primary(topology: Topology, primary_since: float | None, now: float) -> Topology:
    """A primary that became the primary less than SEMI_SYNC_SETTLE_SECONDS ago (a switchover, a failover,
    the first observation) has its semi-sync replicas reconnecting: MariaDB reports its semi-sync status
    OFF until the first acknowledgement, which is expected and not an error event. SEMI_SYNC_INACTIVE on it
    is left out of that window's findings; if the status is still OFF after it, the finding opens as
    usual (its hysteresis counts from then)."""
    if topology.primary is None or primary_since is None or now - primary_since >= SEMI_SYNC_SETTLE_SECONDS:
        return topology
    kept = tuple(
        f for f in topology.findings if not (f.code == c.SEMI_SYNC_INACTIVE and f.server == topology.primary)
    )
    if len(kept) == len(topology.findings):
        return topology
    return replace(topology, findings=kept)
