"""Events that may alert someone are handed to the alert dispatcher after their transaction commits."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

log = logging.getLogger(__name__)
ALERTING_EVENTS = {"finding_opened", "finding_resolved", "job_finished"}


@receiver(post_save, sender="clusters.Event", dispatch_uid="dbpilot-alerts")
def event_saved(sender, instance, created: bool, **kwargs) -> None:
    if not created or instance.kind not in ALERTING_EVENTS:
        return
    transaction.on_commit(lambda: _dispatch(instance.id, instance.cluster_id))


def _dispatch(event_id: int, cluster_id: int) -> None:
    from clusters import senders
    from clusters.alerts.models import AlertSubscription

    try:
        if AlertSubscription.objects.filter(tenant__clusters__id=cluster_id, enabled=True).exists():
            senders.send(senders.DISPATCH_ALERTS, event_id)
    except Exception:  # noqa: BLE001 - alerts must never break what recorded the event
        log.exception("dispatching alerts for event %s failed", event_id)
