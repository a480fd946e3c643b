"""Per-server history of a cluster, for the portal's charts.

    GET /api/v1/clusters/{id}/metrics/?range=1h|24h&series=lag,connections,...

Same permission as the topology (view on the cluster; 404 otherwise). The answer:
`{"cluster", "range", "resolution_seconds", "series": [...], "servers": [{"id", "address", "t": [unix...],
"<series>": [values or null...]}], "marks": [{"t", "kind", "severity", "message"}]}`, where marks are the
failovers, switchovers and findings (opened, resolved) of the range, to draw on the time axis.
`since=<unix time>` returns only what came after it (a live chart fetches only what is new).
"""

from __future__ import annotations

import time

from django.urls import re_path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response

from clusters.domain.history import RANGES, SERIES, parse_series
from clusters.models import Cluster
from clusters.services.history import chart
from controlplane.api.viewsets import TenantScopedViewSet

ID = r"\d{1,18}"


class ClusterMetricsViewSet(TenantScopedViewSet):
    queryset = Cluster.objects.all()
    cluster_lookup = ""

    @extend_schema(
        operation_id="cluster_metrics",
        parameters=[
            OpenApiParameter(
                "range",
                OpenApiTypes.STR,
                enum=list(RANGES),
                description="1h (tick resolution) or 24h (one point a minute); default 1h",
            ),
            OpenApiParameter(
                "since",
                OpenApiTypes.NUMBER,
                description="only points and marks after this unix time (a live chart's next fetch)",
            ),
            OpenApiParameter(
                "series",
                OpenApiTypes.STR,
                description=f"comma-separated among {', '.join(SERIES)}; default all",
            ),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def retrieve(self, request, pk=None):
        cluster = self.get_object()
        range_name = request.query_params.get("range") or "1h"
        if range_name not in RANGES:
            raise exceptions.ValidationError(
                {"range": [f"Use one of {', '.join(RANGES)}, not {range_name!r}."]}
            )
        try:
            series = parse_series(request.query_params.get("series"))
        except ValueError as exc:
            raise exceptions.ValidationError({"series": [str(exc)]}) from exc
        since = request.query_params.get("since")
        try:
            since_t = float(since) if since else None
        except ValueError:
            raise exceptions.ValidationError({"since": ["Give a unix time in seconds."]}) from None
        return Response(chart(cluster, range_name, series, now=time.time(), after=since_t))


metrics_urlpatterns = [
    re_path(
        rf"^clusters/(?P<pk>{ID})/metrics/$",
        ClusterMetricsViewSet.as_view({"get": "retrieve"}),
        name="cluster-metrics",
    ),
]
