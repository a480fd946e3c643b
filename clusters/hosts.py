"""The pool of database hosts of the `hosts` provider, registered by platform operators.

Each host is to run a dbpilot agent (`celery -A controlplane worker -Q host.<name>` with
`DBPILOT_AGENT_HOST=<name>`); the agent, the provider that uses the pool and host-down detection are not
built yet (docs/provisioning.md). `clusters.domain.placement` decides where servers go.
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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "clusters"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
