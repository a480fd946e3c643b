"""Step functions HA plans compose: freeze a live primary, wait for a candidate, promote, repoint, open
writes, record the new primary, routes, hooks, restore settings, replicas read-only.

Each takes the job's `HaContext` and explicit arguments, checks the servers' state before acting (so a
resumed job can run it again), and returns a short detail for the step record. What later steps (or a
resumed job) need goes into `ctx.state` (clusters.jobs.state.JobState, saved in the result):

    old_primary, new_primary      addresses
    gtid                          {"old_primary_final", "new_primary_at_promotion", ...}
    writes_rejected, promoted     how far the switch went (the plan's abort reads them)
    old_primary_max_connections   the value to restore on the demoted server
    routes, routes_ok             what each route said, per phase
"""
from __future__ import annotations

import concurrent.futures
import logging
import math
import time

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from clusters.adapters.executor import ServerSession
from clusters.adapters.mysql import ServerError
from clusters.domain.probe import REFUSED, TIMEOUT
from clusters.domain.repoint_plan import by_gtid, connected_to, points_at, position_contains, replicating
from clusters.events import record_event
from clusters.hooks import run_hook
from clusters.jobs.context import HaContext
from clusters.jobs.steps import Done, Skipped, SoftFailure, StepFailed, StepOutcome, StepRefused
from clusters.models import Cluster, Server
from clusters.routes import PRIMARY_CHANGED, PRIMARY_LEAVING, announce_new_primary, announce_primary_leaving

log = logging.getLogger(__name__)

LOWERED_MAX_CONNECTIONS = 10  # MariaDB's minimum; dbpilot's CONNECTION ADMIN gets a slot beyond it
SEMI_SYNC_CLIENT_WAIT_SECONDS = 1.0
ALREADY_REPLICATING = "already replicating from it"
FREEZE_SESSION = "freeze"  # holds FLUSH TABLES WITH READ LOCK on the old primary


# --- hooks and routes ------------------------------------------------------------------------------------


def hook_step(ctx: HaContext, setting: str, event: str, phase: str, *, refuse_on_failure: bool) -> StepOutcome:
    """Run the hook named by a cluster setting (pre_failover, post_failover, fence)."""
    name = getattr(ctx.settings, setting)
    if not name:
        return Skipped(f"no {setting} hook configured")
    result = run_hook(name, event=event, phase=phase, cluster=ctx.label,
                      old_primary=ctx.state.old_primary or "", new_primary=ctx.state.new_primary or "")
    extra = {"output": result.output, "exit_code": result.exit_code, "timed_out": result.timed_out}
    ctx.state.hooks[setting] = {"name": name, "ok": result.ok, "exit_code": result.exit_code,
                                                   "timed_out": result.timed_out}
    if result.ok:
        return Done(result.summary(), extra)
    if refuse_on_failure:
        detail = f"{setting} {result.summary()}: refused before writes stop"
        raise StepRefused(detail, [{"name": setting, "ok": False, "detail": result.summary()}], extra)
    return SoftFailure(result.summary(), fails_job=False, extra=extra)


