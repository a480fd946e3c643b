"""Repair without a DBA: rebuild a server in place, rejoin a returning server by a chosen method (clearing
its quarantine), and a rolling restart on request. Each is a job; what cannot be done at once is a 409
that says why (clusters.services.provisioning.ProvisionConflict), bad input a 400 (ProvisionError).

    POST /api/v1/clusters/{id}/servers/{server_id}/rebuild/   -> rebuild job (provisioned clusters)
    POST /api/v1/clusters/{id}/servers/{server_id}/rejoin/    -> rejoin job {"method": ...} (any cluster)
    POST /api/v1/clusters/{id}/restart/                        -> rolling_restart job (provisioned clusters)
"""

from __future__ import annotations

from django.db import transaction

from clusters.domain.rejoin_plan import RejoinMethodError, parse_rejoin_method
from clusters.jobs import rebuild_steps, rejoin_steps
from clusters.jobs.engine import ActiveJobExists, create_job
from clusters.jobs.runner import start_job
from clusters.models import ACTIVE_JOB_STATES, HA_JOB_KINDS, Cluster, Job, Server
from clusters.services.provisioning import (
    ProvisionConflict,
    ProvisionError,
    send_long_job,
    start_long_job,
)
from clusters.services.quarantine import end_quarantine

NOT_OWNED = (
    "dbpilot does not own the servers of a registered cluster, so it cannot wipe and clone {what}: rebuild "
    "it by hand (mariadb-backup from a replica, then replicate from the primary by GTID: its quarantine "
    "then ends by itself), or provision the cluster with dbpilot"
)


def _long_job_active(cluster: Cluster) -> Job | None:
    return (
        Job.objects.filter(cluster=cluster, state__in=ACTIVE_JOB_STATES)
        .exclude(kind__in=HA_JOB_KINDS)
        .first()
    )


def request_rebuild(cluster: Cluster, server: Server, *, requested_by: str) -> Job:
    """Wipe the server and clone it again from a healthy replica (or the primary)."""
    if cluster.origin != Cluster.Origin.PROVISIONED or not server.instance:
        raise ProvisionConflict(NOT_OWNED.format(what=server.address), "not_owned")
    if server.pk == cluster.primary_id:
        raise ProvisionConflict(
            f"{server.address} is the primary: switch over to another server first, then rebuild it",
            "primary_refused",
        )
    if cluster.primary_id is None:
        raise ProvisionConflict("the cluster has no primary to clone from", "no_primary")
    active = _long_job_active(cluster)
    if active is not None:  # an HA job (a rejoin handing over by reseed) may be active: it ends at once
        raise ProvisionConflict(
            f"job {active.id} ({active.kind}, {active.state}) is active on this cluster: wait for it to finish",
            "job_active",
        )
    job = create_job(cluster, rebuild_steps.KIND, params={"server_id": server.pk}, requested_by=requested_by)
    send_long_job(job.id)
    return job


def _start_rebuild_for_reseed(cluster: Cluster, server: Server, requested_by: str) -> Job:
    with transaction.atomic():
        return request_rebuild(cluster, server, requested_by=requested_by)


rejoin_steps.REBUILD_STARTER = _start_rebuild_for_reseed


def request_rejoin(cluster: Cluster, server: Server, data: dict, *, requested_by: str) -> Job:
    """An operator's rejoin: `{"method": "gtid" | "flashback" | "reseed" | [...]}` (default: the cluster's
    rejoin_method). Its quarantine is cleared first (it stays fenced, so it stays read-only until the job
    makes it a replica); the job tries GTID first, then the methods in order."""
    if not isinstance(data, dict):
        raise ProvisionError({"body": 'must be an object: {} or {"method": "flashback"}'})
    unknown = sorted(set(data) - {"method"})
    if unknown:
        raise ProvisionError({k: "unknown field" for k in unknown})
    method = data.get("method")
    if method is not None:
        try:
            method = list(parse_rejoin_method(method))
        except RejoinMethodError as exc:
            raise ProvisionError({"method": str(exc)}) from None
        if method == ["none"]:
            raise ProvisionError({"method": '"none" quarantines: nothing to request'})
    if server.pk == cluster.primary_id:
        raise ProvisionConflict(
            f"{server.address} is the primary: there is nothing to rejoin", "primary_refused"
        )
    if Job.objects.active_ha(cluster.pk) is not None:
        active = Job.objects.active_ha(cluster.pk)
        raise ProvisionConflict(
            f"job {active.id} ({active.kind}) is active on this cluster: wait for it to finish", "job_active"
        )
    params: dict = {"server": server.address}
    if method is not None:
        params["method"] = method
    with transaction.atomic():
        if server.quarantined:
            end_quarantine(cluster, server, f"rejoin requested by {requested_by}", by=requested_by)
            # Still fenced: monitoring keeps it read-only until the job makes it a replica.
            Server.objects.filter(pk=server.pk).update(fenced=True)
        try:
            job = create_job(cluster, rejoin_steps.KIND, params=params, requested_by=requested_by)
        except ActiveJobExists as exc:
            raise ProvisionConflict(str(exc), "job_active") from None
    start_job(job.pk, from_request=True)
    return job


def request_restart(cluster: Cluster, *, requested_by: str) -> Job:
    """A rolling restart: replicas one by one, a switchover, then the old primary (clusters/jobs/rolling_steps.py)."""
    if cluster.origin != Cluster.Origin.PROVISIONED:
        raise ProvisionConflict(
            "dbpilot does not own the servers of a registered cluster, so it cannot restart them: restart "
            "them yourself, replicas first, then a switchover (POST .../switchover/), then the old primary",
            "not_owned",
        )
    return start_long_job(cluster, "rolling_restart", requested_by=requested_by, params={"restart": True})
