"""The steps of the failover job (automatic or manual), composed with the shared HA primitives (ha_freeze, ha_promote, ha_after).

    confirm_failure        fresh probes: the primary still does not answer, the replicas still agree;
                           the old primary is marked fenced (any reappearance is made read-only)
    fence_hook             the `fence` hook first (required: promotion waits for its success)
    stop_replication       IO threads stopped on every survivor at once: received positions freeze
    elect_candidate        the failover election from the frozen positions (decision table in the result)
    pre_failover_hook      recorded; a failure does not stop a failover
    catch_up_candidate     the candidate applies its whole relay log, then fetches from any survivor
                           that holds transactions it lacks (never loses them silently)
    promote_candidate      STOP SLAVE; RESET SLAVE ALL; semi-sync master side; the survivors pointed at it
    repoint_replicas       their IO threads started before writes open (semi-sync acknowledgements)
    open_writes            read_only=0 on the new primary; the cluster's primary recorded, old one fenced
    routes_new_primary, post_failover_hook, replicas_read_only, verify_replication, record_rpo

What a resumed job needs is in `ctx.state` (clusters.jobs.state.JobState): old_primary, new_primary, io_stopped, targets, sources
(what each survivor replicated from, for the abort), promoted, writes_opened.

Saving: every step's outcome (its record and the state) is saved when it ends. Until writes are open the
steps are quiet, so that save runs in the background (shortly after, with the steps that followed) and
nothing on the way to open writes waits for the control-plane database, except two waited checkpoints
before changes an abort or a resumed job must know about: before the old primary is flagged fenced
(confirm_failure; it also saves whose IO threads stop_replication will stop) and before the candidate is
promoted; a third, only when a fence hook is configured, before the hook runs (after it, nothing is ever
pointed back at the old primary). A resumed job continues after the last step whose outcome was saved; a step
whose save was lost runs again (each checks the servers first). The abort looks at the servers
(clusters.domain.failover_abort), not only at the saved flags.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from clusters import hotstate
from clusters.adapters import fence
from clusters.adapters.mysql import POOL, ConnectOptions, ServerError
from clusters.adapters.probe import probe_server
from clusters.domain import constants as c
from clusters.domain import failover_abort, repoint_plan
from clusters.domain import failover_plan as plan
from clusters.domain.detection import confirm_for_topology
from clusters.domain.election import Election
from clusters.domain.guards import blocking, candidate_check, errant_check
from clusters.domain.probe import ALIVE_OUTCOMES
from clusters.events import record_event
from clusters.jobs import ha_after, ha_freeze, ha_promote
from clusters.jobs.context import HaContext
from clusters.jobs.steps import (
    Done,
    Plan,
    StepFailed,
    StepOutcome,
    StepRefused,
    StepSpec,
)
from clusters.models import Finding, Server
from clusters.routes import PRIMARY_CHANGED

log = logging.getLogger(__name__)

OLD_PRIMARY_PROBE_TIMEOUT = 0.3  # a frozen primary accepts TCP and never answers: do not wait a whole second
RELAY_LOG_TIMEOUT_SECONDS = 30.0
CATCH_UP_SOURCE_TIMEOUT_SECONDS = 30.0
RECENT_FINDINGS_SECONDS = 120
LOOK_FRESH_SECONDS = 1.0  # a look at the old primary older than this is taken again before promotion
MAX_CATCHUP_SECONDS = 600.0  # catchup_timeout_seconds is capped: a failover never waits longer to promote
SEMI_SYNC_KILL_CONN_TIMEOUT = 1  # seconds (MariaDB's default 5 makes a failover wait 2 s per frozen source)


# --- observing -------------------------------------------------------------------------------------------


def _quick_options(ctx: HaContext) -> ConnectOptions:
    return ConnectOptions(
        connect_timeout=OLD_PRIMARY_PROBE_TIMEOUT,
        read_timeout=OLD_PRIMARY_PROBE_TIMEOUT,
        tls=ctx.probe_options.tls,
        tls_ca=ctx.probe_options.tls_ca,
    )


def probe_old_primary(ctx: HaContext) -> Future:
    """Probe the old primary again, in the background (a frozen one costs the whole short timeout)."""
    future = getattr(ctx, "old_primary_probe", None)
    if future is None:
        old = ctx.params["primary"]
        POOL.discard_address(old)  # a pooled connection from before it died would only say "error"
        future = ctx.submit(probe_server, old, ctx.admin, _quick_options(ctx))
        ctx.old_primary_probe = future  # type: ignore[attr-defined]
    return future


def fresh_old_primary_probe(ctx: HaContext) -> Future:
    """A new look at the old primary (never the one taken when the job started), in the background."""
    old = ctx.params["primary"]
    POOL.discard_address(old)
    future = ctx.submit(probe_server, old, ctx.admin, _quick_options(ctx))
    ctx.last_old_primary_look = (future, time.monotonic())  # type: ignore[attr-defined]
    return future


def _record_look(ctx: HaContext, when: str, outcome: str) -> None:
    ctx.state.old_primary_looks = [
        *ctx.state.old_primary_looks,
        {"when": when, "outcome": outcome, "at": time.time()},
    ]


def refuse_if_old_primary_answers(ctx: HaContext, future: Future, when: str) -> None:
    """Refuse (nothing promoted yet) when that look found the old primary answering: it is alive."""
    probe = future.result()
    _record_look(ctx, when, probe.outcome)
    if probe.outcome in ALIVE_OUTCOMES:  # it answers, even with an error (credentials, too many connections)
        old = ctx.params["primary"]
        detail = (
            f"the primary {old} answers again ({when}): no failover"
            if ctx.params.get("automatic")
            else f"the primary {old} is alive ({when}): use a switchover"
        )
        raise StepRefused(detail, [{"name": c.GUARD_PRIMARY_DEAD, "ok": False, "detail": detail}])


def gtid_history(ctx: HaContext) -> str | None:
    """Every primary's gtid_binlog_state and positions the ticks saw healthy (the hot state): errant
    transactions are judged against it. Kept in the job's state once read, so a resumed job judges alike."""
    if ctx.state.gtid_history is None:
        ctx.state.gtid_history = hotstate.read_gtid_history(ctx.cluster.id) or ""
    return ctx.state.gtid_history or None


