"""Replacing a lost server of a provisioned cluster (started by clusters.services.replacement after
`replace_after_seconds`): a new replica is placed, cloned from a healthy server and wired exactly as
add_replica does (clusters/jobs/scale_steps.py); only then does the dead one leave the inventory, so the
cluster never has fewer healthy servers than before.

    choose_host       the provider's placement for the new server, away from the dead one's host
                      (Provider.replacement_host: the `hosts` provider's rules; None for local, one host)
    place_replica .. register_server   as add_replica
    retire_dead       the dead server's row removed, its instance destroyed when the provider still has it

Params: {"server_id": the dead server's id}.
"""

from __future__ import annotations

from clusters.events import record_event
from clusters.jobs import scale_steps as sc
from clusters.jobs.provision_context import ProvisionContext
from clusters.jobs.steps import Done, Plan, Skipped, StepFailed, StepOutcome, StepSpec
from clusters.models import Server
from clusters.providers.base import ProviderError

KIND = "replace_server"


def _dead(ctx: ProvisionContext) -> dict:
    if "replaced" not in ctx.result:
        row = Server.objects.filter(cluster_id=ctx.cluster.pk, pk=ctx.params.get("server_id")).first()
        if row is None:
            raise StepFailed(f"server {ctx.params.get('server_id')} is no longer in this cluster")
        if row.pk == ctx.cluster.primary_id:
            raise StepFailed(f"{row.address} is the primary: a failover comes first")
        ctx.result["replaced"] = {"id": row.pk, "address": row.address, "instance": row.instance}
    return ctx.result["replaced"]


def choose_host(ctx: ProvisionContext) -> StepOutcome:
    dead = _dead(ctx)
    others = [s.instance for s in Server.objects.filter(cluster_id=ctx.cluster.pk).exclude(pk=dead["id"])]
    try:
        host = ctx.provider.replacement_host(dead["instance"], others)
    except ProviderError as exc:
        raise StepFailed(f"no host for the replacement of {dead['address']}: {exc}") from None
    ctx.result["replacement_host"] = host
    if host is None:
        return Skipped(f"the {ctx.provider.name} provider places servers by itself")
    return Done(f"the replacement of {dead['address']} goes on {host}")


def retire_dead(ctx: ProvisionContext) -> StepOutcome:
    dead = _dead(ctx)
    new = ctx.state.servers[0]
    Server.objects.filter(cluster_id=ctx.cluster.pk, pk=dead["id"]).delete()
    try:
        destroyed = bool(dead["instance"]) and ctx.provider.destroy(dead["instance"])
    except ProviderError:
        destroyed = False  # its host is gone: nothing to remove there now
    record_event(
        ctx.cluster.pk,
        "server_replaced",
        f"{dead['address']} was down too long: replaced by {new.address} (job {ctx.job_id})",
        severity="warning",
        data={"server": dead["address"], "replacement": new.address, "job_id": ctx.job_id},
    )
    return Done(
        f"{dead['address']} removed from the inventory"
        + ("; its instance destroyed" if destroyed else "; its instance was already gone")
    )


PLAN = Plan(
    kind=KIND,
    steps=(
        StepSpec("choose_host", choose_host),
        StepSpec("place_replica", sc.place_replica),
        StepSpec("clone", sc.clone),
        StepSpec("start_replica", sc.start_replica),
        StepSpec("replicate", sc.replicate),
        StepSpec("semi_sync", sc.semi_sync),
        StepSpec("register_server", sc.register_server),
        StepSpec("retire_dead", retire_dead),
    ),
    context=ProvisionContext,
    abort=sc.abort_add_replica,
)
