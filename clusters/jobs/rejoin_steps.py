"""The steps of the rejoin job: a fenced server (an old primary a failover left behind) becomes a replica of
the current primary, when it holds nothing the primary lacks.

    check_server     fresh probes: it answers, the primary is up, it is read-only (fenced again if not),
                     and its GTIDs are a subset of the primary's (else it is quarantined: refused)
    repoint          STOP SLAVE; gtid_slave_pos = @@gtid_binlog_pos; semi-sync slave side; CHANGE MASTER
                     to the primary by GTID (1 s retry and heartbeat); START SLAVE
    verify           IO and SQL running from the primary
    unfence          read_only confirmed, the fence flag cleared, the epoch bumped

Params: {"server": "host:port"}.
"""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from clusters.adapters.mysql import POOL
from clusters.domain import failover_plan as plan
from clusters.domain.repoint_plan import by_gtid, points_at, replicating
from clusters.events import record_event
from clusters.jobs import ha_after
from clusters.jobs.context import HaContext
from clusters.jobs.steps import Done, Plan, StepOutcome, StepRefused, StepSpec
from clusters.models import Cluster, Server


def _server(ctx: HaContext) -> str:
    return ctx.params["server"]


def check_server(ctx: HaContext) -> StepOutcome:
    address = _server(ctx)
    POOL.discard_address(address)  # it restarted: connections pooled before that are dead
    topology = ctx.probe()
    probe = ctx.probes.get(address)
    primary = topology.primary_view
    if probe is None or not probe.reachable:
        raise StepRefused(
            f"{address} does not answer", [{"name": "server_up", "ok": False, "detail": "not reachable"}]
        )
    if primary is None or primary.address == address or primary.state != "up":
        detail = f"no live primary to rejoin (primary {primary.address if primary else 'unknown'})"
        raise StepRefused(detail, [{"name": "primary_up", "ok": False, "detail": detail}])
    ctx.state.primary = primary.address
    ctx.state.new_primary = primary.address
    session = ctx.session(address)
    notes = []
    if not session.read_only():
        session.set_read_only(True)
        notes.append("made read-only")
    extra = plan.extra_transactions(probe, ctx.probes[primary.address])
    if extra is None:
        detail = "its GTIDs cannot be compared with the primary's"
        raise StepRefused(detail, [{"name": plan.CHECK_NO_EXTRA_GTIDS, "ok": False, "detail": detail}])
    if extra:
        quarantine(ctx.cluster, ctx.server(address), extra, primary.address)
        detail = f"{address} holds transactions {primary.address} lacks: {', '.join(extra)}; quarantined"
        raise StepRefused(detail, [{"name": plan.CHECK_NO_EXTRA_GTIDS, "ok": False, "detail": detail}])
    ctx.state.server_gtid_binlog_pos = probe.gtid_binlog_pos or probe.gtid_executed
    notes.append(f"its GTIDs are all on {primary.address}")
    return Done("; ".join(notes))


def repoint(ctx: HaContext) -> StepOutcome:
    address, primary = _server(ctx), ctx.state.primary
    session = ctx.session(address)
    host, port = ctx.host_port(primary)
    status = session.replication_status()
    if status is not None and points_at(status, host, port) and by_gtid(status) and replicating(status):
        return Done(f"already replicating from {primary}")
    if status is not None:
        session.stop_replication()
    session.adopt_own_history()  # its own transactions are in gtid_binlog_pos; gtid_slave_pos is stale
    if ctx.settings.semi_sync:
        session.semi_sync_as_replica()
    session.change_source(host, port, ctx.replication)
    session.start_replication()
    ctx.bump_epoch()
    return Done(
        f"replicating from {primary} by GTID from its own position {ctx.state.server_gtid_binlog_pos}"
    )


def verify(ctx: HaContext) -> StepOutcome:
    return ha_after.verify_replication(ctx, ctx.state.primary, [_server(ctx)])


def unfence(ctx: HaContext) -> StepOutcome:
    address = _server(ctx)
    session = ctx.session(address)
    if ctx.settings.replicas_read_only and not session.read_only():
        session.set_read_only(True)
    Server.objects.filter(pk=ctx.server(address).pk).update(fenced=False)
    Cluster.objects.filter(pk=ctx.cluster.pk).update(epoch=F("epoch") + 1, updated_at=timezone.now())
    record_event(
        ctx.cluster.pk,
        "server_rejoined",
        f"{address} rejoined as a replica of {ctx.state.primary} (job {ctx.job_id})",
        data={"server": address, "primary": ctx.state.primary, "job_id": ctx.job_id},
    )
    return Done(f"{address} is a read-only replica of {ctx.state.primary}; fence flag cleared")


def quarantine(cluster: Cluster, server: Server, gtids: list[str], primary: str | None) -> None:
    """Mark the server quarantined: it holds transactions the cluster lacks, so it never rejoins by itself
    (recover or discard them, then rebuild it)."""
    changed = Server.objects.filter(pk=server.pk, quarantined=False).update(quarantined=True, fenced=True)
    if changed:
        record_event(
            cluster.pk,
            "server_quarantined",
            f"{server.address} holds transactions the primary {primary or '?'} lacks: {', '.join(gtids)}. "
            "Quarantined: it stays read-only and does not rejoin; recover or discard them, then rebuild it.",
            severity="error",
            data={"server": server.address, "server_id": server.pk, "gtids": gtids, "primary": primary},
        )


# --- the plan ---------------------------------------------------------------------------------------------

KIND = "rejoin"

PLAN = Plan(
    kind=KIND,
    steps=(
        StepSpec("check_server", check_server),
        StepSpec("repoint", repoint),
        StepSpec("verify_replication", verify),
        StepSpec("unfence", unfence),
    ),
    context=HaContext,
)