def routes_step(ctx: HaContext, phase: str) -> StepOutcome:
    """Tell every route of the cluster; a failing route is recorded (routes_ok false), never fatal."""
    old = ctx.state.old_primary
    new = ctx.state.new_primary
    replicas = [a for a in ctx.addresses if a != (new if phase == PRIMARY_CHANGED else old)]
    try:
        if phase == PRIMARY_LEAVING:
            ctx.state.routes_told_leaving = True
            results = announce_primary_leaving(ctx.cluster, old, replicas=replicas, epoch=ctx.cluster.epoch,
                                               job_id=ctx.job_id)
        else:
            results = announce_new_primary(ctx.cluster, new, old_primary=old, replicas=replicas,
                                           epoch=ctx.cluster.epoch, job_id=ctx.job_id)
    except Exception as exc:  # noqa: BLE001 - routes never fail an HA job: they are reported stale
        log.exception("job %s: routes (%s) failed", ctx.job_id, phase)
        ctx.state.routes_ok = False
        ctx.state.routes[phase] = [{"route": "*", "ok": False, "detail": str(exc)}]
        return SoftFailure(f"could not tell the routes: {exc.__class__.__name__}: {exc}")
    ctx.state.routes[phase] = [r.as_dict() for r in results]
    ok = all(r.ok for r in results)
    ctx.state.routes_ok = bool(ctx.state.routes_ok is not False and ok)
    if not results:
        return Skipped("no routes registered for this cluster")
    if ok:
        return Done(f"{len(results)} route(s) updated")
    stale = [f"{r.route}: {r.detail}" for r in results if not r.ok]
    record_event(ctx.cluster.pk, "route_stale", f"Route(s) not updated by job {ctx.job_id}: {'; '.join(stale)}",
                 severity="error", data={"job_id": ctx.job_id, "phase": phase, "routes": stale})
    return SoftFailure(f"stale route(s): {'; '.join(stale)}")


# --- freezing a live primary -----------------------------------------------------------------------------


def _freeze(session: ServerSession, lowered: int) -> int:
    session.set_read_only(True)
    kept = session.set_max_connections(lowered)
    session.lock_tables_for_freeze()
    return kept


def reject_writes(ctx: HaContext, address: str, successor: str | None = None,
                  followers: list[str] | tuple[str, ...] = ()) -> StepOutcome:
    """Stop writes on a live primary: read_only=1 (super_read_only on MySQL), max_connections lowered,
    FLUSH TABLES WITH READ LOCK held by the job's freeze session (lock_wait_timeout bounded). Client
    sessions are killed at once, except writes already running (a statement, a commit, an open write
    transaction), which the freeze waits for: they get `switchover_wait_kill_ms` to finish, then are
    killed. Once the freeze holds nothing can commit, so every client session left is killed then.
    Replication threads and dbpilot's own sessions are never killed. Records the final GTID position.

    With a `successor`, the primary is first pointed at it as an inert (never started) replication source,
    and the `followers` (the other replicas) stop and are pointed at it too, not started: the frozen
    window then does not wait for those STOP SLAVE and CHANGE MASTER (relay log files: tens of ms). The
    successor still replicates from the primary, so what the primary commits meanwhile is acknowledged
    and reaches it; the followers get it from the successor later, by GTID. An abort points everything
    back (restore_primary)."""
    freeze = ctx.session(address, FREEZE_SESSION)
    killer = ctx.session(address)  # lists and kills sessions while the freeze session may be blocked
    variables = freeze.variables()
    original = int(variables["max_connections"])
    if ctx.state.old_primary_max_connections is None:  # a re-run must not keep the lowered one
        ctx.state.old_primary_max_connections = original
    lowered = min(ctx.state.old_primary_max_connections, LOWERED_MAX_CONNECTIONS)
    freeze.flush_tables_quietly()  # so the FLUSH TABLES WITH READ LOCK below takes a millisecond
    ctx.bump_epoch()
    # Saved before anything changes: an abort (or a resumed job) restores writes and max_connections.
    ctx.state.writes_rejected = True
    ctx.checkpoint()
    if successor is not None:
        status = ctx.session(address).replication_status()
        host, port = ctx.host_port(successor)
        if status is not None and replicating(status) and not points_at(status, host, port):
            raise StepFailed(f"{address} replicates from {status.get('Master_Host')}: it is not a primary")

        def point_primary() -> None:
            if status is None or not (points_at(status, host, port) and by_gtid(status)):
                ctx.session(address).change_source(host, port, ctx.replication, 0)

        pending_points = [ctx.submit(point_primary)] + [
            ctx.submit(prepare_repoint, ctx, successor, follower) for follower in followers]
        for future in pending_points:
            try:
                future.result()
            except ServerError as exc:  # promote tries again; the primary's own one must work
                if future is pending_points[0]:
                    raise StepFailed(f"could not point {address} at {successor}: {exc}") from exc
    started = time.monotonic()
    ctx.state.freeze_started_at = time.time()
    deadline = started + ctx.settings.switchover_wait_kill_ms / 1000
    give_up = deadline + freeze.lock_wait_timeout + 2
    pending = ctx.submit(_freeze, freeze, lowered)
    killed_at_once: list[int] = []
    killed_late: list[str] = []
    while True:
        sessions = killer.client_sessions(ctx.admin.user)
        if pending.done():
            if pending.exception() is None:
                # Writes are frozen: no transaction can commit any more, so nothing is left to wait for.
                killed_at_once += killer.kill([x.id for x in sessions])
            break
        # Until the freeze holds, a running write (a statement, a commit) may be what it waits for: those
        # get switchover_wait_kill_ms to finish; every other session is killed at once.
        writing = [x for x in sessions if x.writing]
        idle = [x.id for x in sessions if x not in writing]
        if idle:
            killed_at_once += killer.kill(idle)
        now = time.monotonic()
        if now >= deadline and writing:
            killer.kill([x.id for x in writing])
            killed_late += [f"{x.user}@{x.host} {x.command.lower()} {x.info[:60]!r}" for x in writing]
        if now >= give_up:
            break
        concurrent.futures.wait([pending], timeout=0.003)
    try:
        kept = pending.result(timeout=max(0.0, give_up - time.monotonic()) + 1)
    except (ServerError, concurrent.futures.TimeoutError) as exc:
        raise StepFailed(f"could not freeze writes on {address}: {exc}") from exc
    final = freeze.executed_gtids()
    ctx.state.gtid["old_primary_final"] = final
    ctx.state.lowered_max_connections = kept
    parts = [f"read_only=1, max_connections {ctx.state.old_primary_max_connections}→{kept}, "
             f"FLUSH TABLES WITH READ LOCK held; final position {final}",
             f"killed {len(set(killed_at_once))} client session(s) at once"]
    if killed_late:
        parts.append(f"killed {len(killed_late)} write(s) still running after {ctx.settings.switchover_wait_kill_ms} ms: "
                     + "; ".join(killed_late[:5]))
    return Done("; ".join(parts))


