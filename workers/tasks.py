"""Celery tasks: take ids, call one service. Routing to queues is in controlplane/queues.py."""
from __future__ import annotations

from celery import shared_task
from django.conf import settings


@shared_task(ignore_result=True)
def dispatch_ticks() -> int:
    """Beat calls this every second: send a monitor_shard task per shard of due clusters."""
    from clusters.services.monitoring import due_shards

    shards = due_shards(settings.DBPILOT_TICK_SHARD_SIZE)
    for shard in shards:
        # A tick that cannot start within a second is stale: drop it rather than pile up.
        monitor_shard.apply_async(args=[shard], expires=1.0)
    return len(shards)


@shared_task(ignore_result=True)
def monitor_shard(cluster_ids: list[int]) -> None:
    from clusters.services.monitoring import monitor_shard as run

    run(cluster_ids)


@shared_task(ignore_result=True, acks_late=True)
def run_ha_job(job_id: int) -> None:
    """Claim and run one HA job (switchover, failover...) on the `ha` queue; a no-op if another worker
    holds it or it already finished (a redelivered message is harmless)."""
    from django.db import close_old_connections

    from clusters.jobs.engine import run_job

    close_old_connections()
    try:
        run_job(job_id)
    finally:
        close_old_connections()


@shared_task(ignore_result=True, acks_late=True)
def run_long_job(job_id: int) -> None:
    """Claim and run one long job (provision, deprovision, scale, rolling restart) on the `long` queue."""
    from django.db import close_old_connections

    from clusters.services.provisioning import run_long_job as run

    close_old_connections()
    try:
        run(job_id)
    finally:
        close_old_connections()


@shared_task(ignore_result=True)
def reap_jobs() -> int:
    """Beat calls this every 2 s: resume or abort HA jobs whose worker stopped renewing the lease (and
    hand provisioning jobs whose worker died to the `long` queue again)."""
    from clusters.jobs.engine import reap_jobs as reap
    from clusters.services.provisioning import reap_long_jobs

    return len(reap()) + len(reap_long_jobs())


@shared_task(ignore_result=True)
def sync_cluster_routes(cluster_id: int, trigger: str = "health") -> int:
    """Re-apply a cluster's routes (queued by routing.on_topology_changed when the read side changed)."""
    from django.db import close_old_connections

    from clusters.services.routing import READ_SIDE_KINDS
    from clusters.services.routing import sync_cluster_routes as sync

    close_old_connections()
    return len(sync(cluster_id, trigger, kinds=READ_SIDE_KINDS))


@shared_task(ignore_result=True)
def check_proxies() -> int:
    """Beat calls this every 5 s: re-apply routes of HAProxies that restarted (runtime changes are lost)."""
    from clusters.services.routing import check_all_proxies

    return check_all_proxies()
