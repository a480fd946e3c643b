"""Provisioning API: create a cluster from a spec, delete it (deletion protection), stop and start it, add
and remove replicas, parameter groups, and what is left of the tenant's quota.

    POST     /api/v1/clusters/  {"name", "provision": {...}}   -> 202, the cluster object (job: provision)
    DELETE   /api/v1/clusters/{id}/                           -> 409 protected | 202 deprovision | 204 registered
    POST     /api/v1/clusters/{id}/stop/ , /start/            -> 202 with the job
    POST     /api/v1/clusters/{id}/servers/  {} | {"host"}    -> 202 with the job (add a replica)
    DELETE   /api/v1/clusters/{id}/servers/{server_id}/       -> 202 with the job (remove a replica; 409 primary)
    POST     /api/v1/clusters/{id}/parameter-group/ {"parameter_group": NAME|null}
                                                              -> 202 the cluster object (job: apply_parameters)
                                                                 | 200 when no setting changes
    GET,POST /api/v1/parameter-groups/, GET,PATCH,DELETE /api/v1/parameter-groups/{id}/
    GET      /api/v1/quota/                                   -> clusters, servers, memory_mb: limit, used, left

`ClusterViewSet.create` and `.destroy` (clusters/api/views.py) hand provisioning requests to
`create_provisioned` and `destroy_cluster` here; everything else is routed to this module.
"""

from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.urls import re_path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from clusters.api.serializers import ClusterSerializer, JobSerializer
from clusters.domain.parameters import ParameterError, validate_parameters
from clusters.models import Cluster, ParameterGroup
from clusters.services import parameter_groups, provisioning
from controlplane.api.errors import Conflict
from controlplane.api.viewsets import AuditedAPIView, AuditedViewSet, TenantScopedViewSet
from tenants.access import ADMIN, OPERATE, VIEW, creation_team, teams_allowing
from tenants.validation import NAME_PATTERN

ID = r"\d{1,18}"


def _invalid(exc: provisioning.ProvisionError) -> exceptions.ValidationError:
    return exceptions.ValidationError(exc.errors)


def _conflict(exc: provisioning.ProvisionConflict) -> Conflict:
    return Conflict(exc.detail, exc.code)


def create_provisioned(view, request) -> Response:
    """`POST /clusters/` with `provision`: validate, check quotas, create the cluster and its job (202)."""
    team = creation_team(view.actor, request.data.get("team"))
    if team is None:
        raise exceptions.PermissionDenied(
            "Provisioning a cluster needs the admin role in a team (or an admin-scoped token)."
        )
    try:
        parsed = provisioning.parse_request(team.tenant, request.data)
        provisioning.check_provision_quota(team.tenant, parsed)
        cluster = provisioning.provision_cluster(team, parsed, requested_by=view.actor.label())
    except provisioning.ProvisionError as exc:
        raise _invalid(exc) from None
    view.audit_target = cluster
    cluster = view.get_queryset().get(pk=cluster.pk)
    return Response(view.get_serializer(cluster).data, status=status.HTTP_202_ACCEPTED)


def destroy_cluster(view, cluster: Cluster) -> Response | None:
    """DELETE: 409 while deletion protection is on; 202 with the deprovision job for a provisioned cluster;
    None for a registered one (the caller forgets it: 204)."""
    # The answer is made inside the transaction: a job run inline (tests) removes the cluster at commit.
    with transaction.atomic():
        try:
            job = provisioning.delete_provisioned(cluster, requested_by=view.actor.label())
        except provisioning.ProvisionConflict as exc:
            raise _conflict(exc) from None
        if job is None:
            return None
        data = view.get_serializer(view.get_queryset().get(pk=cluster.pk)).data
    return Response(data, status=status.HTTP_202_ACCEPTED)


