"""Filters of the cluster list: `?name=` (exact, within what the caller may view) and `?tenant=` (its name).

Cluster names are unique within a tenant, so `?name=X` answers at most one cluster per tenant: this is how
the CLI and scripts find a cluster by name without listing every page.
"""

from __future__ import annotations

import django_filters

from clusters.models import Cluster


class ClusterFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(
        field_name="name", lookup_expr="exact", help_text="the cluster's name (exact)"
    )
    tenant = django_filters.CharFilter(
        field_name="tenant__name", lookup_expr="exact", help_text="the tenant's name (exact)"
    )

    class Meta:
        model = Cluster
        fields = ["name", "tenant"]
