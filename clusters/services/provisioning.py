"""Provisioned clusters: validate a request, create the cluster row and its provision job; delete
(deprovision), stop and start; add and remove replicas. The jobs run on the `long` queue
(`workers.tasks.run_long_job`); their steps are in clusters/jobs/provision_steps.py and scale_steps.py.

Quotas count clusters, servers and memory (`Server.memory_mb`) per tenant; what is left is shown by
`GET /api/v1/quota/` (clusters.api.provisioning).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Sum

from clusters import senders
from clusters.domain.orphans import highest_first, instance_number
from clusters.domain.parameters import ParameterError, validate_parameters
from clusters.domain.settings import merge_settings
from clusters.events import record_event
from clusters.jobs import provision_context, runner
from clusters.jobs.engine import create_job
from clusters.jobs.provision_context import new_secrets
from clusters.models import ACTIVE_JOB_STATES, Cluster, DatabaseHost, Job, ParameterGroup, Server
from clusters.providers.hosts_provider import pool_room
from clusters.providers.registry import KNOWN_PROVIDERS, enabled_providers
from controlplane.crypto import encrypt_json
from tenants.models import Team, Tenant
from tenants.quotas import QuotaExceeded, check_quota
from tenants.services import grant_cluster
from tenants.validation import NAME_PATTERN

log = logging.getLogger(__name__)

MAX_REPLICAS = 8
DEFAULT_BACKUP_WINDOW = "02:00-04:00"  # UTC
DEFAULT_MEMORY_MB = 256
MEMORY_RANGE = (128, 65536)
USER_PATTERN = NAME_PATTERN
RESERVED_USERS = {"root", "dbpilot", "repl", "mariadb.sys", "mysql"}
LONG_JOB_KINDS = (
    "provision",
    "deprovision",
    "stop_cluster",
    "start_cluster",
    "add_replica",
    "remove_replica",
    "apply_parameters",
    "rolling_restart",
    "rebuild",
    "replace_server",
    "backup",  # clusters.services.backups
    "verify_backup",
    "restore",
)


class ProvisionError(ValueError):
    """Invalid provisioning request: `errors` maps a field to a message that says what to fix."""

    def __init__(self, errors: dict, code: str = "invalid"):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
        self.code = code


class ProvisionConflict(Exception):
    """The request cannot be done in the cluster's current state (409)."""

    def __init__(self, detail: str, code: str):
        super().__init__(detail)
        self.detail = detail
        self.code = code


@dataclass(frozen=True)
class ProvisionRequest:
    name: str
    provider: str
    replicas: int
    semi_sync: bool
    master_user: dict | None
    parameter_group: ParameterGroup | None
    parameters: dict[str, str]
    memory_mb: int
    settings: dict


