"""After (and beside) the switch: hooks, routes, replication verified, replicas read-only. State in
`ctx.state`: hooks, routes, routes_ok, routes_told_leaving."""

from __future__ import annotations

import logging
import time

from clusters import hotstate
from clusters.adapters.mysql import ServerError
from clusters.domain.probe import REFUSED, TIMEOUT
from clusters.domain.repoint_plan import points_at, replicating
from clusters.events import record_event
from clusters.hooks import run_hook
from clusters.jobs.context import HaContext
from clusters.jobs.ha_promote import start_applying
from clusters.jobs.steps import Done, Skipped, SoftFailure, StepOutcome, StepRefused
from clusters.routes import PRIMARY_CHANGED, PRIMARY_LEAVING, announce_new_primary, announce_primary_leaving

log = logging.getLogger(__name__)


def hook_step(
    ctx: HaContext, setting: str, event: str, phase: str, *, refuse_on_failure: bool
) -> StepOutcome:
    """Run the hook named by a cluster setting (pre_failover, post_failover, fence)."""
    name = getattr(ctx.settings, setting)
    if not name:
        return Skipped(f"no {setting} hook configured")
    result = run_hook(
        name,
        event=event,
        phase=phase,
        cluster=ctx.label,
        old_primary=ctx.state.old_primary or "",
        new_primary=ctx.state.new_primary or "",
    )
    extra = {"output": result.output, "exit_code": result.exit_code, "timed_out": result.timed_out}
    ctx.state.hooks[setting] = {
        "name": name,
        "ok": result.ok,
        "exit_code": result.exit_code,
        "timed_out": result.timed_out,
    }
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
            results = announce_primary_leaving(
                ctx.cluster, old, replicas=replicas, epoch=ctx.cluster.epoch, job_id=ctx.job_id
            )
        else:
            results = announce_new_primary(
                ctx.cluster,
                new,
                old_primary=old,
                replicas=replicas,
                epoch=ctx.cluster.epoch,
                job_id=ctx.job_id,
            )
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
    record_event(
        ctx.cluster.pk,
        "route_stale",
        f"Route(s) not updated by job {ctx.job_id}: {'; '.join(stale)}",
        severity="error",
        data={"job_id": ctx.job_id, "phase": phase, "routes": stale},
    )
    return SoftFailure(f"stale route(s): {'; '.join(stale)}")


def verify_replication(
    ctx: HaContext, primary: str, targets: list[str], timeout: float = 10.0
) -> StepOutcome:
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
                start_applying(ctx, session)
                started = True
            if time.monotonic() > deadline:
                error = status.get("Last_IO_Error") or status.get("Last_SQL_Error") or ""
                raise RuntimeError(
                    f"IO {status.get('Slave_IO_Running')}, SQL {status.get('Slave_SQL_Running')}"
                    + (f": {error}" if error else "")
                )
            time.sleep(0.05)

    outcomes = ctx.parallel(one, targets)
    failed = [f"{a}: {v}" for a, v in outcomes.items() if isinstance(v, Exception)]
    seen = [a for a, v in outcomes.items() if not isinstance(v, Exception)]
    if seen:
        # Witnesses of this primary from now on: a crash right after the job (before the next tick saw
        # them receiving) is confirmed by them (clusters.domain.detection's last-received rule).
        hotstate.note_receiving(ctx.cluster.pk, seen, time.time())
    if failed:
        return SoftFailure(f"not replicating from {primary}: {'; '.join(failed)}", fails_job=True)
    if not targets:
        return Skipped("no replica")
    return Done(f"{len(targets)} replica(s) replicating from {primary} with IO and SQL running")


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
    unreachable = [
        a
        for a, v in outcomes.items()
        if unreachable_ok and isinstance(v, ServerError) and v.outcome in (REFUSED, TIMEOUT)
    ]
    failed = [f"{a}: {v}" for a, v in outcomes.items() if isinstance(v, Exception) and a not in unreachable]
    summary = ", ".join(
        [f"{a} {v}" for a, v in outcomes.items() if not isinstance(v, Exception)]
        + [f"{a} not reachable (left as it is)" for a in unreachable]
    )
    if failed:
        return SoftFailure(f"could not make read-only: {'; '.join(failed)}", fails_job=True)
    return Done(summary or "no replica")