def wait_for_position(ctx: HaContext, address: str, position: str | None, timeout: float) -> StepOutcome:
    """Wait (bounded) until `address` has applied `position`; StepFailed on timeout.

    None means the position was never recorded (refuse to guess); "" means the old primary has no
    transaction at all (a fresh cluster), so there is nothing to wait for."""
    if position is None:
        raise StepFailed("the position to wait for is unknown")
    if position == "":
        return Done("the old primary has executed no transaction: nothing to wait for")
    session = ctx.session(address)
    have = session.executed_gtids()
    if position_contains(session.dialect.flavour, have, position):
        return Done(f"{address} is at {have}: already includes {position}")
    started = time.monotonic()
    if not session.wait_for_gtid(position, timeout):
        have = session.executed_gtids()
        raise StepFailed(f"{address} did not reach {position} within {timeout:g}s (it is at {have})")
    return Done(f"{address} reached {position} in {(time.monotonic() - started) * 1000:.0f} ms")


def start_stopped_replicas(ctx: HaContext, primary: str) -> StepOutcome:
    """START SLAVE on replicas of `primary` whose IO or SQL thread is stopped."""
    def start(address: str) -> str | None:
        session = ctx.session(address)
        status = session.replication_status()
        if status is None or replicating(status):
            return None
        session.start_replication()
        return address

    targets = [a for a in ctx.addresses if a != primary and not ctx.server(a).maintenance]
    outcomes = ctx.parallel(start, targets)
    started = [a for a in targets if isinstance(outcomes[a], str)]
    failed = {a: str(v) for a, v in outcomes.items() if isinstance(v, Exception)}
    if failed:
        return SoftFailure("could not start replication on " + "; ".join(f"{a}: {e}" for a, e in failed.items()),
                           extra={"started": started})
    if not started:
        return Skipped("every replica's threads were running")
    return Done(f"started replication on {', '.join(started)}")


