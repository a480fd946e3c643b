"""Parameter groups: create one, and change one (dynamic settings go live on every server of every cluster
using it; static ones are marked pending restart and applied by a rolling restart, in one
`apply_parameters` job per cluster)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from clusters.domain.parameters import ParameterError, plan_change, validate_parameters
from clusters.events import record_event
from clusters.models import Cluster, Job, ParameterGroup
from tenants.validation import NAME_PATTERN


def create_group(tenant, name, raw_parameters) -> ParameterGroup:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ParameterError({"name": "required: 1-63 lowercase letters, digits and dashes"})
    parameters = validate_parameters(raw_parameters or {})
    try:
        with transaction.atomic():
            return ParameterGroup.objects.create(tenant=tenant, name=name, parameters=parameters)
    except IntegrityError:
        raise ParameterError(
            {"name": f"a parameter group named {name!r} already exists in this tenant"}
        ) from None


def effective(cluster: Cluster, group_parameters: dict) -> dict:
    """A cluster's settings: its group's, overridden by its own `provision.parameters`."""
    return {**group_parameters, **((cluster.provision or {}).get("parameters") or {})}


def change_group(group: ParameterGroup, parameters: dict, *, requested_by: str) -> list[Job]:
    """Save the group and start an apply_parameters job on every cluster using it; returns the jobs."""
    old = dict(group.parameters)
    group.parameters = parameters
    group.save(update_fields=["parameters", "updated_at"])
    jobs = []
    for cluster in Cluster.objects.filter(parameter_group=group).select_for_update():
        job = _apply_change(
            cluster,
            effective(cluster, old),
            effective(cluster, parameters),
            f"Parameter group {group.name} changed by {requested_by}",
            group.name,
            requested_by,
        )
        if job is not None:
            jobs.append(job)
    return jobs


def assign_group(cluster: Cluster, group: ParameterGroup | None, *, requested_by: str) -> Job | None:
    """Give a provisioned cluster another parameter group (None: none); what changes is applied like a
    group change (one apply_parameters job). None when the effective settings stay the same."""
    from clusters.services.provisioning import ProvisionConflict

    if cluster.origin != Cluster.Origin.PROVISIONED:
        raise ProvisionConflict(
            "only a provisioned cluster has a parameter group; this one is registered", "not_provisioned"
        )
    # Lock the cluster row only: PostgreSQL cannot lock the nullable side of the outer join to its group.
    cluster = (
        Cluster.objects.select_for_update(of=("self",)).select_related("parameter_group").get(pk=cluster.pk)
    )
    old = dict(cluster.parameter_group.parameters) if cluster.parameter_group else {}
    new = dict(group.parameters) if group else {}
    label = group.name if group else "(none)"
    if cluster.parameter_group_id == (group.pk if group else None):
        return None
    # The job's first step rewrites every my.cnf from the cluster's group: it must see the new one.
    Cluster.objects.filter(pk=cluster.pk).update(parameter_group=group)
    return _apply_change(
        cluster,
        effective(cluster, old),
        effective(cluster, new),
        f"Parameter group of {cluster.name} set to {label} by {requested_by}",
        label,
        requested_by,
    )


def _apply_change(
    cluster: Cluster, old: dict, new: dict, why: str, group_label: str, requested_by: str
) -> Job | None:
    """Mark the static settings that changed as pending restart, record the change, start the job."""
    from clusters.services.provisioning import start_long_job

    change = plan_change(old, new)
    if not (change.live or change.needs_restart):
        return None
    if change.needs_restart:
        provision = dict(cluster.provision or {})
        provision["pending_restart"] = {
            **provision.get("pending_restart", {}),
            **change.pending_restart,
            **{name: "(default)" for name in change.removed},
        }
        Cluster.objects.filter(pk=cluster.pk).update(provision=provision)
    record_event(
        cluster.pk,
        "parameters_changed",
        f"{why}: live {sorted(change.live)}, pending restart {sorted(change.pending_restart)}",
        data={"live": change.live, "pending_restart": change.pending_restart},
    )
    return start_long_job(
        cluster,
        "apply_parameters",
        requested_by=requested_by,
        params={
            "live": change.live,
            "restart": change.needs_restart,
            "pending_restart": change.pending_restart,
            "group": group_label,
        },
    )
