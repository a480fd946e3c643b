"""Websocket authentication: the bearer token in the Authorization header, or the portal session cookie.

Tokens never travel in URLs, so a query-string token is ignored.
"""
from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from rest_framework.exceptions import AuthenticationFailed

from tenants.access import Actor, actor_for
from tenants.authentication import authenticate_bearer


@database_sync_to_async
def _actor_from_bearer(value: str, client_ip: str | None) -> Actor | None:
    try:
        user, token = authenticate_bearer(value, client_ip)
    except AuthenticationFailed:
        return None
    return actor_for(user, token)


@database_sync_to_async
def _actor_from_user(user) -> Actor:
    if hasattr(user, "service_account_of"):
        return actor_for(None)
    return actor_for(user)


class _BearerMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        client = scope.get("client") or [None]
        if auth.startswith("Bearer "):
            actor = await _actor_from_bearer(auth[len("Bearer "):], client[0])
        else:
            user = scope.get("user")
            actor = await _actor_from_user(user) if user is not None else actor_for(None)
        scope = dict(scope, actor=actor or actor_for(None))
        return await self.inner(scope, receive, send)


def WebsocketAuthMiddleware(inner):  # noqa: N802 - reads like the Channels middleware it wraps
    return AuthMiddlewareStack(_BearerMiddleware(inner))