def promote_candidate(ctx: HaContext, candidate: str) -> str:
    """STOP SLAVE; RESET SLAVE ALL on the candidate (never RESET MASTER); the semi-sync master side on it.
    Writes stay off (read_only) until the replicas follow it."""
    session = ctx.session(candidate)
    status = session.replication_status()
    done = []
    if status is not None:
        session.stop_replication()
        session.reset_replication_all()
        done.append(f"{session.dialect.stop_replication()}; {session.dialect.reset_replication_all()}")
    else:
        done.append("already replicates from nothing")
    if ctx.settings.semi_sync:
        session.semi_sync_as_primary(ctx.settings.semi_sync_timeout_ms, ctx.settings.semi_sync_on_timeout == "wait")
        done.append(f"semi-sync master side on (AFTER_SYNC, on timeout: {ctx.settings.semi_sync_on_timeout})")
    ctx.state.promoted = True
    ctx.state.gtid["new_primary_at_promotion"] = session.executed_gtids()
    return "; ".join(done)


def prepare_repoint(ctx: HaContext, new_primary: str, address: str, demoted: str | None = None) -> str:
    """Point `address` at `new_primary` by GTID (1 s retry and heartbeat, MASTER_DELAY kept) without
    starting it. The demoted primary first releases the freeze lock and takes its own history as its
    slave position. Semi-sync: the slave side on before its IO thread starts."""
    host, port = ctx.host_port(new_primary)
    session = ctx.session(address)
    status = session.replication_status()
    pointed = status is not None and points_at(status, host, port) and by_gtid(status)
    if address == demoted and ctx.has_session(address, FREEZE_SESSION):
        ctx.session(address, FREEZE_SESSION).unlock_tables()
    if pointed and replicating(status):
        return ALREADY_REPLICATING
    delay = int(status.get("SQL_Delay") or 0) if status else 0
    if status is not None and not pointed:
        session.stop_replication()
    if address == demoted:
        session.adopt_own_history()
    if ctx.settings.semi_sync:
        session.execute(*session.dialect.semi_sync_replica_side())  # the master side goes off in repoint
    if not pointed:
        session.change_source(host, port, ctx.replication, delay)
    ctx.prepared.add((address, new_primary))
    return ("own history as its slave position, " if address == demoted else "") + "pointed at it" + (
        f" (MASTER_DELAY {delay}s kept)" if delay else "")


def connect_replica(ctx: HaContext, new_primary: str, address: str, demoted: str | None = None) -> str:
    """Point `address` at `new_primary` (unless this worker already did) and start its IO thread at once
    (what semi-sync needs before writes open); its SQL thread starts in the background once its own
    semi-sync master side is off (`verify_replication` waits for it)."""
    note = ""
    if (address, new_primary) not in ctx.prepared:
        note = prepare_repoint(ctx, new_primary, address, demoted)
        if note == ALREADY_REPLICATING:
            return note
    session = ctx.session(address)
    session.start_replication("IO_THREAD")
    ctx.background[address] = ctx.submit(_start_applying, ctx, session)
    return "IO thread started" + (f" ({note})" if note else "")


