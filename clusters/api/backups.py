"""Backups API.

    GET  /api/v1/clusters/{id}/backups/              -> paginated {"count", "next", "previous", "results", "method", "recoverable"}
    POST /api/v1/clusters/{id}/backups/              -> 202 with the backup job (409 while a long job runs)
    POST /api/v1/clusters/{id}/restore/  {"name", "backup": ID | "time": ISO-8601, "provision": {...}}
                                                     -> 202 with the NEW cluster object (its `job`: restore)
    GET  /api/v1/backups/                            -> every backup the caller may see, deleted clusters' too
    GET  /api/v1/backups/{id}/
    POST /api/v1/backups/{id}/restore/   {"name", "provision": {...}}   -> as the cluster's restore
    POST /api/v1/backups/{id}/verify/                -> 202 with the verification job

Permissions go through the tenants chokepoint (TenantScopedViewSet): a cluster the caller may not view is
a 404; a backup needs operate, a restore the admin role in a team of the tenant (it creates a cluster).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.urls import re_path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from clusters.api.serializers import ClusterSerializer, JobSerializer
from clusters.backup_models import Backup
from clusters.models import Cluster
from clusters.services import backups, provisioning
from controlplane.api.errors import Conflict
from controlplane.api.viewsets import TenantScopedViewSet
from tenants.access import ADMIN, OPERATE, VIEW, clusters_for, creation_team, teams_allowing

ID = r"\d{1,18}"


class BackupSerializer(serializers.ModelSerializer):
    cluster = serializers.IntegerField(source="cluster_ref", read_only=True)
    cluster_deleted = serializers.SerializerMethodField()
    job = serializers.IntegerField(source="job_id", read_only=True, allow_null=True)
    duration_seconds = serializers.SerializerMethodField()

    class Meta:
        model = Backup
        fields = [
            "id",
            "cluster",
            "cluster_name",
            "cluster_deleted",
            "kind",
            "status",
            "job",
            "scheduled",
            "source",
            "storage",
            "compression",
            "encrypted",
            "size_bytes",
            "raw_bytes",
            "checksum_sha256",
            "gtid_position",
            "started_at",
            "ended_at",
            "duration_seconds",
            "error",
            "verified",
            "verified_reason",
            "verified_at",
            "keep_until",
        ]

    def get_cluster_deleted(self, obj) -> bool:
        return obj.cluster_id is None

    def get_duration_seconds(self, obj) -> float | None:
        return round((obj.ended_at - obj.started_at).total_seconds(), 1) if obj.ended_at else None


RESTORE_BODY = inline_serializer(
    "RestoreRequest",
    {
        "name": serializers.CharField(),
        "backup": serializers.IntegerField(required=False),
        "time": serializers.DateTimeField(required=False),
        "provision": serializers.DictField(required=False),
    },
)


def _invalid(exc: provisioning.ProvisionError) -> exceptions.ValidationError:
    return exceptions.ValidationError(exc.errors)


def _restore(view, request, source_ref: int, tenant, fixed_backup: Backup | None = None) -> Response:
    team = creation_team(view.actor, request.data.get("team") if isinstance(request.data, dict) else None)
    if team is None or team.tenant_id != tenant.pk:
        raise exceptions.PermissionDenied("A restore creates a cluster: it needs the admin role in a team.")
    try:
        parsed = backups.parse_restore(tenant, source_ref, request.data, fixed_backup)
        provisioning.check_provision_quota(tenant, parsed["request"])
        # The answer is made inside the transaction: a job run inline (tests) has run by the time it commits.
        with transaction.atomic():
            cluster = backups.restore_cluster(team, parsed, requested_by=view.actor.label())
    except provisioning.ProvisionError as exc:
        raise _invalid(exc) from None
    view.audit_target = cluster
    cluster = Cluster.objects.select_related("tenant", "primary", "last_job").get(pk=cluster.pk)
    return Response(
        ClusterSerializer(cluster, context={"request": request}).data, status=status.HTTP_202_ACCEPTED
    )


class ClusterBackupViewSet(TenantScopedViewSet):
    """A cluster's backups: list with the recoverable range, back up now, restore into a new cluster."""

    queryset = Cluster.objects.select_related("tenant", "primary")
    serializer_class = BackupSerializer
    cluster_lookup = ""
    lookup_url_kwarg = "cluster_pk"
    permission_by_action = {"list": VIEW, "create": OPERATE, "restore": VIEW}

    @extend_schema(
        responses={
            200: inline_serializer(
                "ClusterBackups",
                {
                    "count": serializers.IntegerField(),
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": BackupSerializer(many=True),
                    "method": serializers.CharField(),
                    "recoverable": serializers.DictField(),
                },
            )
        }
    )
    def list(self, request, cluster_pk=None):
        """The cluster's backups, newest first, with the recoverable window (latest verified backup and
        the archived binlogs) and the method its backups use (physical, or logical for a registered
        cluster whose servers no provider of dbpilot owns)."""
        cluster = self.get_object()
        page = self.paginate_queryset(Backup.objects.filter(cluster_ref=cluster.pk))
        response = self.get_paginated_response(BackupSerializer(page, many=True).data)
        # Paginated like every list of the API, with what the whole list means beside it.
        response.data["method"] = backups.method_of(cluster)
        response.data["recoverable"] = backups.recovery(cluster.pk)
        return response

    @extend_schema(request=None, responses={202: JobSerializer})
    def create(self, request, cluster_pk=None):
        """Back up now (a job): physical from a healthy replica (mariadb-backup) for a provisioned cluster,
        logical (mariadb-dump --single-transaction --gtid) for a registered one."""
        cluster = self.get_object()
        self.audit_target = cluster
        try:
            job = backups.request_backup(cluster, requested_by=self.actor.label())
        except provisioning.ProvisionConflict as exc:
            raise Conflict(exc.detail, exc.code) from None
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=RESTORE_BODY, responses={202: ClusterSerializer})
    def restore(self, request, cluster_pk=None):
        """Restore a backup, or the cluster as it was at a time, into a NEW cluster (the source is not
        touched). A time outside the recoverable window is a 400 naming the window."""
        cluster = self.get_object()
        return _restore(self, request, cluster.pk, cluster.tenant)


