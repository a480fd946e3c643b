"""Repair API: rebuild a server, rejoin it (by a chosen method, clearing its quarantine), a rolling restart,
and the files a job kept (the SQL a flashback discarded).

    POST /api/v1/clusters/{id}/servers/{server_id}/rebuild/   -> 202 with the job (409 registered: not owned)
    POST /api/v1/clusters/{id}/servers/{server_id}/rejoin/    {"method": ...} -> 202 with the job
    POST /api/v1/clusters/{id}/restart/                        -> 202 with the rolling_restart job
    GET  /api/v1/jobs/{id}/artifacts/                          -> [{"name", "size", "content_type", ...}]
    GET  /api/v1/jobs/{id}/artifacts/{name}/                   -> the file itself (text/plain)
"""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import re_path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from clusters.api.serializers import JobSerializer
from clusters.models import Cluster, Job
from clusters.services import provisioning, repair
from controlplane.api.errors import Conflict
from controlplane.api.viewsets import TenantScopedViewSet
from tenants.access import ADMIN, OPERATE

ID = r"\d{1,18}"
ARTIFACT_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}"


class RepairViewSet(TenantScopedViewSet):
    """Repairs of a cluster's servers: each is a job."""

    queryset = Cluster.objects.select_related("tenant", "primary")
    serializer_class = JobSerializer
    cluster_lookup = ""
    lookup_url_kwarg = "cluster_pk"
    permission_by_action = {"rebuild": ADMIN, "rejoin": OPERATE, "restart": OPERATE}

    def _job(self, call) -> Response:
        cluster = self.get_object()
        self.audit_target = cluster
        try:
            job = call(cluster)
        except provisioning.ProvisionConflict as exc:
            raise Conflict(exc.detail, exc.code) from None
        except provisioning.ProvisionError as exc:
            raise exceptions.ValidationError(exc.errors) from None
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: JobSerializer})
    def rebuild(self, request, cluster_pk=None, server_id=None):
        """Wipe the server and clone it again from a healthy replica (or the primary), through the provider
        that owns it (provisioned clusters; a registered cluster's servers are refused: 409 not_owned)."""
        return self._job(
            lambda c: repair.request_rebuild(
                c, get_object_or_404(c.servers, pk=server_id), requested_by=self.actor.label()
            )
        )

    @extend_schema(
        request=inline_serializer("Rejoin", {"method": serializers.JSONField(required=False)}),
        responses={202: JobSerializer},
    )
    def rejoin(self, request, cluster_pk=None, server_id=None):
        """Rejoin a returning server as a replica: by GTID first, then `method` (gtid, flashback, reseed or
        a list tried in order; default the cluster's rejoin_method). Clears its quarantine."""
        body = request.data if isinstance(request.data, dict) else None
        return self._job(
            lambda c: repair.request_rejoin(
                c, get_object_or_404(c.servers, pk=server_id), body, requested_by=self.actor.label()
            )
        )

    @extend_schema(request=None, responses={202: JobSerializer})
    def restart(self, request, cluster_pk=None):
        """A rolling restart: replicas one by one, a switchover, then the old primary."""
        return self._job(lambda c: repair.request_restart(c, requested_by=self.actor.label()))


class JobArtifactViewSet(TenantScopedViewSet):
    """The files a job kept, readable by whoever may view the job's cluster."""

    queryset = Job.objects.all()
    serializer_class = JobSerializer
    cluster_lookup = "cluster"
    lookup_url_kwarg = "job_pk"

    @extend_schema(
        responses={
            200: inline_serializer(
                "JobArtifact",
                {
                    "name": serializers.CharField(),
                    "size": serializers.IntegerField(),
                    "content_type": serializers.CharField(),
                    "description": serializers.CharField(),
                    "created_at": serializers.DateTimeField(),
                    "url": serializers.CharField(),
                },
                many=True,
            )
        }
    )
    def list_artifacts(self, request, job_pk=None):
        """The job's artifacts (e.g. the SQL of the transactions a flashback discarded)."""
        job = self.get_object()
        return Response(
            [
                {
                    "name": a.name,
                    "size": len(a.content.encode()),
                    "content_type": a.content_type,
                    "description": a.description,
                    "created_at": a.created_at,
                    "url": f"/api/v1/jobs/{job.pk}/artifacts/{a.name}/",
                }
                for a in job.artifacts.all()
            ]
        )

    @extend_schema(responses={(200, "text/plain"): str})
    def download(self, request, job_pk=None, name=None):
        """One artifact's content, as a file."""
        job = self.get_object()
        artifact = get_object_or_404(job.artifacts, name=name)
        response = HttpResponse(artifact.content, content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="job-{job.pk}-{artifact.name}"'
        return response


repair_urlpatterns = [
    re_path(
        rf"^clusters/(?P<cluster_pk>{ID})/servers/(?P<server_id>{ID})/rebuild/$",
        RepairViewSet.as_view({"post": "rebuild"}),
        name="cluster-server-rebuild",
    ),
    re_path(
        rf"^clusters/(?P<cluster_pk>{ID})/servers/(?P<server_id>{ID})/rejoin/$",
        RepairViewSet.as_view({"post": "rejoin"}),
        name="cluster-server-rejoin",
    ),
    re_path(
        rf"^clusters/(?P<cluster_pk>{ID})/restart/$",
        RepairViewSet.as_view({"post": "restart"}),
        name="cluster-restart",
    ),
    re_path(
        rf"^jobs/(?P<job_pk>{ID})/artifacts/$",
        JobArtifactViewSet.as_view({"get": "list_artifacts"}),
        name="job-artifacts",
    ),
    re_path(
        rf"^jobs/(?P<job_pk>{ID})/artifacts/(?P<name>{ARTIFACT_NAME})/$",
        JobArtifactViewSet.as_view({"get": "download"}),
        name="job-artifact",
    ),
]