def members(ctx: HaContext) -> list[repoint_plan.Member]:
    """The servers with their maintenance flag and whether the last probe reached them."""
    return [
        repoint_plan.Member(
            s.address,
            s.maintenance,
            ctx.probes.get(s.address) is not None and ctx.probes[s.address].reachable,
        )
        for s in ctx.servers
    ]


def survivors(ctx: HaContext) -> list[str]:
    """Reachable servers other than the old primary that are not in maintenance."""
    return repoint_plan.survivors(members(ctx), ctx.state.old_primary)


# --- steps -----------------------------------------------------------------------------------------------


def confirm_failure(ctx: HaContext) -> StepOutcome:
    old = ctx.params.get("primary")
    if not old or old not in ctx.addresses:
        raise StepRefused(
            f"{old or 'no primary'} is not a server of this cluster",
            [{"name": c.GUARD_PRIMARY_DEAD, "ok": False, "detail": "unknown primary"}],
        )
    probe_old_primary(ctx)
    topology = ctx.probe(counted_down=old)
    if topology.primary != old:
        raise StepRefused(
            f"the topology changed: the primary is {topology.primary or 'unknown'}, not {old}",
            [{"name": c.GUARD_PRIMARY_DEAD, "ok": False, "detail": "the topology changed"}],
        )
    ctx.state.old_primary = old
    if ctx.state.routes_ok is None:
        ctx.state.routes_ok = True
    ctx.state.automatic = bool(ctx.params.get("automatic"))
    fresh = confirm_for_topology(
        topology,
        ctx.probes,
        ctx.settings,
        last_received=ctx.params.get("last_received"),
        incident_since=ctx.params.get("incident_since"),
    )
    confirmed_at = ctx.params.get("confirmed_at")
    age = time.time() - float(confirmed_at) if confirmed_at else None
    check = plan.reconfirm(fresh, ctx.probes, tick_confirmed_age=age, settings=ctx.settings)
    if not check.ok and ctx.attempt > 1 and not fresh.still_receiving and not fresh.answered:
        # A resumed job: the first attempt stopped the survivors' IO threads (stop_replication), so they
        # say `No` without an error. They count as the witnesses they were; the look below still refuses
        # if the old primary answers.
        # Only those an earlier attempt saved it would stop (io_stopped, saved before the first stop): an
        # IO thread an operator stopped is no witness.
        stopped_by_us = set(ctx.state.io_stopped)
        ours = [
            v
            for v in fresh.verdicts
            if v.counted and v.reachable and "stopped on purpose" in v.detail and v.address in stopped_by_us
        ]
        if ours and fresh.replicas_agreeing + len(ours) >= fresh.majority:
            check = check.__class__(
                check.name,
                True,
                f"resumed (attempt {ctx.attempt}): "
                f"{', '.join(v.address for v in ours)} stopped by the first attempt; {fresh.reason}",
            )
    if not ctx.state.automatic and not check.ok and not fresh.still_receiving:
        # An operator asked: dbpilot's own failed probe is enough, as long as no replica still receives.
        check = check.__class__(check.name, True, f"requested by an operator; {fresh.reason}")
    ctx.state.confirmation = fresh.as_dict()
    if not check.ok:
        raise StepRefused(f"not confirmed: {check.detail}", [check.as_dict()])
    # Look before you fence: the job's own probe of the old primary (started with this step, beside the
    # survivors' probes) must have found it silent before the flag makes monitoring fence it.
    refuse_if_old_primary_answers(ctx, probe_old_primary(ctx), "before fencing")
    # From now on the old primary is fenced: whenever it reappears it is made read-only first (an abort
    # before promotion gives the flag back as it was, and its writes if this made it read-only).
    if ctx.state.old_primary_was_fenced is None:
        ctx.state.old_primary_was_fenced = ctx.server(old).fenced
    plan_io_stops(ctx)
    ctx.checkpoint()  # saved first: a resumed job must not read its own flag as "already fenced"
    Server.objects.filter(pk=ctx.server(old).pk).update(fenced=True)
    ctx.bump_epoch()
    return Done(f"{check.detail}; {old} fenced (made read-only whenever it reappears)")