class BackupViewSet(TenantScopedViewSet):
    """Every backup the caller may see: of clusters it may view, and of deleted clusters of its tenants."""

    queryset = Backup.objects.select_related("tenant", "cluster")
    serializer_class = BackupSerializer
    permission_by_action = {"list": VIEW, "retrieve": VIEW, "restore": VIEW, "verify": OPERATE}

    def get_queryset(self):
        visible = clusters_for(self.actor, VIEW).values("id")
        tenants = {t.tenant_id for t in teams_allowing(self.actor, ADMIN)}
        return Backup.objects.select_related("tenant", "cluster").filter(
            Q(cluster__in=visible) | Q(cluster__isnull=True, tenant_id__in=tenants)
        )

    def check_object_permissions(self, request, obj):
        if obj.cluster is not None:
            super().check_object_permissions(request, obj)

    @extend_schema(responses={200: BackupSerializer(many=True)})
    def list(self, request):
        """Backups newest first (`?cluster=ID` for one cluster, deleted or not)."""
        rows = self.get_queryset()
        if request.query_params.get("cluster", "").isdigit():
            rows = rows.filter(cluster_ref=int(request.query_params["cluster"]))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(BackupSerializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        backup = get_object_or_404(self.get_queryset(), pk=pk)
        self.check_object_permissions(request, backup)
        return Response(BackupSerializer(backup).data)

    @extend_schema(request=RESTORE_BODY, responses={202: ClusterSerializer})
    def restore(self, request, pk=None):
        """Restore this backup (optionally up to a `time` after it) into a new cluster."""
        backup = get_object_or_404(self.get_queryset(), pk=pk)
        self.check_object_permissions(request, backup)
        return _restore(self, request, backup.cluster_ref, backup.tenant, backup)

    @extend_schema(request=None, responses={202: JobSerializer})
    def verify(self, request, pk=None):
        """Verify the backup again (a job): test-restored into a scratch server."""
        backup = get_object_or_404(self.get_queryset(), pk=pk)
        self.check_object_permissions(request, backup)
        self.audit_target = backup.cluster
        try:
            job = backups.request_verify(backup, requested_by=self.actor.label())
        except provisioning.ProvisionConflict as exc:
            raise Conflict(exc.detail, exc.code) from None
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


backup_urlpatterns = [
    re_path(
        rf"^clusters/(?P<cluster_pk>{ID})/backups/$",
        ClusterBackupViewSet.as_view({"get": "list", "post": "create"}),
        name="cluster-backups",
    ),
    re_path(
        rf"^clusters/(?P<cluster_pk>{ID})/restore/$",
        ClusterBackupViewSet.as_view({"post": "restore"}),
        name="cluster-restore",
    ),
    re_path(r"^backups/$", BackupViewSet.as_view({"get": "list"}), name="backups"),
    re_path(rf"^backups/(?P<pk>{ID})/$", BackupViewSet.as_view({"get": "retrieve"}), name="backup"),
    re_path(
        rf"^backups/(?P<pk>{ID})/restore/$", BackupViewSet.as_view({"post": "restore"}), name="backup-restore"
    ),
    re_path(
        rf"^backups/(?P<pk>{ID})/verify/$", BackupViewSet.as_view({"post": "verify"}), name="backup-verify"
    ),
]
