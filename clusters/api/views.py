"""Cluster API views: thin shells over clusters.services."""
from __future__ import annotations

from rest_framework import mixins

from clusters.api.serializers import ClusterSerializer
from clusters.models import Cluster
from controlplane.api.viewsets import TenantScopedViewSet


class ClusterViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    queryset = Cluster.objects.select_related("tenant", "primary", "last_job").prefetch_related("servers", "findings")
    serializer_class = ClusterSerializer
    cluster_lookup = ""
