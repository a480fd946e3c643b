"""DRF authentication: team bearer tokens for scripts, the session cookie for the portal.

A bearer token authenticates as its team's service account (so object permissions work unchanged) and
travels only in the `Authorization` header, never in a URL. The portal's session cookie is CSRF-checked
on every unsafe request by DRF's SessionAuthentication.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from tenants import tokens
from tenants.models import ApiToken

# last_used_at is written at most this often, so a busy script does not turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Compared against when the key is unknown, so an unknown key and a wrong secret take the same time.
_UNKNOWN_KEY_HMAC = "0" * 64


def client_allowed(allowed_networks: list[str], client_ip: str | None) -> bool:
    if not allowed_networks:
        return True
    try:
        address = ipaddress.ip_address(client_ip or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for net in allowed_networks:
        try:
            network = ipaddress.ip_network(net, strict=False)
        except ValueError:
            continue
        if address.version == network.version and address in network:
            return True
    return False


def authenticate_bearer(header_value: str, client_ip: str | None) -> tuple[object, ApiToken]:
    """Resolve `dbp_<key>_<secret>` to (team service user, token) or raise AuthenticationFailed."""
    parsed = tokens.parse(header_value)
    if parsed is None:
        raise exceptions.AuthenticationFailed("Malformed token: expected dbp_<key>_<secret>.")
    key, secret = parsed
    token = ApiToken.objects.select_related("team__service_user", "team__tenant").filter(key=key).first()
    matches = tokens.secret_matches(secret, token.secret_hmac if token is not None else _UNKNOWN_KEY_HMAC)
    if token is None or not matches:
        raise exceptions.AuthenticationFailed("Invalid token.")
    now = timezone.now()
    if token.revoked_at is not None:
        raise exceptions.AuthenticationFailed("Token revoked.")
    if token.expires_at is not None and token.expires_at <= now:
        raise exceptions.AuthenticationFailed("Token expired.")
    if not client_allowed(token.allowed_networks, client_ip):
        raise exceptions.AuthenticationFailed("Token not allowed from this address.")
    if not token.team.service_user.is_active:
        raise exceptions.AuthenticationFailed("Token's team is disabled.")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token.team.service_user, token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer dbp_<key>_<secret>`."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, value = header.partition(" ")
        if keyword.lower() != self.keyword.lower():
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