def parse_request(tenant: Tenant, data: dict) -> ProvisionRequest:
    """Validate a `{"name", "provision": {...}, "settings"}` payload (no side effect)."""
    errors: dict[str, str] = {}
    name = data.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        errors["name"] = (
            "required: 1-63 lowercase letters, digits and dashes, starting and ending with a letter or digit"
        )
    elif Cluster.objects.filter(tenant=tenant, name=name).exists():
        errors["name"] = f"a cluster named {name!r} already exists in this tenant"
    spec = data.get("provision")
    if not isinstance(spec, dict):
        raise ProvisionError({**errors, "provision": "must be an object"})
    unknown = set(spec) - {
        "provider",
        "replicas",
        "semi_sync",
        "master_user",
        "parameter_group",
        "parameters",
        "size",
    }
    for key in sorted(unknown):
        errors[f"provision.{key}"] = "unknown field"
    provider = spec.get("provider", "local")
    if provider not in KNOWN_PROVIDERS:
        errors["provision.provider"] = (
            f"unknown provider {provider!r}: use one of {', '.join(KNOWN_PROVIDERS)}"
        )
    elif provider not in enabled_providers():
        errors["provision.provider"] = (
            f"provider {provider!r} is not enabled on this platform (DBPILOT_PROVIDERS: "
            f"{', '.join(enabled_providers()) or 'none'})"
        )
    replicas = spec.get("replicas", 2)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 0 <= replicas <= MAX_REPLICAS:
        errors["provision.replicas"] = f"must be a whole number from 0 to {MAX_REPLICAS}"
        replicas = 0
    semi_sync = spec.get("semi_sync", replicas > 0)
    if not isinstance(semi_sync, bool):
        errors["provision.semi_sync"] = "must be true or false"
    elif semi_sync and replicas == 0:
        errors["provision.semi_sync"] = "semi-sync needs at least one replica"
    master_user = spec.get("master_user")
    if master_user is not None:
        if (
            not isinstance(master_user, dict)
            or not isinstance(master_user.get("user"), str)
            or not isinstance(master_user.get("password"), str)
        ):
            errors["provision.master_user"] = 'must be {"user": "...", "password": "..."}'
        elif not USER_PATTERN.match(master_user["user"]) or master_user["user"] in RESERVED_USERS:
            errors["provision.master_user.user"] = (
                "use 1-63 lowercase letters, digits and dashes, not one of "
                + ", ".join(sorted(RESERVED_USERS))
            )
        elif len(master_user["password"]) < 12:
            errors["provision.master_user.password"] = "at least 12 characters"
    group = None
    if spec.get("parameter_group") is not None and spec.get("parameters") is not None:
        errors["provision.parameters"] = "give parameter_group or parameters, not both"
    elif spec.get("parameter_group") is not None:
        group = ParameterGroup.objects.filter(tenant=tenant, name=spec["parameter_group"]).first()
        if group is None:
            errors["provision.parameter_group"] = (
                f"no parameter group named {spec['parameter_group']!r} in this tenant"
            )
    parameters: dict[str, str] = {}
    try:
        parameters = validate_parameters(spec.get("parameters") or {})
    except ParameterError as exc:
        errors.update({f"provision.parameters.{k}": v for k, v in exc.errors.items()})
    size = spec.get("size") or {}
    memory = size.get("memory_mb", DEFAULT_MEMORY_MB) if isinstance(size, dict) else None
    if (
        isinstance(memory, bool)
        or not isinstance(memory, int)
        or not MEMORY_RANGE[0] <= memory <= MEMORY_RANGE[1]
    ):
        errors["provision.size.memory_mb"] = (
            f"must be a whole number of MB from {MEMORY_RANGE[0]} to {MEMORY_RANGE[1]}"
        )
        memory = DEFAULT_MEMORY_MB
    settings_in = data.get("settings") or {}
    try:
        settings = merge_settings(
            {},
            {
                "failover_mode": "automatic",
                "semi_sync": bool(semi_sync),
                "deletion_protection": True,
                # design.md: a provisioned cluster is backed up daily, kept 7 days (docs/backups.md).
                "backup_window": DEFAULT_BACKUP_WINDOW,
                **settings_in,
            },
        ).as_dict()
    except Exception as exc:  # noqa: BLE001 - SettingsError
        errors.update({f"settings.{k}": v for k, v in getattr(exc, "errors", {"settings": str(exc)}).items()})
        settings = {}
    if not errors and provider == "hosts":
        room = pool_room(1 + replicas, memory)
        if room:
            errors["provision.replicas"] = room
    if errors:
        raise ProvisionError(errors)
    return ProvisionRequest(
        name, provider, replicas, semi_sync, master_user, group, parameters, memory, settings
    )


def memory_in_use(tenant: Tenant) -> int:
    return Server.objects.filter(cluster__tenant=tenant).aggregate(total=Sum("memory_mb"))["total"] or 0


def check_memory_quota(tenant: Tenant, add_mb: int) -> None:
    used = memory_in_use(tenant)
    if used + add_mb > tenant.max_memory_mb:
        raise QuotaExceeded(
            f"Tenant {tenant.name} may use at most {tenant.max_memory_mb} MB of server memory "
            f"({used} MB now, {add_mb} MB more asked); choose a smaller size or fewer replicas, or "
            "ask the platform operator to raise the quota."
        )


def check_provision_quota(tenant: Tenant, request: ProvisionRequest) -> None:
    servers = 1 + request.replicas
    check_quota(tenant, add_clusters=1, add_servers=servers)
    check_memory_quota(tenant, servers * request.memory_mb)


