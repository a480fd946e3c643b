"""Automatic replacement of lost servers of provisioned clusters: after every tick, how long each server
has been down is kept in Redis (hot state: lost with Redis, which only delays a replacement), and a server
down longer than `replace_after_seconds` gets a `replace_server` job (clusters/jobs/replace_steps.py) when
clusters.domain.replacement says so."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

import redis
from django.utils import timezone

from clusters import hotstate
from clusters.domain.replacement import ServerHealth, choose_replacement, down_since
from clusters.events import record_event
from clusters.jobs import replace_steps
from clusters.models import ACTIVE_JOB_STATES, Cluster, Job
from clusters.services.provisioning import ProvisionConflict, start_long_job
from tenants.platform import platform_paused

log = logging.getLogger(__name__)

RETRY_AFTER_FAILURE_SECONDS = 600


def _key(cluster_id: int) -> str:
    return f"dbpilot:cluster:{cluster_id}:down_since"


def _down_since(cluster_id: int, states: dict[str, str], now: float) -> dict[str, float]:
    client = hotstate.client()
    raw = client.get(_key(cluster_id))
    previous = json.loads(raw) if raw else {}
    current = down_since(previous, states, now)
    if current != previous:
        client.set(_key(cluster_id), json.dumps(current), ex=7 * 86400)
    return current


def after_tick(result, cluster: Cluster) -> Job | None:
    """Replace a server down too long, when the decision allows it; the job started, or None. `cluster` is
    the tick's own row: nothing more is read for registered clusters (every tick passes here)."""
    settings = result.settings
    if settings.replace_after_seconds <= 0 or cluster.origin != Cluster.Origin.PROVISIONED:
        return None
    now = time.time()
    try:
        since = _down_since(cluster.pk, {s.address: s.state for s in result.topology.servers}, now)
    except redis.RedisError:
        return None  # no hot state: no automatic action
    if not since:
        return None
    failed_recently = Job.objects.filter(
        cluster=cluster,
        kind=replace_steps.KIND,
        state__in=(Job.State.FAILED, Job.State.REFUSED),
        finished_at__gte=timezone.now() - timedelta(seconds=RETRY_AFTER_FAILURE_SECONDS),
    ).values_list("params__server_id", flat=True)
    decision = choose_replacement(
        [
            ServerHealth(
                s.id,
                s.address,
                s.state,
                s.address == result.topology.primary,
                s.maintenance,
                now - since[s.address] if s.address in since else None,
            )
            for s in result.topology.servers
        ],
        provisioned=True,
        replace_after_seconds=settings.replace_after_seconds,
        paused=settings.paused or platform_paused(),
        job_active=Job.objects.filter(cluster=cluster, state__in=ACTIVE_JOB_STATES).exists(),
        recently_failed=list(failed_recently),
    )
    if decision.server_id is None:
        return None
    try:
        job = start_long_job(
            cluster,
            replace_steps.KIND,
            requested_by="dbpilot (replace_after_seconds)",
            params={"server_id": decision.server_id},
        )
    except ProvisionConflict:
        return None
    record_event(
        cluster.pk,
        "server_replacing",
        f"Replacing a lost server: {decision.reason} (job {job.pk})",
        severity="warning",
        data={"server_id": decision.server_id, "job_id": job.pk},
    )
    return job
