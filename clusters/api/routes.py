"""Routes API: a cluster's routes (nested under the cluster), its haproxy.cfg, a sync on demand, the
health key, and the proxies' health check endpoints.

    GET, POST            /api/v1/clusters/{id}/routes/
    GET, PATCH, DELETE   /api/v1/clusters/{id}/routes/{route_id}/
    GET                  /api/v1/clusters/{id}/routes/{route_id}/haproxy.cfg      (text/plain)
    POST                 /api/v1/clusters/{id}/routes/{route_id}/sync/
    POST                 /api/v1/clusters/{id}/health-key/                         (the new key, once)
    GET                  /api/v1/health/clusters/{id}/servers/{host}:{port}/primary | /replica

Reading routes needs view on the cluster, changing them admin, a sync operate; everything goes through
TenantScopedViewSet (404 for a cluster the caller may not see). A route is shown flat, as it is written:
`{"id", "kind", "name", <its settings>, "secrets_set": [...], "last_sync": {...}}`; secrets never appear.
The health endpoints take no session or token: only the cluster's health key.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import re_path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from clusters.models import Cluster
from clusters.routes.models import Route
from clusters.routes.spec import KINDS, RouteInvalid, secret_fields
from clusters.services import healthcheck, routing
from controlplane.api.viewsets import TenantScopedViewSet
from tenants.access import ADMIN, OPERATE, VIEW, clusters_for, has_cluster_perm

ID = r"\d{1,18}"  # ids fit in 64 bits: a longer number is a 404, not an overflow


class RouteSerializer(serializers.Serializer):
    """The shape of a route in answers (settings of its kind appear as top-level fields)."""

    id = serializers.IntegerField()
    cluster = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=KINDS)
    name = serializers.CharField()
    secrets_set = serializers.ListField(
        child=serializers.CharField(), help_text="secret fields that hold a value"
    )
    last_sync = inline_serializer(
        "RouteSyncResult",
        {
            "at": serializers.DateTimeField(allow_null=True),
            "ok": serializers.BooleanField(allow_null=True),
            "detail": serializers.CharField(),
            "trigger": serializers.CharField(),
        },
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class RouteWriteSerializer(serializers.Serializer):
    """What a route is registered or changed with; which fields apply depends on `kind` (docs/routing.md)."""

    kind = serializers.ChoiceField(choices=KINDS)
    name = serializers.CharField(required=False, max_length=64)
    runtime_api = serializers.CharField(required=False, help_text="haproxy: unix:///path or tcp://host:port")
    write_backend = serializers.CharField(required=False)
    read_backend = serializers.CharField(required=False)
    check = serializers.ChoiceField(choices=["mysql", "http"], required=False)
    check_user = serializers.CharField(required=False)
    check_inter_ms = serializers.IntegerField(required=False)
    health_url = serializers.CharField(required=False)
    write_bind = serializers.CharField(required=False)
    read_bind = serializers.CharField(required=False)
    api_url = serializers.CharField(required=False, help_text="powerdns, maxscale, consul")
    api_key = serializers.CharField(required=False, write_only=True)
    server_id = serializers.CharField(required=False)
    zone = serializers.CharField(required=False)
    write_record = serializers.CharField(required=False)
    read_record = serializers.CharField(required=False)
    ttl = serializers.IntegerField(required=False)
    script = serializers.CharField(required=False)
    admin_address = serializers.CharField(
        required=False, help_text="proxysql: host:port of the admin interface"
    )
    admin_user = serializers.CharField(required=False)
    admin_password = serializers.CharField(required=False, write_only=True)
    writer_hostgroup = serializers.IntegerField(required=False)
    reader_hostgroup = serializers.IntegerField(required=False)
    save_to_disk = serializers.BooleanField(required=False)
    user = serializers.CharField(required=False)
    password = serializers.CharField(required=False, write_only=True)
    token = serializers.CharField(required=False, write_only=True)
    key_prefix = serializers.CharField(required=False)
    service = serializers.CharField(required=False)
    node = serializers.CharField(required=False)


def route_payload(route: Route) -> dict:
    secrets = secret_fields(route.kind)
    stored = set()
    if route.secrets_encrypted:
        from controlplane.crypto import decrypt_json

        try:
            stored = set(decrypt_json(route.secrets_encrypted) or {})
        except ValueError:
            stored = set()
    payload = {"id": route.pk, "cluster": route.cluster_id, "kind": route.kind, "name": route.name}
    payload.update({k: v for k, v in route.settings.items() if k not in secrets})
    payload.update(
        {
            "secrets_set": sorted(stored & set(secrets)),
            "last_sync": {
                "at": route.last_sync_at.isoformat() if route.last_sync_at else None,
                "ok": route.last_sync_ok,
                "detail": route.last_sync_detail,
                "trigger": route.last_sync_trigger,
            },
            "created_at": route.created_at.isoformat() if route.created_at else None,
            "updated_at": route.updated_at.isoformat() if route.updated_at else None,
        }
    )
    return payload


def _invalid(exc: RouteInvalid) -> exceptions.ValidationError:
    return exceptions.ValidationError(exc.errors)


class RouteViewSet(TenantScopedViewSet):
    queryset = Route.objects.select_related("cluster__tenant")
    serializer_class = RouteSerializer
    cluster_lookup = "cluster"
    permission_by_action = {"sync": OPERATE}

    def get_queryset(self):
        return super().get_queryset().filter(cluster_id=self.kwargs["cluster_pk"])

    def _cluster(self, perm: str) -> Cluster:
        cluster = (
            clusters_for(self.actor, VIEW)
            .select_related("tenant")
            .filter(pk=self.kwargs["cluster_pk"])
            .first()
        )
        if cluster is None:
            raise exceptions.NotFound("Not found.")
        if perm != VIEW and not has_cluster_perm(self.actor, cluster, perm):
            raise exceptions.PermissionDenied(f"This needs the {perm} permission on the cluster.")
        return cluster

    @extend_schema(responses={200: RouteSerializer(many=True)})
    def list(self, request, cluster_pk=None):
        self._cluster(VIEW)
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([route_payload(r) for r in page])

    @extend_schema(request=RouteWriteSerializer, responses={201: RouteSerializer})
    def create(self, request, cluster_pk=None):
        """Register a route; it is synced at once and the answer carries that sync's result."""
        cluster = self._cluster(ADMIN)
        try:
            route, _ = routing.create_route(cluster, request.data, requested_by=self.actor.label())
        except RouteInvalid as exc:
            raise _invalid(exc) from None
        self.audit_target = route
        route.refresh_from_db()
        return Response(route_payload(route), status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: RouteSerializer})
    def retrieve(self, request, cluster_pk=None, pk=None):
        return Response(route_payload(self.get_object()))

    @extend_schema(request=RouteWriteSerializer, responses={200: RouteSerializer})
    def partial_update(self, request, cluster_pk=None, pk=None):
        """Change some fields (secrets left out stay as they are); the route is synced again."""
        route = self.get_object()
        self.audit_target = route
        try:
            route, _ = routing.update_route(route, request.data, requested_by=self.actor.label())
        except RouteInvalid as exc:
            raise _invalid(exc) from None
        route.refresh_from_db()
        return Response(route_payload(route))

    def update(self, request, cluster_pk=None, pk=None):
        raise exceptions.MethodNotAllowed("PUT", detail="Use PATCH with the fields to change.")

    def destroy(self, request, cluster_pk=None, pk=None):
        route = self.get_object()
        self.audit_target = route
        routing.delete_route(route, requested_by=self.actor.label())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="v1_clusters_routes_haproxy_cfg_retrieve",
        parameters=[
            OpenApiParameter(
                "check",
                str,
                enum=["mysql", "http"],
                required=False,
                description="health checks: HAProxy's mysql-check or http-check against dbpilot",
            )
        ],
        responses={(200, "text/plain"): OpenApiTypes.STR},
    )
    def haproxy_cfg(self, request, cluster_pk=None, pk=None):
        """A complete haproxy.cfg for this HAProxy route (write and read frontends and backends)."""
        route = self.get_object()
        if route.kind != "haproxy":
            raise exceptions.NotFound("Only haproxy routes have a haproxy.cfg.")
        check = request.query_params.get("check") or None
        if check not in (None, "mysql", "http"):
            raise exceptions.ValidationError({"check": "must be mysql or http"})
        try:
            text = routing.haproxy_config(route, check)
        except ValueError as exc:
            raise exceptions.ValidationError({"check": str(exc)}) from None
        return HttpResponse(text, content_type="text/plain; charset=utf-8")

    @extend_schema(request=None, responses={200: RouteSerializer})
    def sync(self, request, cluster_pk=None, pk=None):
        """Apply the current routing to this route now; the answer carries the result."""
        route = self.get_object()
        self.audit_target = route
        routing.sync_route(route, routing.TRIGGER_MANUAL)
        route.refresh_from_db()
        return Response(route_payload(route))


