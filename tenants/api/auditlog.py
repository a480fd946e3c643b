"""`GET /api/v1/audit/`: the audit log of the tenants the caller administers, newest first, paginated.

Filters: `action` (prefix: `cluster` or `cluster.partial_update`), `actor` (substring), `target`
(exact, e.g. `cluster:7`), `since` / `until` (ISO 8601 times), `tenant` (id). Platform operators see
every tenant's entries and those of no tenant.
"""

from __future__ import annotations

import django_filters
from django.db.models import Q
from rest_framework import exceptions, mixins

from controlplane.api.viewsets import AuditedViewSet
from tenants.api.filters import IdFilter
from tenants.api.serializers import AuditEntrySerializer
from tenants.models import AuditEntry


class AuditEntryFilter(django_filters.FilterSet):
    action = django_filters.CharFilter(field_name="action", lookup_expr="startswith")
    actor = django_filters.CharFilter(field_name="actor", lookup_expr="icontains")
    target = django_filters.CharFilter(field_name="target", lookup_expr="exact")
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lte")
    tenant = IdFilter(field_name="tenant_id")

    class Meta:
        model = AuditEntry
        fields = ["action", "actor", "target", "since", "until", "tenant"]


class AuditEntryViewSet(mixins.ListModelMixin, AuditedViewSet):
    serializer_class = AuditEntrySerializer
    filterset_class = AuditEntryFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # OpenAPI schema generation
            return AuditEntry.objects.none()
        actor = self.actor
        if actor.is_operator:
            return AuditEntry.objects.select_related("tenant").all()
        admin_of = actor.admin_tenant_ids()
        if not admin_of:
            raise exceptions.PermissionDenied("The audit log is for tenant admins.")
        return AuditEntry.objects.select_related("tenant").filter(Q(tenant_id__in=admin_of))