def quota_left(tenant: Tenant) -> dict:
    clusters = Cluster.objects.filter(tenant=tenant).count()
    servers = Server.objects.filter(cluster__tenant=tenant).count()
    memory = memory_in_use(tenant)
    return {
        "clusters": {
            "limit": tenant.max_clusters,
            "used": clusters,
            "left": max(0, tenant.max_clusters - clusters),
        },
        "servers": {
            "limit": tenant.max_servers,
            "used": servers,
            "left": max(0, tenant.max_servers - servers),
        },
        "memory_mb": {
            "limit": tenant.max_memory_mb,
            "used": memory,
            "left": max(0, tenant.max_memory_mb - memory),
        },
    }


@transaction.atomic
def provision_cluster(team: Team, request: ProvisionRequest, *, requested_by: str) -> Cluster:
    """Create the cluster row (origin provisioned, no servers yet) and its provision job."""
    tenant = Tenant.objects.select_for_update().get(pk=team.tenant_id)
    check_provision_quota(tenant, request)
    cluster = Cluster.objects.create(
        tenant=tenant,
        name=request.name,
        origin=Cluster.Origin.PROVISIONED,
        settings=request.settings,
        credentials_encrypted=encrypt_json({"user": "dbpilot", "password": secrets.token_urlsafe(24)}),
        replication_credentials_encrypted=encrypt_json(
            {"user": "repl", "password": secrets.token_urlsafe(24)}
        ),
        provision_secrets_encrypted=new_secrets(request.master_user),
        parameter_group=request.parameter_group,
        provision={
            "provider": request.provider,
            "replicas": request.replicas,
            "semi_sync": request.semi_sync,
            "memory_mb": request.memory_mb,
            "parameters": request.parameters,
            "key": f"{request.name[:20]}-{secrets.token_hex(3)}",
            "master_user": request.master_user["user"] if request.master_user else None,
        },
    )
    grant_cluster(team, cluster)
    record_event(
        cluster.id,
        "cluster_provisioning",
        f"Cluster {cluster.label} requested by {requested_by}: "
        f"1 primary + {request.replicas} replica(s) with the {request.provider} provider",
    )
    start_long_job(
        cluster,
        "provision",
        requested_by=requested_by,
        params={"replicas": request.replicas, "provider": request.provider},
    )
    return cluster


def start_long_job(cluster: Cluster, kind: str, *, requested_by: str, params: dict | None = None) -> Job:
    """Create a provisioning job (one at a time per cluster) and send it to the `long` queue after commit."""
    active = Job.objects.filter(cluster=cluster, state__in=ACTIVE_JOB_STATES).first()
    if active is not None:
        raise ProvisionConflict(
            f"job {active.id} ({active.kind}, {active.state}) is active on this cluster: wait for "
            "it to finish",
            "job_active",
        )
    job = create_job(cluster, kind, params=params or {}, requested_by=requested_by)
    send_long_job(job.id)
    return job


def send_long_job(job_id: int) -> None:
    if runner.runner_name() == runner.INLINE:
        transaction.on_commit(lambda: run_long_job(job_id))
        return

    def send() -> None:
        try:
            senders.send(senders.RUN_LONG_JOB, job_id)
        except Exception:  # noqa: BLE001 - broker down: the reaper re-sends pending jobs
            log.warning(
                "could not send job %s to the long queue; the reaper will retry", job_id, exc_info=True
            )

    transaction.on_commit(send)


def run_long_job(job_id: int) -> Job | None:
    """Claim and run a provisioning job; a deprovision that succeeded removes the cluster afterwards."""
    from clusters.jobs.engine import run_job

    job = run_job(job_id)
    if job is None:  # lease lost: maybe preempted by a failover (its worker, this one, has stopped now)
        remove_preempted_leftovers(job_id)
    if job is not None and job.kind == "deprovision" and job.state == Job.State.SUCCEEDED:
        from clusters.services.registration import delete_cluster

        cluster = Cluster.objects.filter(pk=job.cluster_id).first()
        if cluster is not None:
            delete_cluster(cluster)
    return job


