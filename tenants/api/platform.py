"""`/api/v1/platform/`: the platform-wide pause. Everyone signed in may read it (the portal and the CLI
show it); only platform operators (Django superusers, never a token) pause and resume, and read dbpilot's
own health (`health/`)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.viewsets import AuditedAPIView
from tenants.access import actor_from_request
from tenants.api.serializers import PlatformPauseSerializer, PlatformStateSerializer
from tenants.platform import platform_state, set_platform_paused
from tenants.platform_health import health


class IsPlatformOperator(permissions.BasePermission):
    message = "Only platform operators may do this."

    def has_permission(self, request, view) -> bool:
        return actor_from_request(request).is_operator


def _state_payload(state) -> dict:
    return PlatformStateSerializer(
        {
            "paused": state.paused,
            "reason": state.reason,
            "changed_by": state.changed_by,
            "changed_at": state.changed_at,
        }
    ).data


class PlatformView(APIView):
    @extend_schema(responses={200: PlatformStateSerializer})
    def get(self, request):
        """Whether operators paused every automatic action, why, by whom and since when."""
        return Response(_state_payload(platform_state()))


class PlatformPauseView(AuditedAPIView):
    permission_classes = [permissions.IsAuthenticated, IsPlatformOperator]
    audit_action = "platform.pause"

    @extend_schema(request=PlatformPauseSerializer, responses={200: PlatformStateSerializer})
    def post(self, request):
        """Stop every automatic action on every cluster (monitoring goes on)."""
        serializer = PlatformPauseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        state = set_platform_paused(True, by=self.actor.label(), reason=serializer.validated_data["reason"])
        return Response(_state_payload(state))


class PlatformResumeView(AuditedAPIView):
    permission_classes = [permissions.IsAuthenticated, IsPlatformOperator]
    audit_action = "platform.resume"

    @extend_schema(request=None, responses={200: PlatformStateSerializer})
    def post(self, request):
        """Allow automatic actions again."""
        return Response(_state_payload(set_platform_paused(False, by=self.actor.label())))


_HEALTH_SCHEMA = inline_serializer(
    "PlatformHealth",
    {
        "ok": serializers.BooleanField(),
        "automatic_actions": serializers.ChoiceField(choices=["allowed", "stopped"]),
        "redis": inline_serializer(
            "PlatformHealthRedis",
            {
                "ok": serializers.BooleanField(),
                "detail": serializers.CharField(),
                "url": serializers.CharField(),
                "sentinel": serializers.BooleanField(),
            },
        ),
        "database": inline_serializer(
            "PlatformHealthDatabase", {"ok": serializers.BooleanField(), "vendor": serializers.CharField()}
        ),
        "findings": inline_serializer(
            "PlatformFinding",
            {
                "code": serializers.CharField(),
                "severity": serializers.CharField(),
                "message": serializers.CharField(),
                "opened_at": serializers.DateTimeField(),
            },
            many=True,
        ),
    },
)


class PlatformHealthView(APIView):
    permission_classes = [permissions.IsAuthenticated, IsPlatformOperator]

    @extend_schema(responses={200: _HEALTH_SCHEMA})
    def get(self, request):
        """dbpilot's own health: Redis (broker, locks, hot state), the database, and the open platform
        findings (e.g. REDIS_UNREACHABLE, while which no automatic action is taken)."""
        return Response(health())
