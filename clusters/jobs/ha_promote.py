"""Promote and repoint, the HA primitives of the switch itself: promote the candidate while the others are
pointed at it (`promote`), start them following it (`repoint`), open writes and record the new primary.

Each takes the job's `HaContext` and explicit arguments, checks the servers' state first (a resumed job may
run it again), writes what it decided and did into `ctx.state` (clusters.jobs.state.JobState: promoted,
repoint_prepared, repointed, writes_opened, write_freeze_ms, epoch, gtid marks) and returns a detail."""

from __future__ import annotations

import logging
import time

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from clusters.adapters.executor import ServerSession
from clusters.domain.repoint_plan import by_gtid, by_own_history, connected_to, points_at, replicating
from clusters.events import record_event
from clusters.jobs.context import HaContext
from clusters.jobs.steps import Done, Skipped, SoftFailure, StepOutcome
from clusters.models import Cluster, Server

log = logging.getLogger(__name__)

ALREADY_REPLICATING = "already replicating from it"
FREEZE_SESSION = "freeze"  # holds FLUSH TABLES WITH READ LOCK on the old primary
SEMI_SYNC_CLIENT_WAIT_SECONDS = 1.0


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
        session.semi_sync_as_primary(
            ctx.settings.semi_sync_timeout_ms, ctx.settings.semi_sync_on_timeout == "wait"
        )
        done.append(f"semi-sync master side on (AFTER_SYNC, on timeout: {ctx.settings.semi_sync_on_timeout})")
    ctx.state.promoted = True
    ctx.state.gtid["new_primary_at_promotion"] = session.executed_gtids()
    return "; ".join(done)


def prepare_repoint(ctx: HaContext, new_primary: str, address: str, demoted: str | None = None) -> str:
    """Point `address` at `new_primary` by GTID (1 s retry and heartbeat, MASTER_DELAY kept) without
    starting it. Semi-sync: the slave side on before its IO thread starts.

    The demoted primary keeps the freeze's read lock until the new primary is writable (users with READ
    ONLY ADMIN write through read_only, not through the lock): it replicates from its gtid_current_pos,
    which holds its own transactions, because `SET GLOBAL gtid_slave_pos` waits behind the lock;
    `release_demoted` moves it to slave_pos once writes are open. Any other server found replicating
    from current_pos (a demoted primary a failed job left so) first takes its whole history as its slave
    position, since its gtid_slave_pos may be stale."""
    host, port = ctx.host_port(new_primary)
    session = ctx.session(address)
    status = session.replication_status()
    own = address == demoted
    by_position = by_own_history if own else by_gtid
    pointed = status is not None and points_at(status, host, port) and by_position(status)
    if pointed and replicating(status):
        return ALREADY_REPLICATING
    delay = int(status.get("SQL_Delay") or 0) if status else 0
    if status is not None and not pointed:
        session.stop_replication()
        if not own and by_own_history(status) and not by_gtid(status):
            session.adopt_own_history()
    if ctx.settings.semi_sync:
        session.execute(*session.dialect.semi_sync_replica_side())  # the master side goes off in repoint
    if not pointed:
        session.change_source(host, port, ctx.replication, delay, own_history=own)
    ctx.prepared.add((address, new_primary))
    return (
        ("from its own history (current_pos), " if own else "")
        + "pointed at it"
        + (f" (MASTER_DELAY {delay}s kept)" if delay else "")
    )


