"""Failure detection: counting failed probes, reading replicas' view of their source, confirming a failure.

dbpilot's own probes only say "I cannot reach the primary". That is never enough to fail over: the
primary may be alive and serving while only dbpilot's path to it is broken. A failure is *confirmed* when
the replicas agree that they lost it too (`confirm_primary_failure`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from clusters.domain.addresses import format_address
from clusters.domain.constants import (
    HEARTBEAT_GRACE_SECONDS,
    HEARTBEAT_STALE_PERIODS,
    OBSERVATION_MAX_AGE_TICKS,
    STATE_AUTH_FAILED,
    STATE_DOWN,
    STATE_ERROR_REPLY,
    STATE_SUSPECT,
    STATE_UNKNOWN,
    STATE_UNREACHABLE,
    STATE_UP,
)
from clusters.domain.probe import ALIVE_OUTCOMES, ProbeResult, ReplicationChannel
from clusters.domain.settings import ClusterSettings

if TYPE_CHECKING:
    from clusters.domain.topology import Topology


# --- failed-probe counting --------------------------------------------------------------------------------


def count_failures(previous: int, probe: ProbeResult | None) -> int:
    """Consecutive failed probes after this one. A server that answered, even with an error (it denies
    dbpilot's credentials, or says "too many connections"), is alive: that is not counted (its state is
    `auth_failed` or `error_reply`)."""
    if probe is None:
        return previous
    if probe.outcome in ALIVE_OUTCOMES:
        return 0
    return previous + 1


def failure_state(failures: int, settings: ClusterSettings) -> str:
    """`up` with no failure, `suspect` after one, `down` after `failcount` consecutive failed probes."""
    if failures <= 0:
        return STATE_UP
    return STATE_DOWN if failures >= settings.failcount else STATE_SUSPECT


def next_probe_delay_seconds(primary_failures: int, settings: ClusterSettings) -> float:
    """After a first failed probe of the primary, re-probe every `reprobe_interval_ms` instead of a tick,
    so that with the defaults (3 probes, 200 ms) a crash is down about 0.4 s after the tick that saw it."""
    if 0 < primary_failures < settings.failcount:
        return settings.reprobe_interval_ms / 1000
    return settings.tick_seconds


# --- what a replica says about its source ------------------------------------------------------------------


@lru_cache(maxsize=4096)
def normalize_address(address: str) -> str:
    """`host:port` with the host lower-cased and IP addresses in canonical form, for comparisons."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]").lower()
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        pass
    return format_address(host, int(port)) if port.isdigit() else address.lower()


def source_address(channel: ReplicationChannel) -> str:
    """The channel's source as a normalized `host:port`."""
    return normalize_address(format_address(channel.source_host, channel.source_port))


def channel_points_at(channel: ReplicationChannel, address: str, server_id: int | None = None) -> bool:
    """True when the channel replicates from `address` (by address, by `localhost`, or by server id)."""
    source = source_address(channel)
    target = normalize_address(address)
    if source == target:
        return True
    if channel.source_host.lower() == "localhost" and source.replace("localhost", "127.0.0.1", 1) == target:
        return True
    return server_id is not None and channel.source_server_id == server_id


def heartbeat_stale_after(channel: ReplicationChannel) -> float | None:
    """Seconds without an event or heartbeat after which the source counts as lost; None when the
    channel's heartbeat period is unknown (then only the IO thread state can tell)."""
    if not channel.heartbeat_period:
        return None
    return HEARTBEAT_STALE_PERIODS * channel.heartbeat_period + HEARTBEAT_GRACE_SECONDS


def heartbeat_stale(channel: ReplicationChannel) -> bool:
    limit = heartbeat_stale_after(channel)
    age = channel.last_heartbeat_age_seconds
    return limit is not None and age is not None and age > limit


def channel_receiving(channel: ReplicationChannel) -> bool:
    """The IO thread is connected and events or heartbeats still arrive.

    A SIGSTOPped source keeps its TCP session open, so `Slave_IO_Running: Yes` lingers until
    slave_net_timeout; a stale heartbeat tells the truth earlier.
    """
    return channel.io_running == "Yes" and not heartbeat_stale(channel)