def plan_io_stops(ctx: HaContext) -> None:
    """The survivors whose IO threads stop_replication will stop (those running or connecting now; one an
    operator stopped is left alone) and their sources, saved with confirm_failure's checkpoint: an abort
    starts exactly those again, whether or not a later save landed."""
    stopping = []
    for address in survivors(ctx):
        channel = ctx.probes[address].channel
        if channel is None or channel.io_running == "No":
            continue
        stopping.append(address)
        ctx.state.sources.setdefault(address, f"{channel.source_host}:{channel.source_port}")
    ctx.state.io_stopped = sorted(set(ctx.state.io_stopped) | set(stopping))


def fence_hook(ctx: HaContext) -> StepOutcome:
    """The `fence` hook runs first: the old primary's state is unknown (it does not answer). With
    `fence_required`, a failing hook refuses the failover before anything changed, and so does a missing
    one (settings saved before that was refused at save time): never a silent promotion."""
    if ctx.settings.fence_required and not ctx.settings.fence:
        detail = "fence_required is on but no fence hook is configured: set fence, or fence_required to false"
        raise StepRefused(detail, [{"name": "fence", "ok": False, "detail": detail}])
    if ctx.settings.fence:  # the hook may power it off: look once more right before
        refuse_if_old_primary_answers(ctx, fresh_old_primary_probe(ctx), "before the fence hook")
        if ctx.state.fence_started_at is None:
            refuse_unless_electable(ctx)
            # Saved and waited for (only with a fence hook, which takes far longer): from now on an abort
            # never points replication back at the old primary, nor gives it its writes back.
            ctx.state.fence_started_at = time.time()
            ctx.checkpoint()
    return ha_after.hook_step(ctx, "fence", "fence", "pre", refuse_on_failure=ctx.settings.fence_required)


