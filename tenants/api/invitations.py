"""Accepting an invitation to a team: `POST /api/v1/invitations/accept/` with the one-time secret.

Logged in (a portal session, CSRF-protected): the invitation must name the caller's email. Not logged in:
the account is created with the given password (refused when the address already has an account: that
person logs in first). Tokens cannot accept invitations: they act as a team, not as a person.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants import services
from tenants.access import actor_from_request
from tenants.api.serializers import InvitationAcceptedSerializer, InvitationAcceptSerializer
from tenants.authentication import PortalSessionAuthentication


class InvitationAcceptView(APIView):
    """Audited by the service (invitation.accept), like logins."""

    permission_classes = [permissions.AllowAny]
    authentication_classes = [PortalSessionAuthentication]

    @extend_schema(request=InvitationAcceptSerializer, responses={200: InvitationAcceptedSerializer})
    def post(self, request):
        """Become a member of the team the invitation names."""
        serializer = InvitationAcceptSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        actor = actor_from_request(request)
        user = actor.user if actor.is_authenticated else None
        try:
            membership = services.accept_invitation(
                serializer.validated_data["secret"], user, serializer.validated_data.get("password")
            )
        except services.InvitationInvalid as exc:
            raise exceptions.ValidationError({"secret": str(exc)}) from None
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(
                exc.message_dict if hasattr(exc, "error_dict") else {"password": exc.messages}
            ) from None
        return Response(
            {
                "team": membership.team_id,
                "team_name": membership.team.name,
                "role": membership.role,
                "email": membership.user.username,
            }
        )
