"""The Route model: one way clients of a cluster find its primary (a proxy, a DNS name, a script...)."""

from __future__ import annotations

from django.db import models


class Route(models.Model):
    """A route of a cluster: its kind (the driver), non-secret settings, encrypted secrets, the endpoint
    it dials (normalized, so no two tenants can own the same one) and the outcome of its last sync."""

    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="routes")
    kind = models.CharField(max_length=32)
    name = models.CharField(max_length=64)
    settings = models.JSONField(default=dict, blank=True)
    # A Fernet token of {"api_key": ...} and the like; write-only in the API.
    secrets_encrypted = models.TextField(default="", blank=True)
    # "unix:/run/dbpilot/haproxy.sock", "tcp:127.0.0.1:9999", "http:127.0.0.1:8081"... ("" for scripts)
    endpoint = models.CharField(max_length=400, default="", blank=True, db_index=True)
    # What the driver saw of the proxy (HAProxy's pid and start time), to notice a restart.
    proxy_state = models.JSONField(default=dict, blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_sync_ok = models.BooleanField(null=True, blank=True)
    last_sync_detail = models.TextField(default="", blank=True)
    last_sync_trigger = models.CharField(max_length=32, default="", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "clusters"
        ordering = ["cluster_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="unique_route_name_per_cluster")
        ]

    audit_kind = "route"

    def __str__(self) -> str:
        return f"{self.kind}:{self.pk} ({self.name})"