# Client-side connection errors (CR_* codes): the replica's IO thread tried to reach its source and got no
# MySQL answer at all. A server error (< 2000, e.g. 1040 too many connections) means the source answered.
CONNECTION_ERRNOS = frozenset({2002, 2003, 2005, 2006, 2013, 2026, 2055})
# A replica that last received from the primary longer than this before the incident began (dbpilot's
# first failed probe) had lost it before, for another reason (stopped, broken, cut off): no witness.
WITNESS_RECENT_TICKS = 3
WITNESS_RECENT_MIN_SECONDS = 5.0


def witness_window_seconds(settings: ClusterSettings) -> float:
    """How long before the incident a witness must still have been receiving from the primary."""
    return max(WITNESS_RECENT_MIN_SECONDS, WITNESS_RECENT_TICKS * settings.tick_seconds)


def source_answered(channel: ReplicationChannel) -> bool:
    """The IO thread's last error is a MySQL error reply from the source (1040, 1203, 1226, 1129, ...):
    the source is alive and answering, only refusing this connection."""
    return 0 < channel.last_io_errno < 2000 and channel.io_running != "Yes"


def trying_and_failing(channel: ReplicationChannel) -> bool:
    """The IO thread is trying to reach its source and failing: `Connecting`, or stopped by a connection
    error (it gave up retrying). A thread stopped without an error was stopped on purpose."""
    if channel.io_running in ("Connecting", "Preparing"):
        return not source_answered(channel)
    return channel.io_running != "Yes" and channel.last_io_errno in CONNECTION_ERRNOS


# --- confirmation by the replicas ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaVerdict:
    """What one replica says about the primary."""

    address: str
    counted: bool  # part of the majority's base (not in maintenance, not quarantined)
    reachable: bool
    witness: bool  # reachable and replicating from the primary
    lost_primary: bool
    receiving: bool
    detail: str
    answered: bool = False  # the primary answered it with an error reply: alive
    last_received_age: float | None = None  # seconds between its last receipt and the incident's start


@dataclass(frozen=True)
class Confirmation:
    """Whether the replicas confirm that the primary failed, and the evidence."""

    confirmed: bool
    reason: str
    replicas_expected: int
    majority: int
    replicas_reachable: int
    replicas_agreeing: int
    still_receiving: tuple[str, ...]
    verdicts: tuple[ReplicaVerdict, ...]
    answered: tuple[str, ...] = ()  # replicas the primary answered with an error reply (it is alive)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["still_receiving"] = list(self.still_receiving)
        data["answered"] = list(self.answered)
        data["verdicts"] = [asdict(v) for v in self.verdicts]
        return data


def _verdict(
    address: str,
    probe: ProbeResult | None,
    counted: bool,
    primary: str | None,
    primary_server_id: int | None,
    received_before: float | None,
    window: float,
) -> ReplicaVerdict:
    """`received_before`: seconds between the replica's last known receipt from the primary and the
    incident's start (None when unknown, e.g. monitoring just started)."""
    if probe is None or not probe.reachable:
        why = "not probed" if probe is None else f"unreachable ({probe.outcome})"
        return ReplicaVerdict(address, counted, False, False, False, False, why)
    channel = next(
        (
            ch
            for ch in probe.replication
            if primary is None or channel_points_at(ch, primary, primary_server_id)
        ),
        None,
    )
    if channel is None:
        return ReplicaVerdict(
            address, counted, True, False, False, False, "does not replicate from the primary"
        )
    if channel_receiving(channel):
        age = channel.last_heartbeat_age_seconds
        seen = "" if age is None else f", last event or heartbeat {age:.1f}s ago"
        return ReplicaVerdict(
            address, counted, True, True, False, True, f"still receiving (IO thread Yes{seen})"
        )
    error = f": {channel.last_io_errno} {channel.last_io_error}".rstrip() if channel.last_io_errno else ""
    if source_answered(channel):
        return ReplicaVerdict(
            address,
            counted,
            True,
            True,
            False,
            False,
            f"the primary answers it with an error (IO thread {channel.io_running}{error}): it is alive",
            answered=True,
            last_received_age=received_before,
        )
    if channel.io_running == "Yes":
        detail = (
            f"lost the primary (IO thread Yes, but nothing received for "
            f"{channel.last_heartbeat_age_seconds:.1f}s, heartbeat period {channel.heartbeat_period:g}s)"
        )
    elif trying_and_failing(channel):
        detail = f"lost the primary (IO thread {channel.io_running}{error})"
    else:
        why = "stopped on purpose" if not channel.last_io_errno else "stopped by an error"
        return ReplicaVerdict(
            address,
            counted,
            True,
            True,
            False,
            False,
            f"no witness: its IO thread is {channel.io_running} ({why}{error}), it is not "
            "trying to reach the primary",
            last_received_age=received_before,
        )
    if received_before is not None and received_before > window:
        return ReplicaVerdict(
            address,
            counted,
            True,
            True,
            False,
            False,
            f"no witness: it last received from the primary {received_before:.0f}s before the "
            f"incident began (more than {window:g}s): it had lost it before",
            last_received_age=received_before,
        )
    return ReplicaVerdict(
        address, counted, True, True, True, False, detail, last_received_age=received_before
    )