def remove_preempted_leftovers(job_id: int) -> str | None:
    """A provision or add-replica job that a failover preempted stops at its next step boundary without
    its abort (its lease is gone: clusters.jobs.engine.preempt_long_jobs). Once it has stopped, the
    servers it placed that were not registered yet are destroyed (a registered one is a member of the
    cluster: the failover counts on it). Recorded in the job's result (`leftovers`) and as an event."""
    job = Job.objects.filter(pk=job_id, kind__in=("provision", "add_replica"), state=Job.State.FAILED).first()
    if job is None:
        return None
    result = dict(job.result or {})
    if "preempted by" not in str(result.get("detail", "")) or "leftovers" in result:
        return None
    ctx = provision_context.ProvisionContext(job, result)
    placed = {s.instance for s in ctx.state.servers}
    key = ctx.spec.get("key")
    if job.kind == "provision" and key:  # a server created just before the preemption was not recorded
        placed |= {i for i in ctx.provider.instances() if i.startswith(f"{key}-")}
    registered = set(Server.objects.filter(cluster_id=job.cluster_id).values_list("instance", flat=True))
    removed = []
    for instance in highest_first(placed - registered):  # a StatefulSet's pods go from the top down
        try:
            if ctx.provider.destroy(instance):
                removed.append(instance)
        except Exception as exc:  # noqa: BLE001 - said in the result: the operator removes it
            log.warning("job %s: removing leftover %s failed: %s", job_id, instance, exc)
            removed.append(f"{instance} (NOT removed: {exc})")
    detail = f"removed {len(removed)} server(s) it had placed: {', '.join(removed)}" if removed else "none"
    result["leftovers"] = detail
    Job.objects.filter(pk=job_id).update(result=result)
    if removed:
        record_event(
            job.cluster_id,
            "job_leftovers_removed",
            f"{job.kind.capitalize()} job {job_id} was preempted: {detail}",
            severity="warning",
            data={"job_id": job_id, "removed": removed},
        )
    return detail


def run_subjob(cluster: Cluster, kind: str, requested_by: str) -> tuple[Job, Job | None]:
    """A job a provisioning job runs inside itself (the switchover of a rolling restart): created, then run
    to its end in this process; StepFailed-worthy refusals come back as the finished job's state."""
    from clusters.jobs.engine import ActiveJobExists, run_job
    from clusters.jobs.steps import StepFailed

    try:
        job = create_job(cluster, kind, requested_by=requested_by)
    except ActiveJobExists as exc:
        raise StepFailed(f"{kind} not started: {exc}") from None
    return job, run_job(job.id)


provision_context.SUBJOB_RUNNER = run_subjob


def reap_long_jobs() -> list[int]:
    """Long jobs whose worker died: handed to the `long` queue again (the engine's reaper does HA jobs)."""
    from datetime import timedelta

    from django.utils import timezone

    from clusters.jobs.engine import HANDOFF_OWNER, HANDOFF_SECONDS

    now = timezone.now()
    sent = []
    for job in Job.objects.filter(kind__in=LONG_JOB_KINDS, state=Job.State.RUNNING, lease_expires_at__lt=now):
        if Job.objects.filter(
            pk=job.pk, lease_owner=job.lease_owner, lease_expires_at=job.lease_expires_at
        ).update(lease_owner=HANDOFF_OWNER, lease_expires_at=now + timedelta(seconds=HANDOFF_SECONDS)):
            send_long_job(job.pk)
            sent.append(job.pk)
    return sent


# --- delete, stop, start, scale --------------------------------------------------------------------------


def delete_provisioned(cluster: Cluster, *, requested_by: str) -> Job | None:
    """DELETE: refused while deletion protection is on; a provisioned cluster's servers are removed by a
    deprovision job (202); a registered cluster is only forgotten (None: 204)."""
    if (cluster.settings or {}).get("deletion_protection"):
        raise ProvisionConflict(
            f"cluster {cluster.name} has deletion protection on: PATCH settings "
            '{"deletion_protection": false} first, then delete it',
            "deletion_protected",
        )
    if cluster.origin != Cluster.Origin.PROVISIONED:
        return None
    return start_long_job(cluster, "deprovision", requested_by=requested_by)


