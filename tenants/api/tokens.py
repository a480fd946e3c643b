"""`/api/v1/tokens/`: team API tokens. The bearer value is shown once, in the creation response; lists
never show it. Revoke with DELETE or POST .../revoke/.

Team members see their teams' tokens (name, prefix, scope, last use); tenant admins, team admins and a
team's own admin-scoped tokens create and revoke them.
"""

from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from controlplane.api.viewsets import AuditedViewSet
from tenants import services
from tenants.access import can_manage_tokens, token_manageable_teams, visible_teams
from tenants.api.filters import IdFilter
from tenants.api.serializers import TokenCreatedSerializer, TokenCreateSerializer, TokenSerializer
from tenants.models import ApiToken, TokenScope


class TokenFilter(django_filters.FilterSet):
    # Plain numbers: a model-choice filter would tell whether another tenant's team id exists.
    team = IdFilter(field_name="team_id")
    scope = django_filters.ChoiceFilter(choices=TokenScope.choices)

    class Meta:
        model = ApiToken
        fields = ["team", "scope"]


class TokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AuditedViewSet):
    serializer_class = TokenSerializer
    filterset_class = TokenFilter

    def get_queryset(self):
        return (
            ApiToken.objects.filter(team__in=visible_teams(self.actor))
            .select_related("team", "created_by")
            .prefetch_related("clusters")
            .order_by("-created_at", "-id")
        )

    def _managed_token(self) -> ApiToken:
        token = self.get_object()
        self.audit_target = token
        if not can_manage_tokens(self.actor, token.team):
            raise exceptions.PermissionDenied("Managing tokens needs a team admin or a tenant admin.")
        return token

    @extend_schema(request=TokenCreateSerializer, responses={201: TokenCreatedSerializer})
    def create(self, request):
        """Create a token for a team you administer; the response holds the bearer value, once."""
        serializer = TokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        team = self._team_for_new_token(data.get("team"))
        try:
            token_request = services.TokenRequest(
                scope=data["scope"],
                name=data["name"],
                expires_at=data["expires_at"],
                allowed_networks=services.clean_allowed_networks(data["allowed_networks"]),
                cluster_ids=tuple(sorted(set(data["clusters"]))),
            )
            services.check_token_request(self.actor, team, token_request)
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(
                exc.message_dict if hasattr(exc, "error_dict") else exc.messages
            ) from None
        token, bearer = services.issue_token(
            team,
            token_request.scope,
            name=token_request.name,
            created_by=self.actor.user,
            expires_at=token_request.expires_at,
            allowed_networks=token_request.allowed_networks,
            clusters=list(token_request.cluster_ids),
        )
        self.audit_target = token
        body = TokenSerializer(token).data
        body["token"] = bearer
        return Response(body, status=status.HTTP_201_CREATED)

    def _team_for_new_token(self, team_id: int | None):
        visible = visible_teams(self.actor)
        if team_id is None:
            manageable = list(token_manageable_teams(self.actor))
            if len(manageable) == 1:
                return manageable[0]
            if not manageable:
                raise exceptions.PermissionDenied("Creating a token needs a team admin or a tenant admin.")
            raise exceptions.ValidationError({"team": "required: you manage the tokens of several teams"})
        team = visible.filter(pk=team_id).first()
        if team is None:
            raise exceptions.ValidationError({"team": "no such team"})
        if not can_manage_tokens(self.actor, team):
            raise exceptions.PermissionDenied("Creating a token needs a team admin or a tenant admin.")
        return team

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        """Revoke a token (it stops working at once; the row stays for the audit trail)."""
        services.revoke_token(self._managed_token())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: TokenSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """Revoke a token; answers with the revoked token."""
        token = services.revoke_token(self._managed_token())
        return Response(TokenSerializer(token).data)
