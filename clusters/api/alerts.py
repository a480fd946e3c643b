"""Alert subscriptions of a tenant, managed by its tenant admins.

    GET, POST            /api/v1/alerts/subscriptions/
    GET, PATCH, DELETE   /api/v1/alerts/subscriptions/{id}/
    GET                  /api/v1/alerts/subscriptions/{id}/deliveries/
    POST                 /api/v1/alerts/subscriptions/{id}/test/

A subscription of a tenant the caller does not administer is a 404; creating one without administering
a tenant is a 403. A webhook's signing `secret` is in the creation answer only.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from clusters.alerts.models import AlertSubscription
from clusters.services import alerts
from controlplane.api.viewsets import AuditedViewSet
from tenants.models import Team, Tenant


class SubscriptionSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    tenant = serializers.IntegerField(
        required=False, help_text="needed only when you administer several tenants"
    )
    team = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="recipients see what this team may view; default: the whole tenant",
    )
    name = serializers.CharField(max_length=100)
    channel = serializers.ChoiceField(choices=["webhook", "email"])
    target = serializers.CharField(max_length=400, help_text="the webhook URL or the email address")
    payload_format = serializers.ChoiceField(choices=["json", "slack"], required=False, default="json")
    clusters = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    severities = serializers.ListField(
        child=serializers.CharField(max_length=16), required=False, default=list
    )
    codes = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list)
    jobs = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list)
    enabled = serializers.BooleanField(required=False, default=True)
    created_at = serializers.DateTimeField(read_only=True)


class DeliverySerializer(serializers.Serializer):
    """A delivery in the log."""

    id = serializers.IntegerField()
    kind = serializers.CharField()
    state = serializers.CharField()
    cluster = serializers.IntegerField(allow_null=True)
    event = serializers.IntegerField(allow_null=True)
    attempts = serializers.IntegerField()
    last_status = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    digest = serializers.IntegerField(allow_null=True)
    title = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)


def subscription_payload(sub: AlertSubscription) -> dict:
    return {
        "id": sub.id,
        "tenant": sub.tenant_id,
        "team": sub.team_id,
        "name": sub.name,
        "channel": sub.channel,
        "target": sub.target,
        "payload_format": sub.payload_format,
        "clusters": sub.clusters,
        "severities": sub.severities,
        "codes": sub.codes,
        "jobs": sub.jobs,
        "enabled": sub.enabled,
        "created_at": sub.created_at,
    }


def _invalid(exc: alerts.AlertInvalid) -> exceptions.ValidationError:
    return exceptions.ValidationError({exc.field: [str(exc)]})


class AlertSubscriptionViewSet(AuditedViewSet):
    serializer_class = SubscriptionSerializer

    def get_queryset(self):
        return AlertSubscription.objects.filter(tenant_id__in=self.actor.admin_tenant_ids()).select_related(
            "tenant", "team"
        )

    def _team(self, tenant_id: int, team_id):
        if team_id is None:
            return None
        team = Team.objects.filter(pk=team_id, tenant_id=tenant_id).first()
        if team is None:
            raise exceptions.ValidationError({"team": ["no such team in the tenant"]})
        return team

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([subscription_payload(s) for s in page])

    def retrieve(self, request, pk=None):
        return Response(subscription_payload(self.get_object()))

    @extend_schema(responses={201: SubscriptionSerializer})
    def create(self, request):
        """Subscribe a webhook or an email address to a tenant's alerts; a webhook's `secret` is shown once."""
        serializer = SubscriptionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        admin_of = self.actor.admin_tenant_ids()
        if not admin_of:
            raise exceptions.PermissionDenied("Managing alert subscriptions needs a tenant admin.")
        tenant_id = data.pop("tenant", None)
        if tenant_id is None:
            if len(admin_of) > 1:
                raise exceptions.ValidationError({"tenant": ["required: you administer several tenants"]})
            tenant_id = next(iter(admin_of))
        elif tenant_id not in admin_of:
            raise exceptions.ValidationError({"tenant": ["not a tenant you administer"]})
        data["team"] = self._team(tenant_id, data.get("team"))
        try:
            sub, secret = alerts.create_subscription(Tenant.objects.get(pk=tenant_id), self.actor.user, data)
        except alerts.AlertInvalid as exc:
            raise _invalid(exc) from None
        self.audit_target = sub
        body = subscription_payload(sub)
        if secret:
            body["secret"] = secret
        return Response(body, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        sub = self.get_object()
        serializer = SubscriptionSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = {k: v for k, v in serializer.validated_data.items() if k in request.data}
        data.pop("tenant", None)
        if "team" in data:
            data["team"] = self._team(sub.tenant_id, data["team"])
        self.audit_target = sub
        try:
            sub = alerts.update_subscription(sub, data)
        except alerts.AlertInvalid as exc:
            raise _invalid(exc) from None
        return Response(subscription_payload(sub))

    def destroy(self, request, pk=None):
        sub = self.get_object()
        self.audit_target = sub
        sub.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: DeliverySerializer(many=True)})
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        """The subscription's deliveries, newest first."""
        sub = self.get_object()
        page = self.paginate_queryset(sub.deliveries.all())
        return self.get_paginated_response([alerts.delivery_payload(d) for d in page])

    @extend_schema(request=None, responses={200: DeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Send a test alert now (one attempt) and answer the delivery."""
        sub = self.get_object()
        self.audit_target = sub
        return Response(alerts.delivery_payload(alerts.send_test(sub)))