def stop_replication(ctx: HaContext) -> StepOutcome:
    """Stop the IO threads of every survivor at once (a semi-sync replica takes about 2 s to stop when its
    source is frozen: in parallel, this is paid once). Their received positions stop moving, so the
    election and the catch-up work on a fixed picture. Whom it stops was saved before (plan_io_stops)."""
    # a resumed job that starts here has not probed yet: the survivors confirm_failure saved
    targets = survivors(ctx) if ctx.probes else list(ctx.state.io_stopped)

    def one(address: str) -> str:
        session = ctx.session(address)
        status = session.replication_status()
        if status is None:
            return "replicates from nothing"
        source = f"{status.get('Master_Host')}:{status.get('Master_Port')}"
        ctx.state.sources.setdefault(address, source)
        if status.get("Slave_IO_Running") == "No":
            return "IO thread already stopped"
        if session.dialect.mariadb:
            # A semi-sync replica's STOP SLAVE waits this long to kill its dump thread on a frozen source.
            session.execute(f"SET GLOBAL rpl_semi_sync_slave_kill_conn_timeout={SEMI_SYNC_KILL_CONN_TIMEOUT}")
        session.execute(f"{session.dialect.stop_replication()} IO_THREAD")
        return "IO thread stopped"

    outcomes = ctx.parallel(one, targets)
    stopped = {a for a, v in outcomes.items() if v == "IO thread stopped"}
    ctx.state.io_stopped = sorted(set(ctx.state.io_stopped) | stopped)
    failed = {a: str(v) for a, v in outcomes.items() if isinstance(v, Exception)}
    if failed:
        ctx.state.unreachable = sorted(failed)
    summary = ", ".join(f"{a}: {v}" for a, v in outcomes.items())
    return Done(summary or "no survivor to stop")


def _election(ctx: HaContext, topology) -> Election:
    return plan.failover_election(
        topology,
        ctx.probes,
        ctx.settings,
        lags=dict(ctx.params.get("lags") or {}),
        requested=ctx.params.get("candidate"),
        last_primary_state=gtid_history(ctx),
        last_received=ctx.params.get("last_received"),
        incident_since=ctx.params.get("incident_since"),
    )


def refuse_unless_electable(ctx: HaContext) -> None:
    """Before a fence hook (which may power the old primary off): a failover that will find no electable
    candidate must refuse now, while the old primary may still come back, not after it was powered off."""
    election = _election(ctx, ctx.probe(counted_down=ctx.state.old_primary))
    check = candidate_check(election)
    if not check.ok:
        ctx.state.election = election.as_dict()
        raise StepRefused(f"candidate: {check.detail}; the fence hook was not run", [check.as_dict()])


def elect_candidate(ctx: HaContext) -> StepOutcome:
    old = ctx.state.old_primary
    if ctx.state.promoted:
        return Done(f"{ctx.state.new_primary} (elected before; promotion had begun)")
    topology = ctx.probe(counted_down=old)  # the survivors' IO threads are stopped: their positions are final
    election = _election(ctx, topology)
    ctx.state.election = election.as_dict()
    checks = [candidate_check(election), errant_check(election)]
    ctx.state.election_checks = [ch.as_dict() for ch in checks]
    failing = blocking(checks)
    if failing:
        raise StepRefused(
            "candidate: " + "; ".join(f"{ch.name}: {ch.detail}" for ch in failing),
            [ch.as_dict() for ch in checks],
        )
    new = election.winner
    ctx.state.new_primary = new
    errant = {row["server"] for row in election.table if "errant" in row["flags"]}
    ctx.state.targets, ctx.state.not_repointed = repoint_plan.failover_targets(members(ctx), old, new, errant)
    failed = ctx.open_sessions([(a, "main") for a in [new, *ctx.state.targets]])
    if (new, "main") in failed:
        raise StepRefused(
            f"cannot connect to the candidate {new}: {failed[(new, 'main')]}",
            [{"name": "connect", "ok": False, "detail": failed[(new, "main")]}],
        )
    return Done(f"{new} ({election.reason})" + _catch_up_note(election))


def _catch_up_note(election: Election) -> str:
    if not election.catch_up_from:
        return ""
    return (
        "; it lacks transactions held by "
        + ", ".join(f"{s.server} ({s.missing})" for s in election.catch_up_from)
        + ": caught up from them next"
    )


