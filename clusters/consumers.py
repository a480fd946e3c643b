"""Websocket consumers: authorize at subscribe, join groups, forward events.

Group names: `cluster.<id>`. Permission is re-checked every few seconds while a socket is open, so a
revoked grant stops the flow.

Refusals accept the socket, then close it with a documented code (4401 not signed in, 4403 no longer
allowed, 4404 not found or not yours), so a client can read the code and stop reconnecting. The sockets
take no messages: a frame that is not JSON gets an error message back, any other is ignored.
"""

from __future__ import annotations

import json
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from tenants.access import VIEW, clusters_for

RECHECK_SECONDS = 5.0
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


def cluster_group(cluster_id: int) -> str:
    return f"cluster.{cluster_id}"


@database_sync_to_async
def _visible_cluster_ids(actor) -> set[int]:
    return set(clusters_for(actor, VIEW).values_list("id", flat=True))


@database_sync_to_async
def _snapshot(cluster_id: int) -> dict:
    from clusters.services.topology_view import topology_payload

    return topology_payload(cluster_id)


class _ScopedConsumer(AsyncJsonWebsocketConsumer):
    """Shared behaviour: which clusters the socket may see, periodic re-checks, frames from the client."""

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if text_data is None:
            await self.send_json({"type": "error", "code": "invalid", "detail": "frames must be JSON text"})
            return
        try:
            content = json.loads(text_data)
        except (ValueError, RecursionError):
            await self.send_json({"type": "error", "code": "invalid", "detail": "frames must be JSON text"})
            return
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content, **kwargs):
        """The server only sends on these sockets; what a client sends is ignored."""

    async def _allowed(self) -> set[int]:
        actor = self.scope.get("actor")
        if actor is None or not actor.is_authenticated:
            return set()
        return await _visible_cluster_ids(actor)

    async def _still_allowed(self, cluster_id: int) -> bool:
        now = time.monotonic()
        if now - self._checked_at > RECHECK_SECONDS:
            self._visible = await self._allowed()
            self._checked_at = now
        return cluster_id in self._visible

    async def cluster_message(self, message):
        cluster_id = message["cluster_id"]
        if not await self._still_allowed(cluster_id):
            await self.channel_layer.group_discard(cluster_group(cluster_id), self.channel_name)
            if getattr(self, "cluster_id", None) == cluster_id:
                await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.send_json(message["payload"])


class ClusterConsumer(_ScopedConsumer):
    """`ws /ws/clusters/{id}/`: one cluster's topology changes and events."""

    async def connect(self):
        self.cluster_id = int(self.scope["url_route"]["kwargs"]["cluster_id"])
        self._visible = await self._allowed() if self.cluster_id < 2**63 else set()
        self._checked_at = time.monotonic()
        if self.cluster_id not in self._visible:
            # Same answer for "does not exist" and "not yours".
            await self.accept()
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.channel_layer.group_add(cluster_group(self.cluster_id), self.channel_name)
        await self.accept()
        await self.send_json(
            {"type": "topology", "cluster_id": self.cluster_id, "topology": await _snapshot(self.cluster_id)}
        )

    async def disconnect(self, code):
        if getattr(self, "cluster_id", None) is not None:
            await self.channel_layer.group_discard(cluster_group(self.cluster_id), self.channel_name)


class EventsConsumer(_ScopedConsumer):
    """`ws /ws/events/`: events of every cluster the caller may view (joins only those groups)."""

    async def connect(self):
        actor = self.scope.get("actor")
        if actor is None or not actor.is_authenticated:
            await self.accept()
            await self.close(code=4401)
            return
        self._visible = await self._allowed()
        self._checked_at = time.monotonic()
        for cluster_id in self._visible:
            await self.channel_layer.group_add(cluster_group(cluster_id), self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        for cluster_id in getattr(self, "_visible", set()):
            await self.channel_layer.group_discard(cluster_group(cluster_id), self.channel_name)

    async def cluster_message(self, message):
        if message["payload"].get("type") != "event":
            return
        await super().cluster_message(message)


class UnknownPathConsumer(AsyncJsonWebsocketConsumer):
    """Any other /ws/ path: accepted and closed with 4404 (no 500, no traceback)."""

    async def connect(self):
        await self.accept()
        await self.close(code=CLOSE_NOT_FOUND)