class HealthKeySerializer(serializers.Serializer):
    health_key = serializers.CharField(help_text="shown once: give it to the proxies (DBPILOT_HEALTH_KEY)")


class HealthKeyViewSet(TenantScopedViewSet):
    queryset = Cluster.objects.all()
    cluster_lookup = ""
    lookup_url_kwarg = "cluster_pk"
    serializer_class = HealthKeySerializer

    @extend_schema(request=None, responses={201: HealthKeySerializer})
    def rotate(self, request, cluster_pk=None):
        """A new health key for the proxies' health checks (the old one stops working). Shown once."""
        cluster = self.get_object()
        self.audit_target = cluster
        self.audit_action = "cluster.health_key"
        key = healthcheck.rotate_health_key(cluster, requested_by=self.actor.label())
        return Response({"health_key": key}, status=status.HTTP_201_CREATED)


class ServerHealthView(APIView):
    """For proxies' external checks: 200 when the server may take this role now, else 503. Authorized by
    the cluster's health key alone (header X-Dbpilot-Health-Key); anything else is a 404."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        auth=[],
        parameters=[
            OpenApiParameter("X-Dbpilot-Health-Key", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("role", str, OpenApiParameter.PATH, enum=["primary", "replica"]),
            OpenApiParameter(
                "server",
                str,
                OpenApiParameter.PATH,
                description="host:port ([v6]:port), or dbpilot's server id",
            ),
        ],
        responses={
            200: OpenApiResponse(description="the server may take this role"),
            503: OpenApiResponse(description="it may not (the body says why)"),
            404: OpenApiResponse(description="unknown cluster or server, or a wrong key"),
        },
    )
    def get(self, request, cluster_id=None, server=None, role=None):
        answer, address = healthcheck.health_answer(
            int(cluster_id), server, role, request.headers.get("X-Dbpilot-Health-Key")
        )
        if answer is None:
            raise exceptions.NotFound("Not found.")
        body = {"server": address, "role": role, **answer.as_dict()}
        response = Response(
            body, status=status.HTTP_200_OK if answer.healthy else status.HTTP_503_SERVICE_UNAVAILABLE
        )
        response["Cache-Control"] = "no-store"
        return response


# basename "route": audited as route.create, route.partial_update... like every other resource.
_routes = RouteViewSet.as_view({"get": "list", "post": "create"}, basename="route")
_route = RouteViewSet.as_view(
    {"get": "retrieve", "patch": "partial_update", "put": "update", "delete": "destroy"}, basename="route"
)

route_urlpatterns = [
    re_path(rf"^clusters/(?P<cluster_pk>{ID})/routes/$", _routes, name="cluster-routes"),
    re_path(rf"^clusters/(?P<cluster_pk>{ID})/routes/(?P<pk>{ID})/$", _route, name="cluster-route"),
    re_path(
        rf"^clusters/(?P<cluster_pk>{ID})/routes/(?P<pk>{ID})/haproxy\.cfg$",
        RouteViewSet.as_view({"get": "haproxy_cfg"}, basename="route"),
        name="cluster-route-haproxy-cfg",
    ),
    re_path(
        rf"^clusters/(?P<cluster_pk>{ID})/routes/(?P<pk>{ID})/sync/$",
        RouteViewSet.as_view({"post": "sync"}, basename="route"),
        name="cluster-route-sync",
    ),
    re_path(
        rf"^clusters/(?P<cluster_pk>{ID})/health-key/$",
        HealthKeyViewSet.as_view({"post": "rotate"}, basename="cluster"),
        name="cluster-health-key",
    ),
    re_path(
        rf"^health/clusters/(?P<cluster_id>{ID})/servers/(?P<server>[^/]{{1,300}})/(?P<role>primary|replica)$",
        ServerHealthView.as_view(),
        name="server-health",
    ),
]
