"""Adopting a cluster for automatic failover: the user's consent starts the adopt job, which applies what
automatic failover relies on and arms the cluster only once it succeeded.

`failover_mode: automatic`, given at registration or by PATCH, starts the job (the cluster object's `job`
field shows it); switching back to `manual` disarms at once. While the cluster is automatic, changing what
adopt applies (semi_sync, semi_sync_timeout_ms, semi_sync_on_timeout, replicas_read_only) runs it again.
The steps are in clusters.jobs.adopt_steps.
"""

from __future__ import annotations

from clusters.events import record_event
from clusters.jobs.adopt_steps import KIND
from clusters.jobs.engine import create_job
from clusters.jobs.runner import start_job
from clusters.models import Cluster, Job

# Settings that adopt applies on the servers: changing one on an automatic cluster adopts it again.
APPLIED_SETTINGS = ("semi_sync", "semi_sync_timeout_ms", "semi_sync_on_timeout", "replicas_read_only")


def start_adopt(cluster: Cluster, *, requested_by: str) -> Job:
    """Create the adopt job (raises clusters.jobs.engine.ActiveJobExists) and start it on the `ha` queue
    once the caller's transaction commits."""
    job = create_job(cluster, KIND, requested_by=requested_by)
    start_job(job.pk, from_request=True)
    return job


def after_settings_change(cluster: Cluster, diff: dict, *, requested_by: str) -> Job | None:
    """React to a settings change ({setting: [old, new]}) inside the caller's transaction: switching to
    manual disarms; switching to automatic, or changing what adopt applies while automatic, adopts."""
    mode = diff.get("failover_mode")
    if mode and mode[1] == "manual":
        if Cluster.objects.filter(pk=cluster.pk, failover_armed=True).update(failover_armed=False):
            cluster.failover_armed = False
            record_event(
                cluster.pk,
                "failover_disarmed",
                f"Automatic failover disarmed by {requested_by} (failover_mode manual)",
            )
        return None
    automatic = (cluster.settings or {}).get("failover_mode") == "automatic"
    if (mode and mode[1] == "automatic") or (automatic and any(k in diff for k in APPLIED_SETTINGS)):
        return start_adopt(cluster, requested_by=requested_by)
    return None
