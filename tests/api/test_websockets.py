"""Websockets: refusals are accepted then closed with the documented codes, unknown paths are a clean 4404,
and a frame that is not JSON gets an error message instead of crashing the consumer."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

pytestmark = [pytest.mark.api, pytest.mark.django_db]


def _close_after_accept(path: str, headers) -> dict:
    from controlplane.asgi import application

    async def scenario():
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await communicator.connect(timeout=5)
        assert connected, "refused before accept"
        return await communicator.receive_output(timeout=3)

    return async_to_sync(scenario)()


@pytest.mark.parametrize(
    "path, who, code",
    [
        ("/ws/events/", None, 4401),
        ("/ws/clusters/{z}/", "bob", 4404),
        ("/ws/clusters/99999999/", "bob", 4404),
        ("/ws/clusters/99999999999999999999999/", "bob", 4404),
        ("/ws/no-such-thing/", "bob", 4404),
        ("/ws/", "token:read", 4404),
        ("/not-ws-at-all/", "token:read", 4404),
        ("/ws/no-such-thing/", None, 4401),
    ],
)
def test_refusals_accept_then_close_with_the_documented_code(
    world, websocket_in_test_transaction, path, who, code
):
    message = _close_after_accept(path.format(z=world.cluster_z.id), world.ws_headers(who))
    assert message == {"type": "websocket.close", "code": code}


@pytest.mark.parametrize(
    "frame", [{"text_data": "not json"}, {"text_data": "[" * 50000}, {"bytes_data": b"\x00\x01"}]
)
def test_a_frame_that_is_not_json_gets_an_error_and_the_socket_lives_on(
    world, websocket_in_test_transaction, frame
):
    from channels.layers import get_channel_layer

    from clusters.consumers import cluster_group
    from controlplane.asgi import application

    cluster_id = world.cluster_x.id
    headers = world.ws_headers("bob")

    async def scenario():
        communicator = WebsocketCommunicator(application, f"/ws/clusters/{cluster_id}/", headers=headers)
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        await communicator.receive_json_from()  # the topology snapshot
        if "text_data" in frame:
            await communicator.send_to(text_data=frame["text_data"])
        else:
            await communicator.send_to(bytes_data=frame["bytes_data"])
        error = await communicator.receive_json_from(timeout=3)
        await communicator.send_json_to({"type": "ping"})  # valid JSON: ignored
        payload = {"type": "event", "cluster_id": cluster_id, "message": "still here"}
        await get_channel_layer().group_send(
            cluster_group(cluster_id),
            {"type": "cluster.message", "cluster_id": cluster_id, "payload": payload},
        )
        after = await communicator.receive_json_from(timeout=3)
        await communicator.disconnect()
        return error, after

    error, after = async_to_sync(scenario)()
    assert error == {"type": "error", "code": "invalid", "detail": "frames must be JSON text"}
    assert after["message"] == "still here"
