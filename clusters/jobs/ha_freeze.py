"""Before and around the switch: freeze a live primary (`reject_writes`), wait for the candidate, start
stopped replicas, give a switchover's old primary its writes back when the job is undone, restore the
settings the freeze changed. State in `ctx.state`: writes_rejected, freeze_started_at,
old_primary_max_connections, lowered_max_connections, gtid.old_primary_final."""

from __future__ import annotations

import concurrent.futures
import logging
import math
import threading
import time

from clusters.adapters.executor import ServerSession
from clusters.adapters.mysql import ServerError
from clusters.domain.repoint_plan import by_gtid, by_own_history, points_at, position_contains, replicating
from clusters.jobs.context import HaContext
from clusters.jobs.ha_promote import FREEZE_SESSION, prepare_repoint
from clusters.jobs.steps import Done, Skipped, SoftFailure, StepFailed, StepOutcome

log = logging.getLogger(__name__)

LOWERED_MAX_CONNECTIONS = 10  # MariaDB's minimum; dbpilot's CONNECTION ADMIN gets a slot beyond it


def _freeze(session: ServerSession, lowered: int) -> int:
    session.set_read_only(True)
    kept = session.set_max_connections(lowered)
    session.lock_tables_for_freeze()
    return kept


def _kill_reads_later(ctx: HaContext, address: str, session_ids: list[int], deadline: float) -> None:
    """Reads still running on the frozen primary at `deadline` (monotonic) are killed then, from a daemon
    thread on its own connection, while the job's lease holds (after the job it is a read on a read-only
    server: harmless, left alone)."""

    def kill() -> None:
        session = ServerSession(address, ctx.admin, ctx.options)
        session.guard = lambda: ctx.lease_valid()  # type: ignore[attr-defined]
        try:
            still = {x.id for x in session.client_sessions(ctx.admin.user) if x.running}
            session.kill([i for i in session_ids if i in still])
        except ServerError as exc:
            log.info("%s: reads left running after the grace: %s", address, exc)
        finally:
            session.close()

    timer = threading.Timer(max(0.0, deadline - time.monotonic()), kill)
    timer.daemon = True
    timer.start()


def reject_writes(
    ctx: HaContext, address: str, successor: str | None = None, followers: list[str] | tuple[str, ...] = ()
) -> StepOutcome:
    """Stop writes on a live primary: read_only=1 (super_read_only on MySQL), max_connections lowered,
    FLUSH TABLES WITH READ LOCK held by the job's freeze session (lock_wait_timeout bounded). Client
    sessions are killed at once, except the ones with a running statement (reads included) or an open
    write transaction, which the freeze waits for: they get `switchover_wait_kill_ms` to finish, then are
    killed. Once the freeze holds nothing can commit, so every client session left is killed then.
    Replication threads and dbpilot's own sessions are never killed. Records the final GTID position.

    With a `successor`, the primary is first pointed at it as an inert (never started) replication source
    from its own history (MASTER_USE_GTID=current_pos: read when its IO thread starts, under the lock),
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
            if status is None or not (points_at(status, host, port) and by_own_history(status)):
                ctx.session(address).change_source(host, port, ctx.replication, 0, own_history=True)

        pending_points = [ctx.submit(point_primary)] + [
            ctx.submit(prepare_repoint, ctx, successor, follower) for follower in followers
        ]
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
                # A running read cannot write either: it keeps its grace (killed at the deadline, below).
                reads = [x for x in sessions if x.running and not x.writing]
                killed_at_once += killer.kill([x.id for x in sessions if x not in reads])
                if reads:
                    _kill_reads_later(ctx, address, [x.id for x in reads], deadline)
            break
        # Until the freeze holds, a running statement (a read too: the read lock waits for it) or an open
        # write transaction gets switchover_wait_kill_ms to finish; idle sessions are killed at once.
        writing = [x for x in sessions if x.writing or x.running]
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
    parts = [
        f"read_only=1, max_connections {ctx.state.old_primary_max_connections}→{kept}, "
        f"FLUSH TABLES WITH READ LOCK held; final position {final}",
        f"killed {len(set(killed_at_once))} client session(s) at once",
    ]
    if killed_late:
        parts.append(
            f"killed {len(killed_late)} session(s) still running a statement or a write transaction after {ctx.settings.switchover_wait_kill_ms} ms: "
            + "; ".join(killed_late[:5])
        )
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
        return SoftFailure(
            "could not start replication on " + "; ".join(f"{a}: {e}" for a, e in failed.items()),
            extra={"started": started},
        )
    if not started:
        return Skipped("every replica's threads were running")
    return Done(f"started replication on {', '.join(started)}")


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
        old.semi_sync_as_primary(
            ctx.settings.semi_sync_timeout_ms, ctx.settings.semi_sync_on_timeout == "wait"
        )
    old.set_read_only(False)
    ctx.state.writes_rejected = False
    ctx.bump_epoch()
    notes.insert(
        0,
        f"writes restored on {old_primary} (read_only=0"
        + (f", max_connections {original}" if original else "")
        + ")",
    )
    return "; ".join(notes)


def release_demoted(ctx: HaContext, demoted: str, new_primary: str, timeout: float = 10.0) -> StepOutcome:
    """Once the new primary is writable: end the freeze on the demoted primary, then move its replication
    from gtid_current_pos to gtid_slave_pos (STOP SLAVE; gtid_slave_pos = gtid_binlog_pos; START SLAVE).
    Client sessions still there are killed before the lock goes (running reads excepted): a write waiting
    behind it would commit the moment it is released, an errant transaction on what is now a replica."""
    notes = []
    if ctx.has_session(demoted, FREEZE_SESSION):
        killer = ctx.session(demoted)
        sessions = killer.client_sessions(ctx.admin.user)
        # A read still running keeps its switchover_wait_kill_ms (reject_writes kills it then).
        reading = [x for x in sessions if x.running and not x.writing and not x.waiting_for_global_lock]
        killed = killer.kill([x.id for x in sessions if x not in reading])
        ctx.session(demoted, FREEZE_SESSION).unlock_tables()
        notes.append(
            f"read lock released after {new_primary} took writes"
            + (f" ({len(killed)} client session(s) waiting behind it killed first)" if killed else "")
        )
    applying = ctx.background.pop(demoted, None)
    if applying is not None:  # the SQL thread's start must not race the STOP SLAVE below
        try:
            applying.result(timeout)
        except Exception as exc:  # noqa: BLE001 - START SLAVE below starts it again
            log.warning("job %s: starting the SQL thread on %s: %s", ctx.job_id, demoted, exc)
    try:
        session = ctx.session(demoted)
        status = session.replication_status()
        host, port = ctx.host_port(new_primary)
        if status is None or not points_at(status, host, port):
            return SoftFailure(
                f"{demoted} does not replicate from {new_primary}; " + "; ".join(notes), fails_job=True
            )
        if not by_gtid(status):
            session.settle_slave_pos()
            notes.append("gtid_slave_pos = its gtid_binlog_pos, MASTER_USE_GTID=slave_pos")
        if by_gtid(status) and replicating(status):
            notes.append("replicating by gtid_slave_pos already")
        else:
            if ctx.settings.semi_sync:
                session.execute(*session.dialect.semi_sync_source_off())
            session.start_replication()
            notes.append("replication started")
    except ServerError as exc:
        notes.append(f"{demoted} NOT moved to gtid_slave_pos: {exc}")
        return SoftFailure("; ".join(notes), fails_job=True)
    return Done("; ".join(notes))


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


def seconds(value, default: float) -> float:
    """A positive, finite number of seconds from a job parameter, else the default."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) and number > 0 else default