def confirm_primary_failure(
    primary_state: str,
    replica_probes: Mapping[str, ProbeResult | None],
    settings: ClusterSettings,
    *,
    primary: str | None = None,
    primary_server_id: int | None = None,
    not_counted: Iterable[str] = (),
    last_received: Mapping[str, float] | None = None,
    incident_since: float | None = None,
) -> Confirmation:
    """Decide whether the replicas confirm that the primary failed.

    `replica_probes` holds the latest probe of every server of the cluster other than the primary
    (None when not probed). The majority rule: the base is every one of those servers except the ones in
    `not_counted` (servers in maintenance or quarantined: they are expected to be stopped or detached, so
    they must not make confirmation impossible). The failure is confirmed only when

    1. dbpilot's own probes say the primary is `down` (failcount consecutive failures);
    2. more than half of the base is reachable *and* witnesses the loss: its IO thread to the primary is
       trying and failing (`Connecting`, or stopped by a connection error), or says Yes while its last
       event or heartbeat is older than the heartbeat period allows (the SIGSTOP case). An IO thread
       stopped on purpose (no error) or by another error is no witness, nor is a replica that last
       received from the primary long before the incident began (`last_received`: wall-clock time of
       each replica's last receipt, `incident_since`: dbpilot's first failed probe; unknown times do
       not disqualify);
    3. no reachable server, counted or not, still receives events from the primary, and none was
       answered by it with an error reply (1040 too many connections...: the primary is alive).

    A replica that does not replicate from the primary (orphan, wrong source) cannot testify: it counts
    in the base but never agrees. Reaching no replica, or only a minority, is never confirmation: that is
    what a network split around dbpilot looks like. With no replica at all nothing can be confirmed.
    `primary`/`primary_server_id` select the channel that points at the primary (any channel if None).
    """
    excluded = set(not_counted)
    window = witness_window_seconds(settings)

    def received_before(address: str) -> float | None:
        at = (last_received or {}).get(address)
        if at is None or incident_since is None:
            return None
        return max(0.0, incident_since - float(at))

    verdicts = tuple(
        _verdict(
            address,
            probe,
            address not in excluded,
            primary,
            primary_server_id,
            received_before(address),
            window,
        )
        for address, probe in replica_probes.items()
    )
    counted = [v for v in verdicts if v.counted]
    expected = len(counted)
    majority = expected // 2 + 1
    reachable = sum(1 for v in counted if v.reachable)
    agreeing = sum(1 for v in counted if v.lost_primary)
    receiving = tuple(v.address for v in verdicts if v.receiving)
    answered = tuple(v.address for v in verdicts if v.answered)

    def result(confirmed: bool, reason: str) -> Confirmation:
        return Confirmation(
            confirmed, reason, expected, majority, reachable, agreeing, receiving, verdicts, answered
        )

    if primary_state not in (STATE_DOWN, STATE_UNREACHABLE):
        if primary_state == STATE_SUSPECT:
            return result(
                False, f"the primary is only suspect: fewer than {settings.failcount} failed probes"
            )
        if primary_state in (STATE_UP, STATE_AUTH_FAILED, STATE_ERROR_REPLY):
            return result(False, f"the primary answers dbpilot (state {primary_state})")
        state = STATE_UNKNOWN if not primary_state else primary_state
        return result(False, f"the primary is not down (state {state})")
    if receiving:
        return result(
            False,
            f"{', '.join(receiving)} still receive(s) events from the primary: it is alive, "
            "only dbpilot cannot reach it",
        )
    if answered:
        return result(
            False,
            f"the primary answers {', '.join(answered)} with an error reply (e.g. too many "
            "connections): it is alive, overloaded or refusing connections, not dead",
        )
    if expected == 0:
        return result(
            False, "no replica can confirm the failure (the cluster has no replica outside maintenance)"
        )
    if agreeing < majority:
        not_witnesses = [f"{v.address}: {v.detail}" for v in counted if v.reachable and not v.lost_primary]
        why = f" ({'; '.join(not_witnesses)})" if not_witnesses else ""
        return result(
            False,
            f"only {agreeing} of {expected} replicas confirm they lost the primary "
            f"({reachable} reachable); a majority of {majority} is needed{why}",
        )
    return result(True, f"{agreeing} of {expected} replicas lost the primary and none receives from it")


