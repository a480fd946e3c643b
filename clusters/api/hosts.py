"""`GET, POST /api/v1/platform/hosts/` and `DELETE /api/v1/platform/hosts/{id}/`: the `hosts` provider's pool of database hosts (platform operators
only; tenants never see hosts). `{"name", "address", "zone", "capacity": {"instances", "memory_mb"}}`;
the answer adds `id`, `down`, `last_seen_at`, `instances` and `created_at`, and the 201 answer the agent's
key (`agent_key`, shown once)."""

from __future__ import annotations

from django.db import IntegrityError
from django.db.models import ProtectedError
from django.urls import re_path
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.response import Response

from clusters.domain.addresses import AddressError
from clusters.models import DatabaseHost
from clusters.services.hosts import register_host
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
    down = serializers.BooleanField(read_only=True, help_text="its agent has stopped answering pings")
    last_seen_at = serializers.DateTimeField(read_only=True, allow_null=True)
    instances = serializers.IntegerField(read_only=True, help_text="servers placed on it")
    agent_key = serializers.CharField(read_only=True, help_text="in the 201 answer only: DBPILOT_AGENT_KEY")
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
            "last_seen_at": host.last_seen_at,
            "instances": host.instances.count(),
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
            host, key = register_host(
                data["name"],
                data["address"],
                data["zone"],
                data["capacity"]["instances"],
                data["capacity"]["memory_mb"],
            )
        except IntegrityError:
            raise exceptions.ValidationError(
                {"name": f"a host named {data['name']!r} is already registered"}
            ) from None
        # The agent's key, this once: the operator starts the agent with it (DBPILOT_AGENT_KEY).
        return Response(
            {**serializer.to_representation(host), "agent_key": key}, status=status.HTTP_201_CREATED
        )


class HostView(AuditedAPIView):
    permission_classes = [permissions.IsAuthenticated, IsPlatformOperator]
    audit_action = "platform.hosts"

    @extend_schema(request=None, responses={204: None, 409: None})
    def delete(self, request, pk=None):
        """Remove a database host from the pool; refused while servers are placed on it."""
        host = DatabaseHost.objects.filter(pk=pk).first()
        if host is None:
            raise exceptions.NotFound(f"no database host with id {pk}")
        placed = host.instances.count()
        if placed:
            return Response(
                {
                    "detail": f"host {host.name} still runs {placed} server(s): remove them from their "
                    "clusters (or delete the clusters) first"
                },
                status=status.HTTP_409_CONFLICT,
            )
        try:
            host.delete()
        except ProtectedError:  # a server was placed there meanwhile
            return Response(
                {"detail": f"host {host.name} got a server meanwhile: remove it first"},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(status=status.HTTP_204_NO_CONTENT)


host_urlpatterns = [
    re_path(r"^platform/hosts/$", HostsView.as_view(), name="platform-hosts"),
    re_path(r"^platform/hosts/(?P<pk>\d{1,18})/$", HostView.as_view(), name="platform-host"),
]