def _apply_relay_log(ctx: HaContext, address: str, timeout: float) -> str:
    """Start the SQL thread if it stopped without an error, and wait until everything received is applied."""
    session = ctx.session(address)
    status = session.replication_status()
    if status is None:
        return "no relay log"
    if status.get("Last_SQL_Errno"):
        raise StepFailed(
            f"{address}: SQL thread error {status.get('Last_SQL_Errno')}: {status.get('Last_SQL_Error')}"
        )
    received = (status.get("Gtid_IO_Pos") or status.get("Retrieved_Gtid_Set") or "").replace("\n", "")
    if status.get("Slave_SQL_Running") != "Yes":
        if ctx.settings.semi_sync:
            session.execute(*session.dialect.semi_sync_source_off())
        session.start_replication("SQL_THREAD")
    if not received:
        return "nothing received"
    started = time.monotonic()
    if not session.wait_for_gtid(received, timeout):
        raise StepFailed(
            f"{address} did not apply its relay log up to {received} within {timeout:g}s "
            f"(it is at {session.executed_gtids()})"
        )
    return f"applied its relay log up to {received} in {(time.monotonic() - started) * 1000:.0f} ms"


def catch_up_candidate(ctx: HaContext) -> StepOutcome:
    """The candidate applies its whole relay log; then, for every survivor holding transactions it lacks
    (election.catch_up_from, errant sources excluded by the guard), it replicates from that survivor until
    it holds them. Never a silent loss: a timeout fails the job before anything is promoted."""
    new = ctx.state.new_primary
    look = fresh_old_primary_probe(ctx)  # beside the catch-up: checked once it is done
    timeout = min(
        ha_freeze.seconds(ctx.params.get("catchup_timeout_seconds"), RELAY_LOG_TIMEOUT_SECONDS),
        MAX_CATCHUP_SECONDS,
    )
    notes = [_apply_relay_log(ctx, new, timeout)]
    sources = [s for s in ctx.state.election.get("catch_up_from") or [] if not s.get("errant")]
    session = ctx.session(new)
    for source in sources:
        address = source["server"]
        status = ctx.session(address).replication_status() or {}
        delay = int(status.get("SQL_Delay") or 0)
        if delay > 0:
            # A delayed survivor (MASTER_DELAY) applies its relay log only after its delay: waiting for it
            # would always time out. What it applied is fetched; what it only received is not (said in
            # the result's gtid.not_fetched_from_delayed), and the failover goes on.
            received = (status.get("Gtid_IO_Pos") or status.get("Retrieved_Gtid_Set") or "").replace("\n", "")
            ctx.state.gtid["not_fetched_from_delayed"] = (
                f"{address} (MASTER_DELAY={delay}): received {received}"
            )
            notes.append(f"{address}: delayed by {delay}s, its relay log is not waited for")
        else:
            notes.append(f"{address}: " + _apply_relay_log(ctx, address, timeout))
        wanted = ctx.session(address).executed_gtids()
        if repoint_plan.position_contains(session.dialect.flavour, session.executed_gtids(), wanted):
            notes.append(f"already holds {address}'s {wanted}")
            continue
        host, port = ctx.host_port(address)
        session.stop_replication()
        session.change_source(host, port, ctx.replication)
        session.start_replication()
        started = time.monotonic()
        reached = session.wait_for_gtid(wanted, CATCH_UP_SOURCE_TIMEOUT_SECONDS)
        session.stop_replication()
        if not reached:
            raise StepFailed(
                f"{new} could not fetch {source['missing']} from {address} within "
                f"{CATCH_UP_SOURCE_TIMEOUT_SECONDS:g}s: not promoted, so they are not lost"
            )
        notes.append(
            f"fetched {source['missing']} from {address} in {(time.monotonic() - started) * 1000:.0f} ms"
        )
    ctx.state.gtid["candidate_caught_up"] = session.executed_gtids()
    refuse_if_old_primary_answers(ctx, look, "after the catch-up")
    return Done("; ".join(notes))


