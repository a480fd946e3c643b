"""Per-tenant quotas: how many clusters and servers a tenant may have."""
from __future__ import annotations

from rest_framework import exceptions, status


class QuotaExceeded(exceptions.APIException):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "quota_exceeded"


def check_quota(tenant, *, add_clusters: int = 0, add_servers: int = 0) -> None:
    from clusters.models import Cluster, Server

    clusters = Cluster.objects.filter(tenant=tenant).count()
    if add_clusters and clusters + add_clusters > tenant.max_clusters:
        raise QuotaExceeded(
            f"Tenant {tenant.name} may have at most {tenant.max_clusters} clusters ({clusters} now); "
            "delete one or ask the platform operator to raise the quota."
        )
    servers = Server.objects.filter(cluster__tenant=tenant).count()
    if add_servers and servers + add_servers > tenant.max_servers:
        raise QuotaExceeded(
            f"Tenant {tenant.name} may have at most {tenant.max_servers} servers ({servers} now); "
            "remove some or ask the platform operator to raise the quota."
        )