def stop_cluster(cluster: Cluster, *, requested_by: str) -> Job:
    _require_provisioned(cluster, "stopped")
    return start_long_job(cluster, "stop_cluster", requested_by=requested_by)


def start_cluster(cluster: Cluster, *, requested_by: str) -> Job:
    _require_provisioned(cluster, "started")
    return start_long_job(cluster, "start_cluster", requested_by=requested_by)


def _require_provisioned(cluster: Cluster, what: str) -> None:
    if cluster.origin != Cluster.Origin.PROVISIONED:
        raise ProvisionConflict(
            f"only a provisioned cluster can be {what} by dbpilot; this one is registered", "not_provisioned"
        )


def add_replica(cluster: Cluster, data: dict, *, requested_by: str) -> Job:
    _require_provisioned(cluster, "scaled")
    if not isinstance(data, dict):
        raise ProvisionError({"body": 'must be an object ({} or {"host": NAME})'})
    if (cluster.provision or {}).get("provider") == "kubernetes":
        # clusters.providers.kubernetes_provider: a new pod cannot be cloned from a running one yet.
        raise ProvisionConflict(
            "the kubernetes provider cannot add a replica to a running cluster (a new pod cannot be cloned "
            "from a running one yet): provision the cluster with the replicas it needs",
            "not_supported",
        )
    host = data.get("host")
    params: dict = {}
    if host is not None:
        if (cluster.provision or {}).get("provider") != "hosts":
            raise ProvisionError(
                {"host": f"no host named {host!r}: the local provider has no host pool"}, "unknown_host"
            )
        if not isinstance(host, str) or not DatabaseHost.objects.filter(name=host).exists():
            raise ProvisionError(
                {"host": f"no host named {host!r} in the pool (GET /api/v1/platform/hosts/ lists them)"},
                "unknown_host",
            )
        if DatabaseHost.objects.filter(name=host, down=True).exists():
            raise ProvisionError(
                {"host": f"host {host} is down: choose another or leave host out"}, "host_down"
            )
        params["host"] = host
    if cluster.primary_id is None:
        raise ProvisionConflict("the cluster has no primary to clone from", "no_primary")
    memory = int((cluster.provision or {}).get("memory_mb", DEFAULT_MEMORY_MB))
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=cluster.tenant_id)
        check_quota(tenant, add_servers=1)
        check_memory_quota(tenant, memory)
        return start_long_job(cluster, "add_replica", requested_by=requested_by, params=params)


def remove_replica(cluster: Cluster, server: Server, *, requested_by: str) -> Job:
    _require_provisioned(cluster, "scaled")
    if server.pk == cluster.primary_id:
        raise ProvisionConflict(
            f"{server.address} is the primary: switch over to another server first, then remove it",
            "primary_refused",
        )
    if (cluster.provision or {}).get("provider") == "kubernetes":
        numbers = [instance_number(s.instance) for s in cluster.servers.all()]
        if instance_number(server.instance) < max(numbers, default=0):
            raise ProvisionConflict(
                f"{server.address} is not the cluster's last pod: a StatefulSet removes pods from its highest "
                "ordinal down, so the kubernetes provider removes only the newest server",
                "not_supported",
            )
    return start_long_job(
        cluster, "remove_replica", requested_by=requested_by, params={"server_id": server.pk}
    )


def endpoints(cluster: Cluster) -> dict:
    """Where a tenant connects: a route's client-facing address where one is declared, else the servers'."""
    servers = list(cluster.servers.all())
    primary = next((s for s in servers if s.pk == cluster.primary_id), None)
    writer = primary.address if primary else None
    readers = [s.address for s in servers if s.pk != cluster.primary_id and not s.maintenance]
    for route in cluster.routes.all():  # a route that declares its client-facing addresses wins
        settings = route.settings or {}
        if settings.get("client_address"):
            writer = settings["client_address"]
        if settings.get("client_read_address"):
            readers = [settings["client_read_address"]]
    return {"writer": writer, "readers": readers}
