"""Cluster API views: thin shells over clusters.services (validate, authorize, call one service)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from clusters.api import provisioning as provisioning_api
from clusters.api.failover_serializers import FailoverControlSerializer, FailoverRequestSerializer
from clusters.api.filters import ClusterFilter
from clusters.api.serializers import (
    ClusterSerializer,
    EventSerializer,
    JobSerializer,
    MaintenanceSerializer,
    RegisterClusterSerializer,
    SettingsPatchSerializer,
    TopologySerializer,
)
from clusters.domain.settings import SettingsError
from clusters.jobs.engine import ActiveJobExists
from clusters.models import Cluster, Event, Job, Server
from clusters.services import backups, failover, failover_control, registration, switchover
from clusters.services.ha_request import HaRequestRefused
from clusters.services.topology_view import topology_payload
from controlplane.api.errors import Conflict
from controlplane.api.viewsets import TenantScopedViewSet
from tenants.access import OPERATE


class SwitchoverRequestSerializer(serializers.Serializer):
    candidate = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=300,
        help_text='the replica to promote, "host:port" (default: elected)',
    )
    catchup_timeout_seconds = serializers.FloatField(
        required=False,
        min_value=1,
        max_value=600,
        help_text="how long the candidate may take to catch up (default 30)",
    )


def conflict_from(refusal: HaRequestRefused) -> Conflict:
    """A refused HA request as the API's 409: detail, code, checks, and the active job when one blocks."""
    extra = {"job": refusal.active_job.id} if refusal.active_job else {}
    return Conflict(refusal.detail, refusal.code, refusal.checks, **extra)


class ClusterViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    queryset = Cluster.objects.select_related(
        "tenant", "primary", "last_job", "parameter_group"
    ).prefetch_related("servers", "findings", "routes")
    serializer_class = ClusterSerializer
    filterset_class = ClusterFilter  # ?name= and ?tenant= (clusters/api/filters.py)
    cluster_lookup = ""
    permission_by_action = {
        "maintenance": OPERATE,
        "switchover": OPERATE,
        "failover": OPERATE,
        "failover_control_reset": OPERATE,
    }

    @extend_schema(request=RegisterClusterSerializer, responses={201: ClusterSerializer})
    def create(self, request):
        """Register an existing cluster (dbpilot then observes it; failover_mode starts manual), or provision
        one with `{"name", "provision": {...}}` (202; clusters/api/provisioning.py)."""
        if isinstance(request.data, dict) and "provision" in request.data:  # provisioning: its own module
            return provisioning_api.create_provisioned(self, request)
        serializer = RegisterClusterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            cluster = registration.register(
                self.actor, request.data, team_id=serializer.validated_data.get("team")
            )
        except registration.RegistrationForbidden as exc:
            raise exceptions.PermissionDenied(str(exc)) from None
        except registration.RegistrationThrottled as exc:
            raise exceptions.Throttled(exc.retry_after, str(exc)) from None
        except registration.RegistrationError as exc:
            raise exceptions.ValidationError(exc.errors) from None
        self.audit_target = cluster
        return Response(
            self.get_serializer(self.get_queryset().get(pk=cluster.pk)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=SettingsPatchSerializer, responses={200: ClusterSerializer})
    def partial_update(self, request, pk=None):
        """Change settings: `{"settings": {...}}` (`settings.paused` pauses), or top-level `failover_mode`.
        `name`, `paused` and `failover_armed` are read-only (400 naming the field)."""
        cluster = self.get_object()
        self.audit_target = cluster
        serializer = SettingsPatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            registration.change_cluster(cluster, serializer.changes(), requested_by=self.actor.label())
        except SettingsError as exc:
            raise exceptions.ValidationError({f"settings.{k}": v for k, v in exc.errors.items()}) from None
        except ActiveJobExists as exc:  # failover_mode automatic starts the adopt job: one HA job at a time
            raise Conflict(
                f"settings not changed: {exc}",
                "ha_job_active",
                [{"name": "no_active_ha_job", "ok": False, "detail": str(exc)}],
                **({"job": exc.active.id} if exc.active else {}),
            ) from None
        return Response(self.get_serializer(self.get_queryset().get(pk=cluster.pk)).data)

    def update(self, request, pk=None):
        raise exceptions.MethodNotAllowed("PUT", detail="Use PATCH with the settings to change.")

    def destroy(self, request, pk=None):
        cluster = self.get_object()
        self.audit_target = cluster
        if Job.objects.filter(cluster=cluster, state__in=("pending", "running")).exists():
            raise exceptions.ValidationError(
                {"cluster": "a job is running on this cluster; wait for it to finish"}
            )
        final_backup = request.query_params.get("final_backup", "").lower() in ("1", "true", "yes")
        # Backups outlive the cluster only when asked (kept backup_retention_days, docs/backups.md).
        if not (cluster.settings or {}).get("deletion_protection"):  # else the 409 below, nothing changed
            backups.keep_after_delete(cluster, final_backup)
        provisioned = provisioning_api.destroy_cluster(self, cluster)  # deletion protection, deprovision job
        if provisioned is not None:
            return provisioned
        registration.delete_cluster(cluster)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: TopologySerializer})
    @action(detail=True, methods=["get"])
    def topology(self, request, pk=None):
        cluster = self.get_object()
        return Response(topology_payload(cluster.id))

    @extend_schema(responses={200: EventSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def events(self, request, pk=None):
        cluster = self.get_object()
        page = self.paginate_queryset(Event.objects.filter(cluster=cluster).order_by("-created_at", "-id"))
        return self.get_paginated_response(EventSerializer(page, many=True).data)

    @extend_schema(responses={200: JobSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def jobs(self, request, pk=None):
        cluster = self.get_object()
        page = self.paginate_queryset(Job.objects.filter(cluster=cluster).order_by("-created_at", "-id"))
        return self.get_paginated_response(JobSerializer(page, many=True).data)

    @extend_schema(request=MaintenanceSerializer, responses={200: ClusterSerializer})
    @action(detail=True, methods=["post"], url_path=r"servers/(?P<server_id>\d{1,18})/maintenance")
    def maintenance(self, request, pk=None, server_id=None):
        cluster = self.get_object()
        self.audit_target = cluster
        serializer = MaintenanceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            registration.set_server_maintenance(
                cluster, int(server_id), serializer.validated_data["on"], requested_by=self.actor.label()
            )
        except Server.DoesNotExist:
            raise exceptions.NotFound("Not found.") from None
        return Response(self.get_serializer(self.get_queryset().get(pk=cluster.pk)).data)

    @extend_schema(request=SwitchoverRequestSerializer, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def switchover(self, request, pk=None):
        """Planned switchover: 202 with the job; 409 with the blocking checks (and no job)."""
        cluster = self.get_object()
        self.audit_target = cluster
        serializer = SwitchoverRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            job = switchover.request_switchover(
                cluster,
                candidate=serializer.validated_data.get("candidate"),
                requested_by=self.actor.label(),
                catchup_timeout_seconds=serializer.validated_data.get("catchup_timeout_seconds"),
            )
        except switchover.InvalidSwitchoverRequest as exc:
            raise exceptions.ValidationError({"candidate": str(exc)}) from None
        except switchover.SwitchoverRefused as exc:
            raise conflict_from(exc) from None
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=FailoverRequestSerializer, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def failover(self, request, pk=None):
        """Manual failover of a primary that is down: 202 with the job; 409 with the blocking checks (a live
        primary: use a switchover)."""
        cluster = self.get_object()
        self.audit_target = cluster
        serializer = FailoverRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            job = failover.request_failover(
                cluster, candidate=serializer.validated_data.get("candidate"), requested_by=self.actor.label()
            )
        except failover.InvalidFailoverRequest as exc:
            raise exceptions.ValidationError({"candidate": str(exc)}) from None
        except failover.FailoverRefused as exc:
            raise conflict_from(exc) from None
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: FailoverControlSerializer})
    @action(detail=True, methods=["get"], url_path="failover-control", url_name="failover-control")
    def failover_control(self, request, pk=None):
        """Automatic failover's counters and state: armed, paused, the last failover, the last blocked incident."""
        cluster = self.get_object()
        return Response(FailoverControlSerializer(failover_control.failover_control(cluster)).data)

    @extend_schema(request=None, responses={200: FailoverControlSerializer})
    @action(
        detail=True, methods=["post"], url_path="failover-control/reset", url_name="failover-control-reset"
    )
    def failover_control_reset(self, request, pk=None):
        """Reset the counters behind failover_limit and failover_min_interval_seconds."""
        cluster = self.get_object()
        self.audit_target = cluster
        data = failover_control.reset_failover_counters(cluster, requested_by=self.actor.label())
        return Response(FailoverControlSerializer(data).data)


class JobViewSet(mixins.RetrieveModelMixin, TenantScopedViewSet):
    queryset = Job.objects.all()
    serializer_class = JobSerializer
    cluster_lookup = "cluster"
