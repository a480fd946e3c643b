"""Session login for the portal: `/api/v1/auth/csrf/`, `login/`, `logout/`, `me/`.

The portal first GETs `csrf/` (sets the csrftoken cookie), then POSTs `login/` with the token in the
`X-CSRFToken` header; every later unsafe request carries the header too (DRF's SessionAuthentication
enforces it). Failed logins are rate-limited per client address and per account (tenants.loginlimit).
"""

from __future__ import annotations

from django.contrib.auth import authenticate, get_user_model, login, logout
from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants import loginlimit
from tenants.access import Actor, actor_for, actor_from_request
from tenants.api.serializers import CsrfSerializer, LoginSerializer, MeSerializer
from tenants.audit import audit
from tenants.authentication import PortalSessionAuthentication
from tenants.models import Team, Tenant


class InvalidCredentials(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_credentials"
    default_detail = "Invalid email or password."


def me_payload(actor: Actor) -> dict:
    teams = (
        Team.objects.filter(id__in=list(actor.teams))
        .select_related("tenant")
        .order_by("tenant__name", "name")
    )
    admin_of = actor.admin_tenant_ids()
    tenant_ids = {team.tenant_id for team in teams} | admin_of
    token = actor.token
    return {
        "email": None if token is not None else actor.user.username,
        "tenants": [
            {"id": t.id, "name": t.name, "is_admin": t.id in admin_of}
            for t in Tenant.objects.filter(id__in=tenant_ids).order_by("name")
        ],
        "teams": [
            {"id": team.id, "name": team.name, "tenant": team.tenant.name, "role": actor.teams[team.id]}
            for team in teams
        ],
        "is_operator": actor.is_operator,
        "is_tenant_admin": bool(admin_of),
        "token": None
        if token is None
        else {"id": token.id, "prefix": token.prefix, "scope": token.scope, "team": token.team_id},
    }


class CsrfView(APIView):
    permission_classes = [permissions.AllowAny]
    authentication_classes = []

    @extend_schema(responses={200: CsrfSerializer})
    def get(self, request):
        """Set the CSRF cookie (csrftoken) the portal sends back in the X-CSRFToken header."""
        return Response({"csrf_token": get_token(request._request)})


class LoginView(APIView):
    permission_classes = [permissions.AllowAny]
    authentication_classes = []

    @extend_schema(request=LoginSerializer, responses={200: MeSerializer})
    def post(self, request):
        """Log in to the portal with email and password; sets the session cookie. CSRF-protected."""
        PortalSessionAuthentication().enforce_csrf(request)
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        email = serializer.validated_data["email"].strip()
        password = serializer.validated_data["password"]
        client = request.META.get("REMOTE_ADDR")
        wait = loginlimit.retry_after(email, client)
        if wait is not None:
            known = get_user_model().objects.filter(username__iexact=email).first()
            audit(
                actor=f"user:{known.username}" if known is not None else "anonymous",
                action="auth.login",
                target=f"user:{known.pk}" if known is not None else "",
                result="throttled",
                client_address=client,
            )
            raise exceptions.Throttled(
                wait=wait,
                detail=f"Too many failed logins from this address or for this account; try again in {wait} seconds.",
            )
        known = get_user_model().objects.filter(username__iexact=email).first()
        user = authenticate(request._request, username=known.username if known else email, password=password)
        if user is None or hasattr(user, "service_account_of"):
            loginlimit.record_failure(email, client)
            if known is not None:
                audit(
                    actor=actor_for(known) if known.is_active else f"user:{known.username}",
                    action="auth.login",
                    target=f"user:{known.pk}",
                    result="failed",
                    client_address=client,
                )
            raise InvalidCredentials()
        login(request._request, user)
        loginlimit.clear_account_failures(email)
        actor = actor_for(user)
        audit(actor=actor, action="auth.login", target=f"user:{user.pk}", result="ok", client_address=client)
        return Response(me_payload(actor))


class LogoutView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        """End the portal session (CSRF-protected); harmless without one."""
        actor = actor_from_request(request)
        if actor.is_authenticated and actor.token is None:
            audit(
                actor=actor,
                action="auth.logout",
                target=f"user:{actor.user.pk}",
                result="ok",
                client_address=request.META.get("REMOTE_ADDR"),
            )
            logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    @extend_schema(responses={200: MeSerializer})
    def get(self, request):
        """Who is calling: email, tenants, teams with roles, operator and tenant-admin flags."""
        return Response(me_payload(actor_from_request(request)))
