"""Guards and preconditions of HA actions, each a named `Check` so a refusal can say exactly why.

Every check in a list is evaluated (no short-circuit), so a refused job or a 409 names *all* the guards
that blocked it. Pure functions of plain data: times come in as epoch seconds or aware datetimes.
Checking that no other HA job is active is the caller's (the database enforces it).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from clusters.domain import constants as c
from clusters.domain.detection import Confirmation
from clusters.domain.election import Election
from clusters.domain.probe import ProbeResult
from clusters.domain.settings import ClusterSettings
from clusters.domain.topology import Topology

Instant = float | datetime


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def blocking(checks: Iterable[Check]) -> list[Check]:
    """The checks that failed."""
    return [check for check in checks if not check.ok]


def all_ok(checks: Iterable[Check]) -> bool:
    return not blocking(checks)


def _seconds(instant: Instant) -> float:
    return instant.timestamp() if isinstance(instant, datetime) else float(instant)


# --- individual guards ---------------------------------------------------------------------------------


def failover_mode_check(settings: ClusterSettings) -> Check:
    ok = settings.failover_mode == "automatic"
    return Check(
        c.GUARD_FAILOVER_MODE,
        ok,
        "failover_mode is automatic"
        if ok
        else "failover_mode is manual: dbpilot only observes; fail over by hand or set it to automatic",
    )


def failover_armed_check(failover_armed: bool) -> Check:
    return Check(
        c.GUARD_FAILOVER_ARMED,
        failover_armed,
        "armed: the adopt job succeeded"
        if failover_armed
        else "not armed: the adopt job that prepares the replicas for automatic failover has not succeeded",
    )


def platform_pause_check(platform_paused: bool) -> Check:
    return Check(
        c.GUARD_PLATFORM_PAUSED,
        not platform_paused,
        "the platform is paused by an operator: no automatic action anywhere"
        if platform_paused
        else "the platform is not paused",
    )


def cluster_pause_check(settings: ClusterSettings) -> Check:
    return Check(
        c.GUARD_CLUSTER_PAUSED,
        not settings.paused,
        "the cluster is paused (setting paused): no automatic action"
        if settings.paused
        else "the cluster is not paused",
    )


def failover_limit_check(settings: ClusterSettings, now: Instant, failovers: Sequence[Instant]) -> Check:
    """At most `failover_limit` automatic failovers within `failover_window_seconds` (0: no limit).

    `failovers` are the start times of automatic failovers since an operator last reset the counters.
    """
    limit = settings.failover_limit
    window = settings.failover_window_seconds
    recent = [t for t in (_seconds(f) for f in failovers) if _seconds(now) - t < window]
    if limit == 0:
        return Check(c.GUARD_FAILOVER_LIMIT, True, "failover_limit is 0: no limit")
    ok = len(recent) < limit
    detail = f"{len(recent)} automatic failover(s) in the last {window}s, limit {limit}" + (
        "" if ok else ": reset the failover counters once the cause is understood"
    )
    return Check(c.GUARD_FAILOVER_LIMIT, ok, detail)


def failover_interval_check(settings: ClusterSettings, now: Instant, failovers: Sequence[Instant]) -> Check:
    minimum = settings.failover_min_interval_seconds
    if not failovers:
        return Check(c.GUARD_FAILOVER_MIN_INTERVAL, True, "no earlier failover")
    since = _seconds(now) - max(_seconds(f) for f in failovers)
    ok = since >= minimum
    return Check(
        c.GUARD_FAILOVER_MIN_INTERVAL,
        ok,
        f"last failover {since:.0f}s ago, "
        f"failover_min_interval_seconds {minimum}" + ("" if ok else ": too soon after the last one"),
    )


def observation_fresh_check(
    settings: ClusterSettings, now: Instant, last_observation_at: Instant | None
) -> Check:
    limit = c.OBSERVATION_MAX_AGE_TICKS * settings.tick_seconds
    if last_observation_at is None:
        return Check(c.GUARD_OBSERVATION_FRESH, False, "no observation of the cluster yet")
    age = _seconds(now) - _seconds(last_observation_at)
    ok = age <= limit
    return Check(
        c.GUARD_OBSERVATION_FRESH,
        ok,
        f"latest observation {age:.1f}s old (limit {limit:g}s, "
        f"{c.OBSERVATION_MAX_AGE_TICKS} ticks)" + ("" if ok else ": dbpilot's view is stale"),
    )


def candidate_check(election: Election, name: str = c.GUARD_CANDIDATE) -> Check:
    if election.winner is None:
        return Check(name, False, election.reason)
    return Check(name, True, f"{election.winner} ({election.reason})")


def errant_check(election: Election) -> Check:
    """Replicas with errant transactions are never elected. Skipping one is safe only when the winner
    already holds every other transaction it has; otherwise promoting the winner would drop them, and
    catching up from it would spread its errant ones: a person must decide."""
    errant = [row["server"] for row in election.table if "errant" in row["flags"]]
    needed = [s.server for s in election.catch_up_from if s.errant]
    if needed:
        return Check(
            c.GUARD_ERRANT,
            False,
            f"{', '.join(needed)} hold(s) errant transactions and also "
            "transactions the elected candidate lacks: resolve the errant transactions first",
        )
    if errant:
        return Check(
            c.GUARD_ERRANT,
            True,
            f"{', '.join(errant)} skipped for errant transactions; the candidate "
            "holds everything else they have",
        )
    return Check(c.GUARD_ERRANT, True, "no replica has errant transactions")


def maintenance_check(primary_maintenance: bool, election: Election) -> Check:
    in_maintenance = [row["server"] for row in election.table if "maintenance" in row["flags"]]
    also = (
        f"; replicas in maintenance are not candidates: {', '.join(in_maintenance)}" if in_maintenance else ""
    )
    if primary_maintenance:
        return Check(
            c.GUARD_MAINTENANCE, False, "the primary is in maintenance: its failure is expected" + also
        )
    return Check(c.GUARD_MAINTENANCE, True, "the primary is not in maintenance" + also)


def confirmation_check(confirmation: Confirmation) -> Check:
    return Check(c.GUARD_PRIMARY_FAILURE, confirmation.confirmed, confirmation.reason)


# --- guard lists ---------------------------------------------------------------------------------------


def automatic_failover_checks(
    *,
    settings: ClusterSettings,
    failover_armed: bool,
    platform_paused: bool,
    now: Instant,
    last_observation_at: Instant | None,
    failovers: Sequence[Instant],
    election: Election,
    primary_maintenance: bool,
    confirmation: Confirmation | None = None,
) -> list[Check]:
    """Every guard of an automatic failover (all must pass)."""
    checks = [
        failover_mode_check(settings),
        failover_armed_check(failover_armed),
        platform_pause_check(platform_paused),
        cluster_pause_check(settings),
        failover_limit_check(settings, now, failovers),
        failover_interval_check(settings, now, failovers),
        observation_fresh_check(settings, now, last_observation_at),
        maintenance_check(primary_maintenance, election),
        candidate_check(election),
        errant_check(election),
    ]
    if confirmation is not None:
        checks.insert(0, confirmation_check(confirmation))
    return checks


def manual_failover_checks(
    *,
    settings: ClusterSettings,
    now: Instant,
    last_observation_at: Instant | None,
    primary_state: str | None,
    confirmation: Confirmation,
    election: Election,
    age_unknown: Iterable[str] = (),
    tick_confirmed_age: float | None = None,
) -> list[Check]:
    """A failover an operator asked for: it need not wait for failcount, modes, pauses or limits, but a
    live primary is refused (use a switchover) and the candidate rules are the same.

    A replica's heartbeat age is measured between probes of one process, so the API's own probe sees a
    frozen primary's replicas with their IO thread still "Yes" and no age (`age_unknown`). When the ticks
    confirmed this primary's failure recently (`tick_confirmed_age`, seconds), those replicas do not
    count as receiving: the ticks saw their heartbeats go stale."""
    alive_states = (c.STATE_UP, c.STATE_AUTH_FAILED, c.STATE_ERROR_REPLY, c.STATE_UNREACHABLE)
    unknown = set(age_unknown)
    receiving = list(confirmation.still_receiving)
    vouched = (
        bool(receiving)
        and all(a in unknown for a in receiving)
        and tick_confirmed_age is not None
        and tick_confirmed_age <= c.OBSERVATION_MAX_AGE_TICKS * settings.tick_seconds
    )
    if primary_state in alive_states:
        primary = Check(
            c.GUARD_PRIMARY_DEAD, False, f"the primary is alive (state {primary_state}): use a switchover"
        )
    elif receiving and not vouched:
        primary = Check(
            c.GUARD_PRIMARY_DEAD,
            False,
            f"{', '.join(receiving)} still receive(s) from the primary: it is alive; use a switchover",
        )
    elif vouched:
        primary = Check(
            c.GUARD_PRIMARY_DEAD,
            True,
            f"the primary is {primary_state or 'unknown'}; monitoring "
            f"confirmed its failure {tick_confirmed_age:.1f}s ago ({', '.join(receiving)}: IO thread "
            "still Yes, heartbeat stale as the ticks saw it)",
        )
    else:
        primary = Check(
            c.GUARD_PRIMARY_DEAD,
            True,
            f"the primary is {primary_state or 'unknown'} and no replica receives from it",
        )
    return [
        primary,
        observation_fresh_check(settings, now, last_observation_at),
        candidate_check(election),
        errant_check(election),
    ]


def long_running_checks(primary: ProbeResult | None, settings: ClusterSettings) -> list[Check]:
    """Transactions or queries on the primary older than `switchover_wait_trx_seconds` refuse a switchover:
    freezing writes would have to wait for (or kill) them, and FLUSH TABLES WITH READ LOCK waits for
    running queries."""
    limit = settings.switchover_wait_trx_seconds
    if primary is None or not primary.reachable:
        unknown = "the primary cannot be probed"
        return [Check(c.CHECK_LONG_TRANSACTIONS, False, unknown), Check(c.CHECK_LONG_QUERIES, False, unknown)]
    trx = max(primary.longest_trx_seconds or 0, primary.longest_write_trx_seconds or 0)
    query = primary.longest_query_seconds or 0
    return [
        Check(
            c.CHECK_LONG_TRANSACTIONS,
            trx <= limit,
            f"longest open transaction {trx}s "
            f"(switchover_wait_trx_seconds {limit})" + ("" if trx <= limit else ": commit or end it first"),
        ),
        Check(
            c.CHECK_LONG_QUERIES,
            query <= limit,
            f"longest running query {query}s "
            f"(switchover_wait_trx_seconds {limit})" + ("" if query <= limit else ": wait for it or kill it"),
        ),
    ]


def _replication_settings_check(candidate: str | None, probes: Mapping[str, ProbeResult]) -> Check:
    probe = probes.get(candidate) if candidate else None
    if probe is None or not probe.reachable:
        return Check(c.CHECK_REPLICATION_SETTINGS, False, "no electable candidate to verify (see candidate)")
    problems = []
    channel = probe.channel
    if channel is None or channel.using_gtid.lower() == "no":
        problems.append("does not replicate by GTID")
    if probe.flavour == "mysql" and (probe.gtid_mode or "").upper() != "ON":
        problems.append(f"gtid_mode is {probe.gtid_mode}")
    if probe.log_bin is False:
        problems.append("log_bin is off")
    if probe.log_slave_updates is False:
        problems.append("log_slave_updates is off")
    if probe.binlog_format and probe.binlog_format.upper() != "ROW":
        problems.append(f"binlog_format is {probe.binlog_format}")
    if problems:
        return Check(c.CHECK_REPLICATION_SETTINGS, False, f"candidate {candidate}: {', '.join(problems)}")
    return Check(
        c.CHECK_REPLICATION_SETTINGS, True, f"candidate {candidate}: GTID, log_bin, log_slave_updates, ROW"
    )


def switchover_checks(
    topology: Topology,
    probes: Mapping[str, ProbeResult],
    settings: ClusterSettings,
    election: Election,
    *,
    failing_since: float | None = None,
    now: float | None = None,
) -> list[Check]:
    """Preconditions of a switchover checked at request time from the latest tick (409 when one fails).
    `failing_since`: when monitoring's first failed probe of the primary was (epoch seconds), to say since
    when a suspect or down primary has been so; `now` the same clock's present."""
    primary = topology.primary_view
    if primary is None:
        primary_check = Check(
            c.CHECK_PRIMARY_UP, False, "no primary: a switchover needs a live primary (use a failover)"
        )
    else:
        ok = primary.state == c.STATE_UP
        seen = probes.get(primary.address)
        why = []
        if not ok:
            if failing_since is not None and now is not None:
                when = time.strftime("%H:%M:%S", time.gmtime(failing_since))
                why.append(f"since {when} UTC ({max(0.0, now - failing_since):.0f} s ago)")
            if primary.failures:
                why.append(f"{primary.failures} failed probe(s) in a row")
            if seen is not None and not seen.reachable:
                why.append(f"its probe now: {seen.outcome}{': ' + seen.error if seen.error else ''}")
        primary_check = Check(
            c.CHECK_PRIMARY_UP,
            ok,
            f"primary {primary.address} is {primary.state}"
            + (f" ({'; '.join(why)})" if why else "")
            + ("" if ok else ": use a failover if it is dead, or retry once it answers"),
        )
    replicas = [s for s in topology.servers if s.address != topology.primary and not s.maintenance]
    if settings.check_replication_state:
        stopped = [
            f"{s.address} (IO {s.replication['io_running']}, SQL {s.replication['sql_running']})"
            for s in replicas
            if s.state == c.STATE_UP
            and s.replication is not None
            and (s.replication["io_running"] != "Yes" or s.replication["sql_running"] != "Yes")
        ]
        unseen = [s.address for s in replicas if s.state != c.STATE_UP]
        note = (
            f"; not reachable, so not repointed (repoint them to the new primary when they return: "
            f"REPLICA_WRONG_SOURCE says so): {', '.join(unseen)}"
            if unseen
            else ""
        )
        state_check = Check(
            c.CHECK_REPLICATION_STATE,
            not stopped,
            (
                f"replication not running on {', '.join(stopped)}"
                if stopped
                else "replication runs on every replica"
            )
            + note,
        )
        lagging = [
            f"{s.address} ({s.lag:.0f}s)"
            for s in replicas
            if s.lag is not None and s.lag > settings.max_replica_delay_seconds
        ]
        lag_check = Check(
            c.CHECK_REPLICA_LAG,
            not lagging,
            (
                f"lagging over max_replica_delay_seconds {settings.max_replica_delay_seconds}: {', '.join(lagging)}"
                if lagging
                else "no replica lags beyond max_replica_delay_seconds (intended MASTER_DELAY excluded)"
            ),
        )
    else:
        state_check = Check(
            c.CHECK_REPLICATION_STATE,
            True,
            "not checked (check_replication_state off): "
            "stopped replicas are started before the catch-up wait",
        )
        lag_check = Check(c.CHECK_REPLICA_LAG, True, "not checked (check_replication_state off)")
    primary_probe = probes.get(topology.primary) if topology.primary else None
    return [
        primary_check,
        upstream_check(primary_probe),
        _replication_settings_check(election.winner, probes),
        state_check,
        lag_check,
        candidate_check(election, c.CHECK_CANDIDATE),
        *long_running_checks(primary_probe, settings),
    ]


CHECK_UPSTREAM = "upstream_channel"


def upstream_check(primary_probe: ProbeResult | None) -> Check:
    """A primary that itself replicates (from outside the cluster: a DR chain, a named channel) is refused
    up front: a switchover points the old primary at the candidate and resets its replication, which would
    overwrite that channel. Carrying it to the new primary is not done (docs/failover.md)."""
    channels = primary_probe.replication if primary_probe is not None and primary_probe.reachable else ()
    if not channels:
        return Check(CHECK_UPSTREAM, True, "the primary replicates from nothing")
    names = ", ".join(
        f"{ch.connection_name or 'default'} from {ch.source_host}:{ch.source_port}" for ch in channels
    )
    return Check(
        CHECK_UPSTREAM,
        False,
        f"the primary replicates itself ({names}): a switchover would overwrite "
        "that channel; remove it (STOP SLAVE; RESET SLAVE ALL on the primary) or move it by hand first",
    )