def confirm_for_topology(
    topology: Topology,
    probes: Mapping[str, ProbeResult],
    settings: ClusterSettings,
    *,
    last_received: Mapping[str, float] | None = None,
    incident_since: float | None = None,
) -> Confirmation:
    """`confirm_primary_failure` for the primary of an analysed topology (maintenance and quarantined
    servers left out of the majority's base)."""
    primary_view = topology.server(topology.primary) if topology.primary else None
    if primary_view is None:
        return confirm_primary_failure(STATE_UNKNOWN, {}, settings)
    others = [s for s in topology.servers if s.address != primary_view.address]
    return confirm_primary_failure(
        primary_view.state,
        {s.address: probes.get(s.address) for s in others},
        settings,
        primary=primary_view.address,
        primary_server_id=topology.primary_server_id,
        not_counted=[s.address for s in others if s.maintenance or s.quarantined],
        last_received=last_received,
        incident_since=incident_since,
    )


def confirmation_may_come(
    topology: Topology,
    probes: Mapping[str, ProbeResult],
    settings: ClusterSettings,
    *,
    reprobe_round: bool = False,
    last_received: Mapping[str, float] | None = None,
    incident_since: float | None = None,
) -> bool:
    """The replicas do not confirm the primary's failure yet, but may within a few heartbeat periods: one
    of them still says its IO thread runs (a frozen primary keeps the TCP session open) and has a heartbeat
    period, so a silence from the primary will show as a stale heartbeat.

    In a re-probe round (`reprobe_round`), a replica that received something since the previous round
    (age 0) shows the primary alive and only unreachable from dbpilot: nothing to wait for. The caller
    also bounds the wait."""
    if confirm_for_topology(
        topology, probes, settings, last_received=last_received, incident_since=incident_since
    ).confirmed:
        return False
    primary = topology.primary
    if primary is None:
        return False
    may_come = False
    for address, probe in probes.items():
        if address == primary or probe is None or not probe.reachable:
            continue
        for channel in probe.replication:
            if (
                not channel_points_at(channel, primary, topology.primary_server_id)
                or channel.io_running != "Yes"
            ):
                continue
            if reprobe_round and channel.last_heartbeat_age_seconds == 0.0:
                return False
            if channel.heartbeat_period:
                may_come = True
    return may_come


def receiving_replicas(topology: Topology, probes: Mapping[str, ProbeResult]) -> list[str]:
    """The replicas whose IO thread receives from the topology's primary now (the tick records when each
    last did, so a later incident can tell a witness from a replica that had lost the primary before)."""
    primary = topology.primary
    if primary is None:
        return []
    out = []
    for address, probe in probes.items():
        if address == primary or probe is None or not probe.reachable:
            continue
        if any(
            channel_points_at(ch, primary, topology.primary_server_id) and channel_receiving(ch)
            for ch in probe.replication
        ):
            out.append(address)
    return out


def failure_streak_continues(previous_observed_at: float | None, now: float, tick_seconds: float) -> bool:
    """Whether a new round continues the failure counts of the previous one: only when that round is at most
    OBSERVATION_MAX_AGE_TICKS ticks old. After a longer gap (monitoring itself stalled) the old rounds say
    nothing about now, so a primary is never "down" from failures counted across the gap."""
    if previous_observed_at is None:
        return True  # a new hot state has no counts to continue anyway
    return now - previous_observed_at <= OBSERVATION_MAX_AGE_TICKS * tick_seconds
