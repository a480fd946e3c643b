"""Events: write the row, then publish to the cluster's Channels group after the transaction commits.

Payloads are small dicts with ids and state, never secrets.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from clusters.models import Event, Job

log = logging.getLogger(__name__)


def cluster_group(cluster_id: int) -> str:
    return f"cluster.{cluster_id}"


def publish(cluster_id: int, payload: dict) -> None:
    """Send now (callers outside a transaction) — failures are logged, never raised: events are best effort."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            cluster_group(cluster_id),
            {"type": "cluster.message", "cluster_id": cluster_id, "payload": payload},
        )
    except Exception:  # noqa: BLE001 - a down Redis must not break monitoring or jobs
        log.warning("could not publish to cluster.%s", cluster_id, exc_info=True)


def publish_on_commit(cluster_id: int, payload: dict) -> None:
    transaction.on_commit(lambda: publish(cluster_id, payload))


def event_payload(event: Event) -> dict:
    return {
        "id": event.id,
        "cluster": event.cluster_id,
        "kind": event.kind,
        "severity": event.severity,
        "message": event.message,
        "data": event.data,
        "created_at": event.created_at.isoformat(),
    }


def record_event(
    cluster_id: int, kind: str, message: str, *, severity: str = "info", data: dict | None = None
) -> Event:
    event = Event.objects.create(
        cluster_id=cluster_id, kind=kind, message=message, severity=severity, data=data or {}
    )
    publish_on_commit(cluster_id, {"type": "event", "cluster_id": cluster_id, "event": event_payload(event)})
    return event


def job_payload(job: Job) -> dict:
    return {
        "id": job.id,
        "cluster": job.cluster_id,
        "kind": job.kind,
        "state": job.state,
        "steps": job.steps,
        "result": job.result,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def publish_job(job: Job) -> None:
    publish_on_commit(job.cluster_id, {"type": "job", "cluster_id": job.cluster_id, "job": job_payload(job)})
