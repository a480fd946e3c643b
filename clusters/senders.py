"""Sending work to the workers without importing them: the workers app registers, at start, a sender for
each task that code below it sends (workers/apps.py); services and jobs call `send(name, *args)`.

So the import graph runs one way (workers imports clusters, never the reverse) and a reader finds every
sender in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

RUN_HA_JOB = "run_ha_job"  # (job_id): claim and run an HA job on the `ha` queue
RUN_LONG_JOB = "run_long_job"  # (job_id): claim and run a provisioning job on the `long` queue
SYNC_CLUSTER_ROUTES = "sync_cluster_routes"  # (cluster_id, trigger): re-apply the read side of the routes
DISPATCH_ALERTS = "dispatch_alerts"  # (event_id): make and send the alert deliveries an event calls for
DELIVER_ALERT = (
    "deliver_alert"  # (delivery_id, countdown): one attempt at an alert delivery, after countdown s
)
SEND_ALERT_DIGEST = (
    "send_alert_digest"  # (subscription_id, countdown): a subscription's digest, after countdown s
)

_senders: dict[str, Callable[..., Any]] = {}


def register_sender(name: str, sender: Callable[..., Any]) -> None:
    _senders[name] = sender


def send(name: str, *args: Any) -> None:
    """Send the task; LookupError when no worker app registered it (a broker error is the caller's)."""
    try:
        sender = _senders[name]
    except KeyError:
        raise LookupError(f"no sender registered for {name!r}: is the workers app installed?") from None
    sender(*args)