def promote_candidate(ctx: HaContext) -> StepOutcome:
    """STOP SLAVE; RESET SLAVE ALL and the semi-sync master side on the candidate, while every survivor is
    pointed at it and connects, in parallel (ha_promote.promote with connect=True)."""
    if not ctx.state.promoted:
        # The last moment: the catch-up's look counts when it is recent, else a new one (a crashed primary
        # refuses at once; a frozen one costs the probe's 0.3 s timeout).
        future, started = getattr(ctx, "last_old_primary_look", (None, 0.0))
        if future is None or time.monotonic() - started > LOOK_FRESH_SECONDS:
            future = fresh_old_primary_probe(ctx)
        refuse_if_old_primary_answers(ctx, future, "right before promotion")
    # Saved before the first change a resumed job must not redo from the start: it resumes here, and an
    # abort knows the candidate may have been promoted.
    if not ctx.state.promotion_started:
        ctx.state.promotion_started = True
    ctx.checkpoint()
    return ha_promote.promote(ctx, ctx.state.new_primary, list(ctx.state.targets), connect=True)


def repoint_replicas(ctx: HaContext) -> StepOutcome:
    """Every survivor replicates from the new primary with its IO thread connected (a resumed job, or a
    survivor that failed during promotion, is repointed here)."""
    skipped = ctx.state.not_repointed
    if not ctx.state.targets:
        note = (
            ("; not repointed: " + ", ".join(f"{a} ({why})" for a, why in skipped.items())) if skipped else ""
        )
        return Done("no survivor to repoint" + note)
    return ha_promote.repoint(ctx, ctx.state.new_primary, list(ctx.state.targets), left_out=skipped)


def fence_answering_old_primary(ctx: HaContext) -> str | None:
    """Right before writes open elsewhere: if the old primary answers again (a stall ended after the
    promotion), make it read-only first (killing the sessions that hold that up); refuse to open writes
    when that fails, so two writable servers never exist."""
    old = ctx.state.old_primary
    probe = fresh_old_primary_probe(ctx).result()
    _record_look(ctx, "before opening writes", probe.outcome)
    if probe.outcome not in ALIVE_OUTCOMES:
        return None
    if probe.reachable and probe.read_only:
        return f"{old} answers again, read-only already"
    try:
        # commits hanging on a semi-sync acknowledgement hold the lock read_only needs: they are ended in
        # the order that releases none of them with an OK (clusters.adapters.fence)
        done = fence.make_read_only(old, ctx.admin, ctx.probe_options, guard=lambda: ctx.lease_valid())
    except ServerError as exc:
        raise StepFailed(
            f"{old} answers again and could not be made read-only ({exc}): writes are not opened "
            f"on {ctx.state.new_primary}, two writable servers must never exist"
        ) from None
    return f"{old} answered again: {done} before writes opened"


def open_writes(ctx: HaContext) -> StepOutcome:
    fenced_note = None if ctx.state.writes_opened else fence_answering_old_primary(ctx)
    if fenced_note:
        ctx.state.old_primary_fenced_at_open = fenced_note
    outcome = ha_promote.open_writes(ctx, ctx.state.new_primary, ctx.state.old_primary, fence_demoted=True)
    if ctx.state.writes_opened_at is None:
        ctx.state.writes_opened_at = time.time()
    return outcome


def replicas_read_only(ctx: HaContext) -> StepOutcome:
    """read_only=1 on every repointed survivor (the old primary is fenced by monitoring when it returns)."""
    return ha_after.replicas_read_only(ctx, list(ctx.state.targets), unreachable_ok=False)


def verify_replication(ctx: HaContext) -> StepOutcome:
    return ha_after.verify_replication(ctx, ctx.state.new_primary, list(ctx.state.targets))


def record_rpo(ctx: HaContext) -> StepOutcome:
    old = ctx.state.old_primary
    held = ctx.state.gtid.get("new_primary_at_promotion") or ctx.state.gtid.get("candidate_caught_up") or ""
    # Semi-sync findings open on the old primary when it failed (or resolved since: it went unobserved).
    recent = timezone.now() - timedelta(seconds=RECENT_FINDINGS_SECONDS)
    findings = list(
        Finding.objects.filter(cluster_id=ctx.cluster.pk, server=ctx.server(old))
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=recent))
        .values_list("code", flat=True)
    )
    unreachable = [a for a, why in (ctx.state.not_repointed).items() if why == "not reachable"]
    # The old primary's semi-sync state as the last healthy ticks saw it, not the cluster's settings.
    rpo = plan.rpo_statement(
        survivors_hold=held,
        settings=ctx.settings,
        old_primary=old,
        primary_findings=findings,
        unreachable_replicas=unreachable,
        observed=ctx.params.get("semi_sync_at_incident"),
        observed_known=True,
    )
    ctx.state.rpo = rpo
    return Done(f"{rpo['guarantee']}: survivors hold {held or '(nothing)'}; {rpo['risk']}")


