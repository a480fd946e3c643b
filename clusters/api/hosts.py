"""`GET, POST /api/v1/platform/hosts/` and `DELETE /api/v1/platform/hosts/{id}/`: the `hosts` provider's pool of database hosts (platform operators
only; tenants never see hosts). `{"name", "address", "zone", "capacity": {"instances", "memory_mb"}}`;
the answer adds `id`, `down` and `created_at`."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.urls import re_path
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.response import Response

from clusters.domain.addresses import AddressError
from clusters.models import DatabaseHost
from controlplane.api.viewsets import AuditedAPIView
from controlplane.netpolicy import NotAllowed, pin_host
from tenants.access import actor_from_request
from tenants.validation import NAME_PATTERN


class IsPlatformOperator(permissions.BasePermission):
    message = "Only platform operators may do this."

    def has_permission(self, request, view) -> bool:
        return actor_from_request(request).is_operator


class CapacitySerializer(serializers.Serializer):
    instances = serializers.IntegerField(min_value=1, max_value=1000)
    memory_mb = serializers.IntegerField(min_value=256, max_value=16 * 1024 * 1024)


class HostSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=63)
    address = serializers.CharField(
        max_length=255, help_text="the host's address (inside DBPILOT_ALLOWED_NETWORKS)"
    )
    zone = serializers.CharField(max_length=63)
    capacity = CapacitySerializer()
    down = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)

    def validate_name(self, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise serializers.ValidationError(
                "use 1-63 lowercase letters, digits and dashes (the agent's queue is host.<name>)"
            )
        return value

    def validate_zone(self, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise serializers.ValidationError("use 1-63 lowercase letters, digits and dashes")
        return value

    def validate_address(self, value: str) -> str:
        try:
            pin_host(value)
        except (NotAllowed, AddressError) as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value

    def to_representation(self, host: DatabaseHost) -> dict:
        return {
            "id": host.id,
            "name": host.name,
            "address": host.address,
            "zone": host.zone,
            "capacity": {"instances": host.capacity_instances, "memory_mb": host.capacity_memory_mb},
            "down": host.down,
            "created_at": host.created_at,
        }


class HostsView(AuditedAPIView):
    permission_classes = [permissions.IsAuthenticated, IsPlatformOperator]
    audit_action = "platform.hosts"

    @extend_schema(responses={200: HostSerializer(many=True)})
    def get(self, request):
        """The pool of database hosts, with whether each is down."""
        return Response([HostSerializer().to_representation(h) for h in DatabaseHost.objects.all()])

    @extend_schema(request=HostSerializer, responses={201: HostSerializer})
    def post(self, request):
        """Register a database host (its agent is started as docs/provisioning.md says)."""
        serializer = HostSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            with transaction.atomic():
                host = DatabaseHost.objects.create(
                    name=data["name"],
                    address=data["address"],
                    zone=data["zone"],
                    capacity_instances=data["capacity"]["instances"],
                    capacity_memory_mb=data["capacity"]["memory_mb"],
                )
        except IntegrityError:
            raise exceptions.ValidationError(
                {"name": f"a host named {data['name']!r} is already registered"}
            ) from None
        return Response(serializer.to_representation(host), status=status.HTTP_201_CREATED)


class HostView(AuditedAPIView):
    permission_classes = [permissions.IsAuthenticated, IsPlatformOperator]
    audit_action = "platform.hosts"

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk=None):
        """Remove a database host from the pool (no server is placed on hosts yet: the provider is not built)."""
        deleted, _ = DatabaseHost.objects.filter(pk=pk).delete()
        if not deleted:
            raise exceptions.NotFound(f"no database host with id {pk}")
        return Response(status=status.HTTP_204_NO_CONTENT)


host_urlpatterns = [
    re_path(r"^platform/hosts/$", HostsView.as_view(), name="platform-hosts"),
    re_path(r"^platform/hosts/(?P<pk>\d{1,18})/$", HostView.as_view(), name="platform-host"),
]
