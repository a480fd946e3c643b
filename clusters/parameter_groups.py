"""Parameter groups: a tenant's named set of allowlisted my.cnf settings (clusters.domain.parameters),
used by the provisioned clusters that name it."""

from __future__ import annotations

from django.db import models

from tenants.models import Tenant


class ParameterGroup(models.Model):
    """`{"name", "parameters": {"name": value}}`, tenant-owned; values stored as my.cnf writes them."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="parameter_groups")
    name = models.CharField(max_length=63)
    parameters = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "clusters"
        ordering = ["tenant_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="unique_parameter_group_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.tenant.name}/{self.name}"
