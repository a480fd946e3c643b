"""Per-tenant quotas: how many clusters and servers a tenant may have (Tenant.max_clusters, max_servers,
set by the platform operator in the Django admin). Registration and provisioning call `check_quota`
before creating anything.
"""

from __future__ import annotations

from django.apps import apps
from rest_framework import exceptions, status


class QuotaExceeded(exceptions.APIException):
    """403 `quota_exceeded`, with a message naming the limit."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = "quota_exceeded"
    default_detail = "The tenant's quota is exhausted."


def check_quota(tenant, add_clusters: int = 0, add_servers: int = 0) -> None:
    """Raise QuotaExceeded when adding this many clusters and servers would pass the tenant's limits.

    The count is not locked: callers that create rows call it again inside their transaction with the
    tenant's row locked (select_for_update), as registration does.
    """
    Cluster, Server = apps.get_model("clusters", "Cluster"), apps.get_model("clusters", "Server")  # noqa: N806

    if add_clusters:
        clusters = Cluster.objects.filter(tenant=tenant).count()
        if clusters + add_clusters > tenant.max_clusters:
            raise QuotaExceeded(
                f"Tenant {tenant.name} may have at most {tenant.max_clusters} clusters ({clusters} now); "
                "delete one or ask the platform operator to raise the quota."
            )
    if add_servers:
        servers = Server.objects.filter(cluster__tenant=tenant).count()
        if servers + add_servers > tenant.max_servers:
            raise QuotaExceeded(
                f"Tenant {tenant.name} may have at most {tenant.max_servers} servers ({servers} now, "
                f"{add_servers} more asked); remove some or ask the platform operator to raise the quota."
            )