def promote(ctx: HaContext, candidate: str, targets: list[str], *, demoted: str | None = None,
            connect: bool = False) -> StepOutcome:
    """Promote the candidate while, in parallel, every target stops replicating and is pointed at it:
    `connect=False` leaves them stopped until `repoint` starts them (once the candidate's semi-sync master
    side is on: a switchover, whose candidate is caught up already); `connect=True` starts their IO
    threads at once (a failover: the candidate's binlog already holds everything, its relay log applied,
    so they connect while it is being promoted and are semi-sync replicas by the time writes open)."""
    ctx.state.repoint_prepared = list(targets)
    meanwhile = connect_replica if connect else prepare_repoint
    pending = {a: ctx.submit(meanwhile, ctx, candidate, a, demoted) for a in targets}
    try:
        detail = promote_candidate(ctx, candidate)
    finally:
        prepared = {}
        for address, future in pending.items():
            try:
                prepared[address] = future.result()
            except Exception as exc:  # noqa: BLE001 - repoint tries again and reports
                prepared[address] = exc
        ctx.state.repointed = {a: str(v) for a, v in prepared.items()}
    notes = ", ".join(f"{a} {v}" for a, v in prepared.items() if not isinstance(v, Exception))
    failed = "; ".join(f"{a}: {v}" for a, v in prepared.items() if isinstance(v, Exception))
    return Done(detail + (f"; meanwhile {notes}" if notes else "") + (f"; NOT yet repointed: {failed}" if failed else ""))


def _start_applying(ctx: HaContext, session: ServerSession) -> None:
    """The semi-sync master side off (a former primary has it on), then the SQL thread."""
    if ctx.settings.semi_sync:
        session.execute(*session.dialect.semi_sync_source_off())
    session.start_replication("SQL_THREAD")


def repoint(ctx: HaContext, new_primary: str, targets: list[str], *, demoted: str | None = None,
            left_out: dict[str, str] | None = None) -> StepOutcome:
    """Every target replicates from the new primary with its IO thread connected: the ones `promote`
    prepared are started, the ones it connected are checked, the others (a resumed job, a target that
    failed during promotion) are repointed now. `left_out`: servers not repointed and why (named in the
    detail). SQL threads start in the background (`verify_replication` waits for them)."""
    host, port = ctx.host_port(new_primary)

    def one(address: str) -> str:
        if (address, new_primary) not in ctx.prepared or address in ctx.background:
            session = ctx.session(address)
            status = session.replication_status()
            if connected_to(status, host, port):
                if status.get("Slave_SQL_Running") != "Yes" and address not in ctx.background:
                    ctx.background[address] = ctx.submit(_start_applying, ctx, session)
                return "connected"
        return connect_replica(ctx, new_primary, address, demoted)

    outcomes = ctx.parallel(one, list(targets))
    ctx.state.repointed = {a: str(v) for a, v in outcomes.items()}
    failed = [f"{a}: {v}" for a, v in outcomes.items() if isinstance(v, Exception)]
    summary = ", ".join(f"{a} {v}" for a, v in outcomes.items() if not isinstance(v, Exception))
    note = ("; not repointed: " + ", ".join(f"{a} ({why})" for a, why in left_out.items())) if left_out else ""
    if failed:
        return SoftFailure(f"NOT repointed to {new_primary}: {'; '.join(failed)}" + (f"; {summary}" if summary else "")
                           + note, fails_job=True)
    if not targets:
        return Skipped("no other server to repoint" + note)
    return Done(f"replicating from {new_primary} by GTID: {summary}" + note)


def verify_replication(ctx: HaContext, primary: str, targets: list[str], timeout: float = 10.0) -> StepOutcome:
    """Every target replicates from `primary` with IO and SQL threads running (bounded wait); a SQL
    thread that a resumed job never started is started here (after the semi-sync master side is off)."""
    for address, future in list(ctx.background.items()):
        try:
            future.result(timeout)
        except Exception as exc:  # noqa: BLE001 - seen in the status below
            log.warning("job %s: starting the SQL thread on %s: %s", ctx.job_id, address, exc)
    host, port = ctx.host_port(primary)
    deadline = time.monotonic() + timeout

    def one(address: str) -> str:
        session = ctx.session(address)
        started = False
        while True:
            status = session.replication_status()
            if status is None or not points_at(status, host, port):
                raise RuntimeError(f"does not replicate from {primary}")
            if replicating(status):
                return "IO and SQL running"
            if status.get("Slave_SQL_Running") == "No" and not status.get("Last_SQL_Errno") and not started:
                _start_applying(ctx, session)
                started = True
            if time.monotonic() > deadline:
                error = status.get("Last_IO_Error") or status.get("Last_SQL_Error") or ""
                raise RuntimeError(f"IO {status.get('Slave_IO_Running')}, SQL {status.get('Slave_SQL_Running')}"
                                   + (f": {error}" if error else ""))
            time.sleep(0.05)

    outcomes = ctx.parallel(one, targets)
    failed = [f"{a}: {v}" for a, v in outcomes.items() if isinstance(v, Exception)]
    if failed:
        return SoftFailure(f"not replicating from {primary}: {'; '.join(failed)}", fails_job=True)
    if not targets:
        return Skipped("no replica")
    return Done(f"{len(targets)} replica(s) replicating from {primary} with IO and SQL running")


