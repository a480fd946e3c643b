"""The pool of database hosts of the `hosts` provider, registered by platform operators, and the servers
the provider placed on them.

Each host runs a dbpilot agent (`celery -A controlplane worker -Q host.<name>` with
`DBPILOT_AGENT_HOST=<name>` and the host's own key `DBPILOT_AGENT_KEY`, clusters/agent/). The key is
generated at registration, shown once, and kept here encrypted: every operation sent to the agent is
sealed with it. `clusters.domain.placement` decides where servers go; `HostedInstance` rows are what the
placement counts (instances and memory per host).
"""

from __future__ import annotations

from django.db import models


class DatabaseHost(models.Model):
    """A database host: its name (the agent's queue is host.<name>), address, zone and capacity."""

    name = models.CharField(max_length=63, unique=True)
    address = models.CharField(max_length=255)
    zone = models.CharField(max_length=63)
    capacity_instances = models.PositiveIntegerField()
    capacity_memory_mb = models.PositiveIntegerField()
    down = models.BooleanField(default=False)
    # The agent's own key (a Fernet key, itself encrypted with the platform's keys): seals its operations.
    agent_key_encrypted = models.TextField(default="", blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)  # the agent's last answer to a ping
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "clusters"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class HostedInstance(models.Model):
    """A server the `hosts` provider placed on a host (from placement until destroyed). `group` is the
    cluster's provisioning key: one server of a group per host."""

    instance = models.CharField(max_length=100, unique=True)
    host = models.ForeignKey(DatabaseHost, on_delete=models.PROTECT, related_name="instances")
    group = models.CharField(max_length=100, db_index=True)
    memory_mb = models.PositiveIntegerField()
    port = models.PositiveIntegerField(default=0)  # 0 until the agent has allocated it
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "clusters"
        ordering = ["instance"]

    def __str__(self) -> str:
        return f"{self.instance}@{self.host_id}"
