"""Rebuilding a server of a provisioned cluster in place: its data is wiped and cloned again from a healthy
replica (the primary when there is none) with `mariadb-backup --stream`, through the provider that owns it,
reusing the add-replica clone path (clusters/jobs/scale_steps.py). Its address and server_id stay; the
rebuilt server replicates from the primary by GTID, and its fence and quarantine flags are cleared.

    choose_source   the target (never the primary: switch over first) and the clone's source: a running,
                    replicating replica that is not fenced or quarantined, else the primary
    wipe            the target killed and its data deleted (Provider.wipe), its place kept
    clone           as add_replica: bytes copied on the step while it runs
    start_replica   started read-only from its configuration
    replicate       gtid_slave_pos = the clone's position, CHANGE MASTER to the primary by GTID, caught up
    semi_sync       acknowledging as a semi-sync replica (when the cluster uses it)
    finish          the row's flags cleared, an event

Params: {"server_id": N}. Also what `rejoin_method: reseed` runs (clusters.jobs.rejoin_steps.reseed).
"""

from __future__ import annotations

import re

from clusters.events import record_event
from clusters.jobs import scale_steps as sc
from clusters.jobs.provision_context import PlacedServer, ProvisionContext
from clusters.jobs.steps import Done, Plan, StepFailed, StepOutcome, StepSpec
from clusters.models import Server
from clusters.providers.base import ProviderError

KIND = "rebuild"


def _target_row(ctx: ProvisionContext) -> Server:
    row = Server.objects.filter(cluster_id=ctx.cluster.pk, pk=ctx.params.get("server_id")).first()
    if row is None:
        raise StepFailed(f"server {ctx.params.get('server_id')} is not in this cluster")
    if not row.instance:
        raise StepFailed(f"{row.address} is not a server dbpilot placed: it cannot be rebuilt")
    return row


def choose_source(ctx: ProvisionContext) -> StepOutcome:
    if ctx.state.servers:
        return Done(f"resumed: {ctx.state.servers[0].instance} from {ctx.result['clone_source']}")
    row = _target_row(ctx)
    if row.pk == ctx.cluster.primary_id:
        raise StepFailed(f"{row.address} is the primary: switch over to another server first")
    primary = ctx.cluster.primary
    if primary is None or not primary.instance or not ctx.provider.running(primary.instance):
        raise StepFailed("the cluster has no running primary to rebuild from")
    candidates = [
        s
        for s in Server.objects.filter(cluster_id=ctx.cluster.pk).order_by("id")
        if s.pk not in (row.pk, primary.pk)
        and s.instance
        and not (s.fenced or s.quarantined or s.maintenance)
        and ctx.provider.running(s.instance)
        and _replicating(ctx, s.instance)
    ]
    source = candidates[0].instance if candidates else primary.instance
    match = re.search(r"-s(\d+)$", row.instance)
    server_id = int(match.group(1)) if match else 0
    ctx.state.servers.append(PlacedServer(row.instance, server_id, row.host, row.port, "replica"))
    ctx.result["clone_source"] = source
    ctx.result["rebuild"] = {"server": row.address, "server_id": row.pk, "source": source}
    ctx.save()
    ctx.checkpoint()
    return Done(f"{row.address} ({row.instance}) is rebuilt from {source}")


def _replicating(ctx: ProvisionContext, instance: str) -> bool:
    try:
        rows = ctx.sql(instance, "SHOW SLAVE STATUS")
    except Exception:  # noqa: BLE001 - not answering: not a source
        return False
    return (
        bool(rows) and rows[0].get("Slave_IO_Running") == "Yes" and rows[0].get("Slave_SQL_Running") == "Yes"
    )


def wipe(ctx: ProvisionContext) -> StepOutcome:
    target = ctx.state.servers[0]
    if ctx.result.get("rebuild", {}).get("wiped"):
        return Done("resumed: wiped before")
    try:
        ctx.provider.wipe(target.instance)
    except ProviderError as exc:
        raise StepFailed(f"wiping {target.instance}: {exc}") from None
    ctx.result["rebuild"]["wiped"] = True
    ctx.checkpoint()
    return Done(f"{target.address} stopped and its data deleted (address and server_id kept)")


def finish(ctx: ProvisionContext) -> StepOutcome:
    target = ctx.state.servers[0]
    row = _target_row(ctx)
    Server.objects.filter(pk=row.pk).update(fenced=False, quarantined=False)
    clone = ctx.result.get("clone", {})
    record_event(
        ctx.cluster.pk,
        "server_rebuilt",
        f"{target.address} rebuilt from {ctx.result['clone_source']} ({clone.get('bytes', 0) / 1e6:.1f} MB in "
        f"{clone.get('seconds', 0)} s) and replicating from the primary (job {ctx.job_id})",
        data={
            "server": target.address,
            "server_id": row.pk,
            "source": ctx.result["clone_source"],
            "job_id": ctx.job_id,
        },
    )
    return Done(f"{target.address} rebuilt; fence and quarantine flags cleared")


PLAN = Plan(
    kind=KIND,
    steps=(
        StepSpec("choose_source", choose_source),
        StepSpec("wipe", wipe),
        StepSpec("clone", sc.clone),
        StepSpec("start_replica", sc.start_replica),
        StepSpec("replicate", sc.replicate),
        StepSpec("semi_sync", sc.semi_sync),
        StepSpec("finish", finish),
    ),
    context=ProvisionContext,
)