def open_writes(ctx: HaContext, new_primary: str, demoted: str | None, *, fence_demoted: bool = False) -> StepOutcome:
    """read_only=0 on the new primary (after at least one semi-sync replica connected, when semi-sync is
    on, so its first commits are not stuck); then record it as the cluster's primary (epoch bumped).
    `fence_demoted`: a failover marks the server it failed over away from as fenced."""
    session = ctx.session(new_primary)
    notes = []
    if ctx.settings.semi_sync and len(ctx.servers) > 1:
        clients = session.wait_for_semi_sync_clients(1, SEMI_SYNC_CLIENT_WAIT_SECONDS)
        notes.append(f"{clients} semi-sync replica(s) connected")
    was_read_only = session.read_only()
    if was_read_only:
        session.set_read_only(False)
    opened = time.time()
    ctx.state.writes_opened = True
    if ctx.state.freeze_started_at and ctx.state.write_freeze_ms is None:
        ctx.state.write_freeze_ms = round((opened - ctx.state.freeze_started_at) * 1000, 1)
    record_primary(ctx, new_primary, demoted, fence_demoted=fence_demoted)
    notes.insert(0, f"{new_primary} writable" + ("" if was_read_only else " (it already was)"))
    notes.append(f"cluster primary recorded, epoch {ctx.state.epoch}")
    return Done("; ".join(notes))


def restore_primary(ctx: HaContext, old_primary: str) -> str:
    """Undo a switchover that did not open writes elsewhere: every other server follows `old_primary`
    again, which gets its writes back (read_only=0, max_connections restored). Refused (the old primary
    stays read-only) when another server is writable: two writable servers must never exist."""
    others = [a for a in ctx.addresses if a != old_primary and a not in (ctx.state.unreachable)]
    for address in others:
        try:
            if not ctx.session(address).read_only():
                return f"{old_primary} left read-only: {address} is writable (two writable servers must never exist)"
        except ServerError as exc:
            return f"{old_primary} left read-only: cannot tell whether {address} is writable ({exc})"
    notes = []
    old = ctx.session(old_primary)
    if old.replication_status() is not None:
        old.stop_replication()
        old.reset_replication_all()
        notes.append(f"{old_primary}'s new replication configuration removed")

    def follow(address: str) -> str:
        note = prepare_repoint(ctx, old_primary, address)
        if note != "already replicating from it":
            session = ctx.session(address)
            if ctx.settings.semi_sync:
                session.execute(*session.dialect.semi_sync_source_off())
            session.start_replication()
        return note

    outcomes = ctx.parallel(follow, others)
    moved = [a for a, v in outcomes.items() if isinstance(v, str) and v != "already replicating from it"]
    failed = [f"{a}: {v}" for a, v in outcomes.items() if isinstance(v, Exception)]
    if moved:
        notes.append(f"{', '.join(moved)} replicate from {old_primary} again")
    if failed:
        notes.append(f"could not repoint back: {'; '.join(failed)}")
    if ctx.has_session(old_primary, FREEZE_SESSION):
        ctx.session(old_primary, FREEZE_SESSION).unlock_tables()
    original = ctx.state.old_primary_max_connections
    if original:
        old.set_max_connections(int(original))
    if ctx.settings.semi_sync:
        old.semi_sync_as_primary(ctx.settings.semi_sync_timeout_ms, ctx.settings.semi_sync_on_timeout == "wait")
    old.set_read_only(False)
    ctx.state.writes_rejected = False
    ctx.bump_epoch()
    notes.insert(0, f"writes restored on {old_primary} (read_only=0"
                 + (f", max_connections {original}" if original else "") + ")")
    return "; ".join(notes)


