"""The one chokepoint every API endpoint goes through.

`TenantScopedViewSet` (everything that hangs off a cluster) filters every queryset to what the caller
may view (so anything else is a 404, never a 403 that would leak its existence), then checks the
action's own permission on the object (403 when the caller may see it but not do this).

Every base class here writes an audit entry for every mutating request, whatever its outcome:
`AuditedViewSet` for tenant-level resources (teams, tokens, ...), `AuditedAPIView` for single
endpoints. A view may set `self.audit_target` (the object acted on) and `self.audit_action`.
"""

from __future__ import annotations

from rest_framework import exceptions, viewsets
from rest_framework.permissions import SAFE_METHODS
from rest_framework.views import APIView

from tenants.access import ADMIN, VIEW, Actor, actor_from_request, clusters_for, has_cluster_perm
from tenants.audit import audit_request, target_label


class AuditedMixin:
    """Audit every unsafe request (POST, PUT, PATCH, DELETE) after its response is known."""

    @property
    def audit_target(self):
        return getattr(self, "_audit_target", None)

    @audit_target.setter
    def audit_target(self, obj) -> None:
        # Its id and name are taken now: a deleted object has neither by the time the entry is written.
        self._audit_target = obj
        self.audit_target_snapshot = (
            (target_label(obj), getattr(obj, "name", None)) if obj is not None else None
        )

    @property
    def actor(self) -> Actor:
        return actor_from_request(self.request)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method not in SAFE_METHODS:
            audit_request(request, self, response)
        return response


class AuditedViewSet(AuditedMixin, viewsets.GenericViewSet):
    """Base for tenant-level viewsets, which restrict their own querysets (see tenants.access)."""


class AuditedAPIView(AuditedMixin, APIView):
    """Base for single API endpoints (login, platform pause...)."""


class TenantScopedViewSet(AuditedViewSet):
    """Base for cluster resources: 404 for what the caller may not view, 403 for what it may not do."""

    # Path from the model to its Cluster ("" when the model is Cluster itself).
    cluster_lookup: str = "cluster"
    # action name -> cluster permission; unnamed actions: view for safe methods, admin otherwise.
    permission_by_action: dict[str, str] = {}

    def required_permission(self) -> str:
        perm = self.permission_by_action.get(self.action)
        if perm:
            return perm
        return VIEW if self.request.method in SAFE_METHODS else ADMIN

    def get_queryset(self):
        queryset = super().get_queryset()
        visible = clusters_for(self.actor, VIEW).values("id")
        field = f"{self.cluster_lookup}__in" if self.cluster_lookup else "pk__in"
        return queryset.filter(**{field: visible})

    def cluster_of(self, obj):
        if not self.cluster_lookup:
            return obj
        for part in self.cluster_lookup.split("__"):
            obj = getattr(obj, part)
        return obj

    def check_object_permissions(self, request, obj):
        super().check_object_permissions(request, obj)
        perm = self.required_permission()
        if perm != VIEW and not has_cluster_perm(self.actor, self.cluster_of(obj), perm):
            raise exceptions.PermissionDenied(f"This needs the {perm} permission on the cluster.")