class ProvisionedClusterViewSet(TenantScopedViewSet):
    """Jobs on a provisioned cluster's servers: stop/start the cluster, add/remove a replica."""

    queryset = Cluster.objects.select_related("tenant", "primary")
    serializer_class = JobSerializer
    cluster_lookup = ""
    lookup_url_kwarg = "cluster_pk"
    permission_by_action = {
        "stop": ADMIN,
        "start": OPERATE,
        "add_server": ADMIN,
        "remove_server": ADMIN,
        "set_parameter_group": ADMIN,
    }

    def _job(self, call, *args, **kwargs) -> Response:
        cluster = self.get_object()
        self.audit_target = cluster
        try:
            job = call(cluster, *args, requested_by=self.actor.label(), **kwargs)
        except provisioning.ProvisionConflict as exc:
            raise _conflict(exc) from None
        except provisioning.ProvisionError as exc:
            raise _invalid(exc) from None
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: JobSerializer})
    def stop(self, request, cluster_pk=None):
        """Stop every server of a provisioned cluster, keeping its data (a job)."""
        return self._job(provisioning.stop_cluster)

    @extend_schema(request=None, responses={202: JobSerializer})
    def start(self, request, cluster_pk=None):
        """Start a stopped provisioned cluster again (a job)."""
        return self._job(provisioning.start_cluster)

    @extend_schema(
        request=inline_serializer("AddReplica", {"host": serializers.CharField(required=False)}),
        responses={202: JobSerializer},
    )
    def add_server(self, request, cluster_pk=None):
        """Add a replica, cloned from a replica with mariadb-backup (a job)."""
        return self._job(provisioning.add_replica, request.data if isinstance(request.data, dict) else None)

    @extend_schema(request=None, responses={202: JobSerializer})
    def remove_server(self, request, cluster_pk=None, server_id=None):
        """Remove a replica with its data (a job); the primary is refused (409): switch over first."""
        cluster = self.get_object()
        server = get_object_or_404(cluster.servers, pk=server_id)
        return self._job(lambda c, **kw: provisioning.remove_replica(c, server, **kw))

    @extend_schema(
        request=inline_serializer(
            "SetParameterGroup", {"parameter_group": serializers.CharField(allow_null=True)}
        ),
        responses={202: ClusterSerializer, 200: ClusterSerializer},
    )
    def set_parameter_group(self, request, cluster_pk=None):
        """Give the cluster another parameter group (null: none): 202 with the cluster object whose `job`
        applies the settings that change (live, or by a rolling restart), 200 when none changes."""
        cluster = self.get_object()
        self.audit_target = cluster
        body = request.data if isinstance(request.data, dict) else {}
        if "parameter_group" not in body:
            raise exceptions.ValidationError(
                {"parameter_group": "required: a group's name, or null for none"}
            )
        group, name = None, body["parameter_group"]
        if name is not None and (not isinstance(name, str) or not NAME_PATTERN.match(name)):
            raise exceptions.ValidationError(
                {"parameter_group": "a group's name (lowercase letters, digits, dashes) or null"}
            )
        if name is not None:
            group = ParameterGroup.objects.filter(tenant_id=cluster.tenant_id, name=name).first()
            if group is None:
                raise exceptions.ValidationError(
                    {
                        "parameter_group": f"no parameter group named {body['parameter_group']!r} in this tenant"
                    }
                )
        try:
            with transaction.atomic():
                job = parameter_groups.assign_group(cluster, group, requested_by=self.actor.label())
        except provisioning.ProvisionConflict as exc:
            raise _conflict(exc) from None
        cluster = Cluster.objects.select_related("tenant", "primary", "last_job", "parameter_group").get(
            pk=cluster.pk
        )
        data = ClusterSerializer(cluster, context={"request": request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED if job else status.HTTP_200_OK)


class ParameterGroupSerializer(serializers.ModelSerializer):
    tenant = serializers.CharField(source="tenant.name", read_only=True)
    clusters = serializers.SerializerMethodField(help_text="the clusters that use this group")

    class Meta:
        model = ParameterGroup
        fields = ["id", "name", "tenant", "parameters", "clusters", "created_at", "updated_at"]
        read_only_fields = ["id", "tenant", "clusters", "created_at", "updated_at"]

    def get_clusters(self, obj) -> list[dict]:
        return [
            {"id": c.id, "name": c.name, "pending_restart": (c.provision or {}).get("pending_restart", {})}
            for c in obj.clusters.all()
        ]


class ParameterGroupViewSet(AuditedViewSet):
    """Tenant-owned parameter groups: readable by the tenant's teams, changed by its admins."""

    serializer_class = ParameterGroupSerializer

    def get_queryset(self):
        tenants = {t.tenant_id for t in teams_allowing(self.actor, VIEW)} | {
            t.tenant_id for t in teams_allowing(self.actor, ADMIN)
        }
        return (
            ParameterGroup.objects.filter(tenant_id__in=tenants)
            .select_related("tenant")
            .prefetch_related("clusters")
        )

    def _admin_team(self):
        team = creation_team(self.actor, None)
        if team is None:
            raise exceptions.PermissionDenied("Changing parameter groups needs the admin role in a team.")
        return team

    def list(self, request):
        return Response(self.get_serializer(self.get_queryset(), many=True).data)

    def retrieve(self, request, pk=None):
        return Response(self.get_serializer(get_object_or_404(self.get_queryset(), pk=pk)).data)

    def create(self, request):
        team = self._admin_team()
        body = request.data if isinstance(request.data, dict) else {}
        try:
            group = parameter_groups.create_group(team.tenant, body.get("name"), body.get("parameters", {}))
        except ParameterError as exc:
            raise exceptions.ValidationError(
                {
                    f"parameters.{k}" if k not in ("name", "parameters") else k: v
                    for k, v in exc.errors.items()
                }
            ) from None
        self.audit_target = group
        return Response(self.get_serializer(group).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        team = self._admin_team()
        group = get_object_or_404(self.get_queryset().filter(tenant=team.tenant), pk=pk)
        self.audit_target = group
        body = request.data if isinstance(request.data, dict) else {}
        try:
            parameters = validate_parameters(body.get("parameters", {}))
        except ParameterError as exc:
            raise exceptions.ValidationError({f"parameters.{k}": v for k, v in exc.errors.items()}) from None
        try:
            with transaction.atomic():
                jobs = parameter_groups.change_group(group, parameters, requested_by=self.actor.label())
        except provisioning.ProvisionConflict as exc:
            raise _conflict(exc) from None
        group.refresh_from_db()
        data = dict(self.get_serializer(group).data)
        data["jobs"] = [JobSerializer(j).data for j in jobs]
        return Response(data)

    def destroy(self, request, pk=None):
        team = self._admin_team()
        group = get_object_or_404(self.get_queryset().filter(tenant=team.tenant), pk=pk)
        if group.clusters.exists():
            raise Conflict(
                f"parameter group {group.name} is used by "
                f"{', '.join(c.name for c in group.clusters.all())}: it cannot be deleted",
                "in_use",
            )
        self.audit_target = group
        group.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class QuotaView(AuditedAPIView):
    @extend_schema(
        responses={
            200: inline_serializer(
                "Quota",
                {
                    "tenant": serializers.CharField(),
                    "clusters": serializers.DictField(),
                    "servers": serializers.DictField(),
                    "memory_mb": serializers.DictField(),
                    "providers": serializers.ListField(child=serializers.CharField()),
                },
            )
        }
    )
    def get(self, request):
        """What the caller's tenant may still create: clusters, servers and server memory (limit, used, left),
        and the providers this platform provisions with (`provision.provider`)."""
        teams = teams_allowing(self.actor, VIEW)
        if not teams:
            raise exceptions.NotFound("You are in no team.")
        tenant = teams[0].tenant
        return Response(
            {
                "tenant": tenant.name,
                **provisioning.quota_left(tenant),
                "providers": provisioning.enabled_providers(),
            }
        )


provisioning_urlpatterns = [
    re_path(
        rf"^clusters/(?P<cluster_pk>{ID})/stop/$",
        ProvisionedClusterViewSet.as_view({"post": "stop"}),
        name="cluster-stop",
    ),
    re_path(
        rf"^clusters/(?P<cluster_pk>{ID})/start/$",
        ProvisionedClusterViewSet.as_view({"post": "start"}),
        name="cluster-start",
    ),
    re_path(
        rf"^clusters/(?P<cluster_pk>{ID})/servers/$",
        ProvisionedClusterViewSet.as_view({"post": "add_server"}),
        name="cluster-servers",
    ),
    re_path(
        rf"^clusters/(?P<cluster_pk>{ID})/servers/(?P<server_id>{ID})/$",
        ProvisionedClusterViewSet.as_view({"delete": "remove_server"}),
        name="cluster-server",
    ),
    re_path(
        rf"^clusters/(?P<cluster_pk>{ID})/parameter-group/$",
        ProvisionedClusterViewSet.as_view({"post": "set_parameter_group"}),
        name="cluster-parameter-group",
    ),
    re_path(
        r"^parameter-groups/$",
        ParameterGroupViewSet.as_view({"get": "list", "post": "create"}),
        name="parameter-groups",
    ),
    re_path(
        rf"^parameter-groups/(?P<pk>{ID})/$",
        ParameterGroupViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="parameter-group",
    ),
    re_path(r"^quota/$", QuotaView.as_view(), name="quota"),
]