def record_primary(ctx: HaContext, new_primary: str, demoted: str | None, *, fence_demoted: bool = False) -> None:
    """The inventory follows: Cluster.primary, a bumped epoch, the event. A server demoted by a switchover
    is a healthy, read-only replica: it is not fenced (fencing is for servers failed over away from,
    `fence_demoted`)."""
    server = ctx.server(new_primary)
    with transaction.atomic():
        Cluster.objects.filter(pk=ctx.cluster.pk).update(primary=server, epoch=F("epoch") + 1, updated_at=timezone.now())
        Server.objects.filter(pk=server.pk).update(fenced=False)
        if demoted:
            Server.objects.filter(pk=ctx.server(demoted).pk).update(fenced=fence_demoted)
        epoch = Cluster.objects.filter(pk=ctx.cluster.pk).values_list("epoch", flat=True).first()
        record_event(ctx.cluster.pk, "primary_changed", f"Primary is now {new_primary} (job {ctx.job_id})",
                     data={"primary": new_primary, "server_id": server.pk, "old_primary": demoted,
                           "job_id": ctx.job_id, "epoch": epoch})
    ctx.cluster.primary = server
    ctx.cluster.epoch = epoch
    ctx.state.epoch = epoch


# --- after the switch ------------------------------------------------------------------------------------


def restore_max_connections(ctx: HaContext, address: str) -> StepOutcome:
    original = ctx.state.old_primary_max_connections
    if not original:
        return Skipped("max_connections was not changed")
    session = ctx.session(address)
    current = int(session.variables()["max_connections"])
    if current == int(original):
        return Skipped(f"max_connections is {current} already")
    kept = session.set_max_connections(int(original))
    return Done(f"max_connections {current}→{kept} on {address}")


def replicas_read_only(ctx: HaContext, targets: list[str], *, unreachable_ok: bool = True) -> StepOutcome:
    """read_only=1 (super_read_only on MySQL) on every target, per `replicas_read_only`. `unreachable_ok`:
    a target that is down cannot take writes either (if it returns writable, monitoring opens
    REPLICA_NOT_READ_ONLY, and a fenced one is fenced), so only a reachable server we failed to set fails."""
    if not ctx.settings.replicas_read_only:
        return Skipped("replicas_read_only is off: replicas left as they are")

    def one(address: str) -> str:
        session = ctx.session(address)
        if session.read_only() and session.dialect.mariadb:
            return "already read-only"
        session.set_read_only(True)
        return "read_only=1"

    outcomes = ctx.parallel(one, list(targets))
    unreachable = [a for a, v in outcomes.items()
                   if unreachable_ok and isinstance(v, ServerError) and v.outcome in (REFUSED, TIMEOUT)]
    failed = [f"{a}: {v}" for a, v in outcomes.items() if isinstance(v, Exception) and a not in unreachable]
    summary = ", ".join([f"{a} {v}" for a, v in outcomes.items() if not isinstance(v, Exception)]
                        + [f"{a} not reachable (left as it is)" for a in unreachable])
    if failed:
        return SoftFailure(f"could not make read-only: {'; '.join(failed)}", fails_job=True)
    return Done(summary or "no replica")


def seconds(value, default: float) -> float:
    """A positive, finite number of seconds from a job parameter, else the default."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) and number > 0 else default
