"""DRF authentication: team bearer tokens for scripts, the session cookie for the portal."""
from __future__ import annotations

import ipaddress
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from tenants import tokens
from tenants.models import ApiToken

LAST_USED_RESOLUTION = timedelta(minutes=1)


def authenticate_bearer(header_value: str, client_ip: str | None) -> tuple[object, ApiToken]:
    """Resolve `Bearer dbp_...` to (team service user, token) or raise AuthenticationFailed."""
    parsed = tokens.parse(header_value)
    if parsed is None:
        raise exceptions.AuthenticationFailed("Malformed token.")
    key, secret = parsed
    token = ApiToken.objects.select_related("team__service_user", "team__tenant").filter(key=key).first()
    if token is None or not tokens.secret_matches(secret, token.secret_hmac):
        raise exceptions.AuthenticationFailed("Invalid token.")
    now = timezone.now()
    if token.revoked_at is not None:
        raise exceptions.AuthenticationFailed("Token revoked.")
    if token.expires_at is not None and token.expires_at <= now:
        raise exceptions.AuthenticationFailed("Token expired.")
    if token.allowed_networks:
        try:
            address = ipaddress.ip_address(client_ip or "")
        except ValueError:
            raise exceptions.AuthenticationFailed("Token not allowed from this address.") from None
        if not any(address in ipaddress.ip_network(net, strict=False) for net in token.allowed_networks):
            raise exceptions.AuthenticationFailed("Token not allowed from this address.")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.team.service_user, token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, value = header.partition(" ")
        if keyword != self.keyword:
            return None
        return authenticate_bearer(value, request.META.get("REMOTE_ADDR"))

    def authenticate_header(self, request) -> str:
        return self.keyword


class PortalSessionAuthentication(authentication.SessionAuthentication):
    """The portal's cookie session, with CSRF enforced; service accounts never log in this way."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None and hasattr(result[0], "service_account_of"):
            return None
        return result
