"""Alert subscriptions of a tenant and the log of their deliveries."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AlertSubscription(models.Model):
    """Who hears about what: a channel (webhook or email) and what narrows the alerts (domain/alerts.py).

    It belongs to a tenant and is managed by the tenant's admins. With a `team`, the recipient has that
    team's view of the clusters (checked again at every delivery); without, the whole tenant's."""

    class Channel(models.TextChoices):
        WEBHOOK = "webhook"
        EMAIL = "email"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="alert_subscriptions")
    team = models.ForeignKey(
        "tenants.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=100)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    target = models.CharField(max_length=400)
    payload_format = models.CharField(max_length=16, default="json")  # json | slack (webhooks)
    clusters = models.JSONField(default=list, blank=True)
    severities = models.JSONField(default=list, blank=True)
    codes = models.JSONField(default=list, blank=True)
    jobs = models.JSONField(default=list, blank=True)
    # A Fernet token of the webhook signing secret; returned once, at creation.
    secret_encrypted = models.TextField(default="", blank=True)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    audit_kind = "alert_subscription"

    class Meta:
        app_label = "clusters"
        ordering = ["tenant_id", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="unique_alert_subscription_name")
        ]

    def __str__(self) -> str:
        return f"alert subscription {self.pk} ({self.name})"


class AlertDelivery(models.Model):
    """One alert for one subscription: its payload, state and attempts. At most one per (subscription,
    event), so an alert is never sent twice."""

    class State(models.TextChoices):
        PENDING = "pending"
        RETRYING = "retrying"
        SENT = "sent"
        FAILED = "failed"
        DIGEST = "digest"  # waiting for its subscription's digest
        DIGESTED = "digested"  # sent as part of a digest
        SKIPPED = "skipped"  # the recipient may no longer see the cluster

    subscription = models.ForeignKey(AlertSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(
        "clusters.Event", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cluster = models.ForeignKey(
        "clusters.Cluster", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=32)  # finding_opened, finding_resolved, job, digest, test
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    body = models.JSONField(default=dict)
    attempts = models.PositiveIntegerField(default=0)
    last_status = models.IntegerField(null=True, blank=True)
    last_error = models.TextField(default="", blank=True)
    digest = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "clusters"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event"],
                condition=models.Q(event__isnull=False),
                name="one_delivery_per_subscription_and_event",
            )
        ]