# --- abort -----------------------------------------------------------------------------------------------


def observe_for_abort(ctx: HaContext) -> list[failover_abort.Observed]:
    """A fresh probe of every server, in parallel (the old primary with the short timeout): which one is
    writable, whom each replicates from, whether the candidate's semi-sync master side is on."""
    old = ctx.state.old_primary

    def one(address: str) -> failover_abort.Observed:
        if address == old:
            POOL.discard_address(address)
        options = _quick_options(ctx) if address == old else ctx.probe_options
        probe = probe_server(address, ctx.admin, options)
        if not probe.reachable:
            return failover_abort.Observed(address, reachable=False)
        channel = probe.channel
        return failover_abort.Observed(
            address,
            reachable=True,
            read_only=probe.read_only,
            source=f"{channel.source_host}:{channel.source_port}" if channel else None,
            io_running=channel is not None and channel.io_running in ("Yes", "Connecting", "Preparing"),
            semi_sync_master=bool(probe.semi_sync_master_enabled),
        )

    outcomes = ctx.parallel(one, ctx.addresses)
    return [
        v if isinstance(v, failover_abort.Observed) else failover_abort.Observed(a, reachable=False)
        for a, v in outcomes.items()
    ]


def saved_for_abort(ctx: HaContext) -> failover_abort.Saved:
    st = ctx.state
    return failover_abort.Saved(
        old_primary=st.old_primary,
        candidate=st.new_primary,
        promotion_started=bool(st.promotion_started),
        promoted=bool(st.promoted),
        writes_opened=bool(st.writes_opened),
        io_stopped=tuple(st.io_stopped),
        sources=dict(st.sources),
        old_primary_was_fenced=st.old_primary_was_fenced,
        fence_ran=fence_ran(ctx),
    )


def fence_ran(ctx: HaContext) -> bool:
    """The fence hook succeeded, or was started and its outcome is unknown (its worker died meanwhile): the
    old primary may be fenced (powered off, cut off). A hook that failed did not fence it."""
    outcome = ctx.state.hooks.get("fence")
    if outcome is not None:
        return bool(outcome.get("ok"))
    return ctx.state.fence_started_at is not None


def abort_failover(ctx: HaContext, step: str, reason: str) -> str | None:
    """Leave the cluster safe, judged from what the servers say now as well as from the saved state
    (clusters.domain.failover_abort.decide): once writes are open anywhere nothing is undone; a promoted
    candidate stays read-only (never a second writable server), a person decides; before promotion the
    survivors replicate again from where they did (never from the old primary once a fence ran), and the
    old primary gets its flag and, when it is still the most advanced server, its writes back."""
    if ctx.state.old_primary is None:
        return None  # refused before the job changed anything
    decision = failover_abort.decide(saved_for_abort(ctx), observe_for_abort(ctx))
    ctx.state.abort_decision = {"phase": decision.phase, "writable": list(decision.writable)}
    if decision.phase == failover_abort.WRITES_OPEN:
        if ctx.state.writes_opened:
            return None
        new = ctx.state.new_primary
        if new and list(decision.writable) in ([new], sorted([new, ctx.state.old_primary])):
            # An earlier attempt opened writes and died before saving so: the inventory follows the servers.
            ha_promote.record_primary(ctx, new, ctx.state.old_primary, fence_demoted=True)
            return f"{decision.reason}; {new} recorded as the cluster's primary"
        return decision.reason
    if decision.phase == failover_abort.PROMOTED:
        return decision.reason
    notes = []
    old = ctx.state.old_primary
    if decision.unflag_old_primary:
        # Nobody was promoted: the old primary is still the cluster's primary, not a server to fence.
        Server.objects.filter(pk=ctx.server(old).pk).update(fenced=False)
        notes.append(f"{old} no longer marked fenced")
    if decision.reopen_old_primary:
        notes.append(reopen_old_primary(ctx, old))
    elif fence_ran(ctx):
        notes.append(f"the fence hook ran on {old}: it stays fenced and nothing replicates from it")
    for address, original in decision.restart.items():
        try:
            session = ctx.session(address)
            if original is not None:
                host, port = original.rsplit(":", 1)
                session.stop_replication()
                session.change_source(host, int(port), ctx.replication)
                notes.append(f"{address} points at {original} again")
            session.start_replication()
            notes.append(f"{address} replication started")
        except (ServerError, KeyError, ValueError) as exc:
            notes.append(f"{address}: could not restart replication ({exc})")
    notes.extend(f"{a}: {why}" for a, why in decision.left_alone.items())
    return "; ".join(notes) or None


