"""The one chokepoint every API endpoint goes through.

`TenantScopedViewSet` filters every queryset to what the caller may view (so anything else is a 404,
never a 403 that would leak its existence), then checks the action's own permission on the object
(403 when the caller may see it but not do this), and writes an audit entry for every mutating request.
"""
from __future__ import annotations

from rest_framework import exceptions, viewsets
from rest_framework.permissions import SAFE_METHODS

from tenants.access import ADMIN, VIEW, actor_from_request, clusters_for, has_cluster_perm
from tenants.audit import audit_request


class TenantScopedViewSet(viewsets.GenericViewSet):
    # Path from the model to its Cluster ("" when the model is Cluster itself).
    cluster_lookup: str = "cluster"
    # action name -> cluster permission; unnamed actions: view for safe methods, admin otherwise.
    permission_by_action: dict[str, str] = {}

    @property
    def actor(self):
        return actor_from_request(self.request)

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

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method not in SAFE_METHODS:
            audit_request(request, self, response)
        return response
