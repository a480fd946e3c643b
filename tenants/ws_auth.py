"""Websocket authentication: the bearer token in the Authorization header, or the portal session cookie.

Every websocket route needs an authenticated caller: anything else is accepted and closed here, before
any consumer runs, with code 4401. The resolved `Actor` is put in `scope["actor"]`; consumers then authorize what the
socket subscribes to (clusters_for) and re-check it while the socket is open.

Tokens never travel in URLs, so a query-string token is ignored. A session cookie is only accepted
from the portal's own origin (a page on another site cannot ride the user's cookie); scripts that send
a bearer token need no Origin header.
"""

from __future__ import annotations

from urllib.parse import urlparse

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from django.conf import settings
from rest_framework.exceptions import AuthenticationFailed

from tenants.access import Actor, actor_for
from tenants.authentication import authenticate_bearer

CLOSE_UNAUTHENTICATED = 4401


@database_sync_to_async
def _actor_from_bearer(value: str, client_ip: str | None) -> Actor | None:
    try:
        user, token = authenticate_bearer(value, client_ip)
    except AuthenticationFailed:
        return None
    return actor_for(user, token)


@database_sync_to_async
def _actor_from_user(user) -> Actor:
    # actor_for refuses service accounts: they act only through a token.
    return actor_for(user)


def _origin_allowed(origin: str | None) -> bool:
    """A browser's Origin must be this site's (ALLOWED_HOSTS or CSRF_TRUSTED_ORIGINS); no Origin: not a browser."""
    if origin is None:
        return True
    allowed = list(settings.ALLOWED_HOSTS) + list(getattr(settings, "CSRF_TRUSTED_ORIGINS", []))
    if settings.DEBUG and not allowed:
        allowed = ["localhost", "127.0.0.1", "[::1]"]
    return OriginValidator(None, allowed).valid_origin(urlparse(origin))


async def _refuse(receive, send, code: int) -> None:
    """Refuse with a documented close code: accept, then close with `code`. (A close before accept is an
    HTTP 403 at the handshake that browsers report without the code, so the portal could not tell "not
    signed in" from a network failure and would keep reconnecting.)"""
    message = await receive()
    if message.get("type") == "websocket.connect":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": code})


class _ActorMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        client = scope.get("client") or [None]
        keyword, _, value = auth.partition(" ")
        if keyword.lower() == "bearer":
            actor = await _actor_from_bearer(value, client[0])
        else:
            user = scope.get("user")
            origin = headers.get(b"origin")
            if user is None or not _origin_allowed(origin.decode("latin-1") if origin else None):
                actor = None
            else:
                actor = await _actor_from_user(user)
        if actor is None or not actor.is_authenticated:
            await _refuse(receive, send, CLOSE_UNAUTHENTICATED)
            return None
        return await self.inner(dict(scope, actor=actor), receive, send)


def WebsocketAuthMiddleware(inner):  # noqa: N802 - reads like the Channels middleware it wraps
    return AuthMiddlewareStack(_ActorMiddleware(inner))