def connect_replica(ctx: HaContext, new_primary: str, address: str, demoted: str | None = None) -> str:
    """Point `address` at `new_primary` (unless this worker already did) and start its IO thread at once
    (what semi-sync needs before writes open); its SQL thread starts in the background once its own
    semi-sync master side is off (`verify_replication` waits for it), the demoted primary's only after its
    read lock is released."""
    note = ""
    if (address, new_primary) not in ctx.prepared:
        note = prepare_repoint(ctx, new_primary, address, demoted)
        if note == ALREADY_REPLICATING:
            return note
    session = ctx.session(address)
    session.start_replication("IO_THREAD")
    if address == demoted:
        # Under the freeze's read lock its SQL thread would wait for the lock even with nothing to apply,
        # and STOP SLAVE would then hang (measured, MariaDB 10.11): `release_demoted` starts it.
        return "IO thread started, SQL thread once its read lock is released" + (f" ({note})" if note else "")
    ctx.background[address] = ctx.submit(start_applying, ctx, session)
    return "IO thread started" + (f" ({note})" if note else "")


def promote(
    ctx: HaContext, candidate: str, targets: list[str], *, demoted: str | None = None, connect: bool = False
) -> StepOutcome:
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
    return Done(
        detail
        + (f"; meanwhile {notes}" if notes else "")
        + (f"; NOT yet repointed: {failed}" if failed else "")
    )


def start_applying(ctx: HaContext, session: ServerSession) -> None:
    """The semi-sync master side off (a former primary has it on), then the SQL thread."""
    if ctx.settings.semi_sync:
        session.execute(*session.dialect.semi_sync_source_off())
    session.start_replication("SQL_THREAD")


def repoint(
    ctx: HaContext,
    new_primary: str,
    targets: list[str],
    *,
    demoted: str | None = None,
    left_out: dict[str, str] | None = None,
) -> StepOutcome:
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
                    ctx.background[address] = ctx.submit(start_applying, ctx, session)
                return "connected"
        return connect_replica(ctx, new_primary, address, demoted)

    outcomes = ctx.parallel(one, list(targets))
    ctx.state.repointed = {a: str(v) for a, v in outcomes.items()}
    failed = [f"{a}: {v}" for a, v in outcomes.items() if isinstance(v, Exception)]
    summary = ", ".join(f"{a} {v}" for a, v in outcomes.items() if not isinstance(v, Exception))
    note = (
        ("; not repointed: " + ", ".join(f"{a} ({why})" for a, why in left_out.items())) if left_out else ""
    )
    if failed:
        return SoftFailure(
            f"NOT repointed to {new_primary}: {'; '.join(failed)}"
            + (f"; {summary}" if summary else "")
            + note,
            fails_job=True,
        )
    if not targets:
        return Skipped("no other server to repoint" + note)
    return Done(f"replicating from {new_primary} by GTID: {summary}" + note)


def open_writes(
    ctx: HaContext, new_primary: str, demoted: str | None, *, fence_demoted: bool = False
) -> StepOutcome:
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


def record_primary(
    ctx: HaContext, new_primary: str, demoted: str | None, *, fence_demoted: bool = False
) -> None:
    """The inventory follows: Cluster.primary, a bumped epoch, the event. A server demoted by a switchover
    is a healthy, read-only replica: it is not fenced (fencing is for servers failed over away from,
    `fence_demoted`)."""
    server = ctx.server(new_primary)
    with transaction.atomic():
        Cluster.objects.filter(pk=ctx.cluster.pk).update(
            primary=server, epoch=F("epoch") + 1, updated_at=timezone.now()
        )
        Server.objects.filter(pk=server.pk).update(fenced=False)
        if demoted:
            Server.objects.filter(pk=ctx.server(demoted).pk).update(fenced=fence_demoted)
        epoch = Cluster.objects.filter(pk=ctx.cluster.pk).values_list("epoch", flat=True).first()
        record_event(
            ctx.cluster.pk,
            "primary_changed",
            f"Primary is now {new_primary} (job {ctx.job_id})",
            data={
                "primary": new_primary,
                "server_id": server.pk,
                "old_primary": demoted,
                "job_id": ctx.job_id,
                "epoch": epoch,
            },
        )
    ctx.cluster.primary = server
    ctx.cluster.epoch = epoch
    ctx.state.epoch = epoch
