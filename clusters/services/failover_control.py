"""The failover counters and `failover-control`: how many automatic failovers ran (for failover_limit and
failover_min_interval_seconds), when the counters were last reset, the last failover and the last blocked
incident, as the API shows them."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from clusters.credentials import cluster_settings
from clusters.events import record_event
from clusters.models import Cluster, Event, Job
from tenants.platform import platform_paused

KIND = "failover"
COUNTERS_RESET_EVENT = "failover_counters_reset"


def counters_reset_at(cluster_id: int) -> datetime | None:
    return (
        Event.objects.filter(cluster_id=cluster_id, kind=COUNTERS_RESET_EVENT)
        .order_by("-created_at", "-id")
        .values_list("created_at", flat=True)
        .first()
    )


def automatic_failovers(cluster_id: int, *, since: datetime | None = None):
    """Automatic failovers that ran (refused ones never acted), newest first."""
    jobs = Job.objects.filter(
        cluster_id=cluster_id, kind=KIND, params__automatic=True, started_at__isnull=False
    ).exclude(state=Job.State.REFUSED)
    if since is not None:
        jobs = jobs.filter(started_at__gte=since)
    return jobs.order_by("-started_at")


def failover_starts(cluster_id: int, settings) -> list[datetime]:
    """Start times that count against failover_limit and failover_min_interval_seconds."""
    horizon = timezone.now() - timedelta(
        seconds=max(settings.failover_window_seconds, settings.failover_min_interval_seconds)
    )
    reset = counters_reset_at(cluster_id)
    since = max(horizon, reset) if reset else horizon
    return list(automatic_failovers(cluster_id, since=since).values_list("started_at", flat=True))


def _job_summary(job: Job | None) -> dict | None:
    if job is None:
        return None
    result = job.result or {}
    return {
        "id": job.pk,
        "state": job.state,
        "automatic": bool((job.params or {}).get("automatic")),
        "old_primary": result.get("old_primary") or (job.params or {}).get("primary"),
        "new_primary": result.get("new_primary"),
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "detail": result.get("detail", ""),
        "guarantee": (result.get("rpo") or {}).get("guarantee"),
    }


def failover_control(cluster: Cluster) -> dict:
    """The counters and state behind automatic failover, as the API shows them."""
    settings = cluster_settings(cluster)
    reset = counters_reset_at(cluster.pk)
    now = timezone.now()
    window_start = now - timedelta(seconds=settings.failover_window_seconds)
    counted = list(
        automatic_failovers(
            cluster.pk, since=max(window_start, reset) if reset else window_start
        ).values_list("started_at", flat=True)
    )
    starts = failover_starts(cluster.pk, settings)
    last_start = max(starts) if starts else None
    next_allowed = None
    if last_start is not None:
        next_allowed = last_start + timedelta(seconds=settings.failover_min_interval_seconds)
    if settings.failover_limit and len(counted) >= settings.failover_limit:
        oldest = min(counted) + timedelta(seconds=settings.failover_window_seconds)
        next_allowed = max(next_allowed or oldest, oldest)
    blocked = (
        Job.objects.filter(cluster=cluster, kind=KIND, state=Job.State.REFUSED, params__automatic=True)
        .order_by("-created_at", "-id")
        .first()
    )
    last = (
        Job.objects.filter(cluster=cluster, kind=KIND)
        .exclude(state=Job.State.REFUSED)
        .order_by("-created_at")
        .first()
    )
    return {
        "failover_mode": settings.failover_mode,
        "armed": cluster.failover_armed,
        "paused": settings.paused,
        "platform_paused": platform_paused(),
        "counters": {
            "failovers_in_window": len(counted),
            "failover_limit": settings.failover_limit,
            "failover_window_seconds": settings.failover_window_seconds,
            "failover_min_interval_seconds": settings.failover_min_interval_seconds,
            "last_failover_at": last_start,
            "next_allowed_at": next_allowed if next_allowed and next_allowed > now else None,
            "reset_at": reset,
        },
        "last_failover": _job_summary(last),
        "last_blocked": None
        if blocked is None
        else {
            **_job_summary(blocked),
            "incident": (blocked.params or {}).get("incident"),
            "checks": [ch for ch in (blocked.result or {}).get("checks", []) if not ch.get("ok")],
        },
    }


def reset_failover_counters(cluster: Cluster, *, requested_by: str) -> dict:
    """Forget earlier automatic failovers for failover_limit and failover_min_interval_seconds (an
    operator understood the cause). The reset is an event, so it survives restarts and is in the log."""
    record_event(
        cluster.pk,
        COUNTERS_RESET_EVENT,
        f"Failover counters reset by {requested_by}",
        data={"by": requested_by},
    )
    return failover_control(cluster)