def reopen_old_primary(ctx: HaContext, old: str) -> str:
    """An abort before promotion: the old primary is still the cluster's primary. If it answers and is
    read-only (a tick fenced it while this job had it flagged, or it restarted read-only as configured),
    give it its writes back, once no other server is writable and none holds a transaction it lacks.
    Nothing else is changed on it."""
    probe = fresh_old_primary_probe(ctx).result()
    if not probe.reachable:
        return f"{old} does not answer ({probe.outcome}): left as it is"
    if not probe.read_only:
        return f"{old} is writable"
    try:
        session = ctx.session(old)
        mine = session.executed_gtids()
        for address in ctx.addresses:
            if address == old or address in ctx.state.unreachable:
                continue
            other = ctx.session(address)
            if not other.read_only():
                return f"{old} left read-only: {address} is writable (two writable servers must never exist)"
            theirs = other.executed_gtids()
            if not repoint_plan.position_contains(session.dialect.flavour, mine, theirs):
                return f"{old} left read-only: {address} holds transactions it lacks ({theirs} vs {mine})"
        session.set_read_only(False)
    except ServerError as exc:
        return f"{old} left read-only: {exc}"
    record_event(
        ctx.cluster.pk,
        "writes_reopened",
        f"Writes reopened on {old}: the failover was aborted before "
        "any promotion and it is still the most advanced server",
        severity="warning",
        data={"server": old, "job_id": ctx.job_id},
    )
    return f"{old} writable again (read_only=0): nothing was promoted"


# --- the plan ---------------------------------------------------------------------------------------------

KIND = "failover"

PLAN = Plan(
    kind=KIND,
    # Until writes are open the steps are quiet: each one's outcome is saved in the background when it
    # ends (no step waits for the control-plane database, except at the checkpoints named above).
    steps=(
        StepSpec("confirm_failure", confirm_failure, quiet=True, saved_in_background=True),
        StepSpec("fence_hook", fence_hook, quiet=True, saved_in_background=True),
        StepSpec("stop_replication", stop_replication, quiet=True, saved_in_background=True),
        StepSpec("elect_candidate", elect_candidate, quiet=True, saved_in_background=True),
        StepSpec(
            "pre_failover_hook",
            lambda ctx: ha_after.hook_step(ctx, "pre_failover", KIND, "pre", refuse_on_failure=False),
            quiet=True,
            saved_in_background=True,
        ),
        StepSpec("catch_up_candidate", catch_up_candidate, quiet=True, saved_in_background=True),
        StepSpec("promote_candidate", promote_candidate, quiet=True, saved_in_background=True),
        StepSpec("repoint_replicas", repoint_replicas, quiet=True, saved_in_background=True),
        StepSpec("open_writes", open_writes, quiet=True, saved_in_background=True),
        StepSpec("routes_new_primary", lambda ctx: ha_after.routes_step(ctx, PRIMARY_CHANGED)),
        StepSpec(
            "post_failover_hook",
            lambda ctx: ha_after.hook_step(ctx, "post_failover", KIND, "post", refuse_on_failure=False),
        ),
        StepSpec("replicas_read_only", replicas_read_only),
        StepSpec("verify_replication", verify_replication),
        StepSpec("record_rpo", record_rpo),
    ),
    context=HaContext,
    abort=abort_failover,
)
