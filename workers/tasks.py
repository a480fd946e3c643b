"""Celery tasks: take ids, call one service. Routing to queues is in controlplane/queues.py; code below
this package sends them through clusters.senders (registered by workers/apps.py)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections

from clusters.jobs import engine
from clusters.services import monitoring, provisioning, routing


@shared_task(ignore_result=True)
def dispatch_ticks() -> int:
    """Beat calls this every second: send a monitor_shard task per shard of due clusters."""
    shards = monitoring.due_shards(settings.DBPILOT_TICK_SHARD_SIZE)
    for shard in shards:
        # A tick that cannot start within a second is stale: drop it rather than pile up.
        monitor_shard.apply_async(args=[shard], expires=1.0)
    return len(shards)


@shared_task(ignore_result=True)
def monitor_shard(cluster_ids: list[int]) -> None:
    monitoring.monitor_shard(cluster_ids)


@shared_task(ignore_result=True, acks_late=True)
def run_ha_job(job_id: int) -> None:
    """Claim and run one HA job (switchover, failover...) on the `ha` queue; a no-op if another worker
    holds it or it already finished (a redelivered message is harmless)."""
    close_old_connections()
    try:
        engine.run_job(job_id)
    finally:
        close_old_connections()


@shared_task(ignore_result=True, acks_late=True)
def run_long_job(job_id: int) -> None:
    """Claim and run one long job (provision, deprovision, scale, rolling restart) on the `long` queue."""
    close_old_connections()
    try:
        provisioning.run_long_job(job_id)
    finally:
        close_old_connections()


@shared_task(ignore_result=True)
def reap_jobs() -> int:
    """Beat calls this every 2 s: resume or abort HA jobs whose worker stopped renewing the lease (and
    hand provisioning jobs whose worker died to the `long` queue again)."""
    return len(engine.reap_jobs()) + len(provisioning.reap_long_jobs())


@shared_task(ignore_result=True)
def sync_cluster_routes(cluster_id: int, trigger: str = "health") -> int:
    """Re-apply a cluster's routes (queued by routing.on_topology_changed when the read side changed)."""
    close_old_connections()
    return len(routing.sync_cluster_routes(cluster_id, trigger, kinds=routing.READ_SIDE_KINDS))


@shared_task(ignore_result=True)
def check_proxies() -> int:
    """Beat calls this every 5 s: re-apply routes of HAProxies that restarted (runtime changes are lost)."""
    return routing.check_all_proxies()


@shared_task(ignore_result=True)
def check_hosts() -> int:
    """Beat calls this every 5 s: ping every database host's agent; a silent one marks its host down."""
    from clusters.services.hosts import check_hosts as ping_agents

    close_old_connections()
    return sum(ping_agents().values())


@shared_task(ignore_result=True)
def check_accounts() -> int:
    """Beat calls this every few seconds: dbpilot's own accounts on provisioned servers, repaired if changed."""
    from clusters.services.accounts import check_all_accounts

    close_old_connections()
    return check_all_accounts()


@shared_task(ignore_result=True)
def sweep_orphans() -> int:
    """Beat calls this every minute: servers no Server row and no active job own, past the grace, destroyed."""
    from clusters.services.orphans import sweep_orphans as sweep

    close_old_connections()
    return len(sweep())


@shared_task(ignore_result=True)
def dispatch_alerts(event_id: int) -> None:
    """Alert subscriptions: make and send the deliveries an event calls for."""
    from clusters.services.alerts import on_event

    on_event(event_id)


@shared_task(ignore_result=True, acks_late=True)
def deliver_alert(delivery_id: int) -> None:
    """One attempt at an alert delivery; a failure schedules the next one itself (with backoff)."""
    from clusters.services.alerts import deliver

    deliver(delivery_id)


@shared_task(ignore_result=True)
def send_alert_digest(subscription_id: int) -> None:
    from clusters.services.alerts import send_digest

    send_digest(subscription_id)


@shared_task(ignore_result=True)
def archive_binlogs() -> int:
    """Beat calls this every DBPILOT_BINLOG_ARCHIVE_SECONDS: one archiving run per cluster with a backup."""
    from clusters.services import binlog_archive

    close_old_connections()
    ids = binlog_archive.clusters_to_archive()
    for cluster_id in ids:
        archive_cluster_binlogs.apply_async(
            args=[cluster_id], expires=settings.DBPILOT_BINLOG_ARCHIVE_SECONDS * 2
        )
    return len(ids)


@shared_task(ignore_result=True)
def archive_cluster_binlogs(cluster_id: int) -> dict:
    """Close the primary's binlog and copy what the archive lacks (clusters.services.binlog_archive)."""
    from clusters.services import binlog_archive

    close_old_connections()
    try:
        return binlog_archive.archive_cluster(cluster_id)
    finally:
        close_old_connections()


@shared_task(ignore_result=True)
def backup_schedule() -> int:
    """Beat calls this every minute: scheduled backups whose window is open, retries, then retention."""
    from clusters.services import backups

    close_old_connections()
    return len(backups.run_schedule())
