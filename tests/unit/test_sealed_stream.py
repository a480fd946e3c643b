"""The clone stream between agents: what one agent seals only the other, with the same token, opens, and
whole; a wrong key, a changed byte, a frame dropped or the end cut off is refused, never a short copy."""

from __future__ import annotations

import io
import os

import pytest

from clusters.agent.sealed_stream import GREETING, MAX_FRAME, SealedReader, SealedWriter, StreamBroken


def _sealed(token: str, chunks: list[bytes], *, close: bool = True) -> tuple[bytes, list[bytes]]:
    frames: list[bytes] = []
    writer = SealedWriter(token, frames.append)
    for chunk in chunks:
        writer.write(chunk)
    if close:
        writer.close()
    return b"".join(frames), frames


def _open_all(token: str, wire: bytes) -> bytes:
    reader = SealedReader(token, io.BytesIO(wire))
    reader.greet()
    out = []
    while chunk := reader.read():
        out.append(chunk)
    return b"".join(out)


def test_what_is_sealed_opens_whole_with_the_same_token_and_never_shows_the_data_or_the_token():
    data = [os.urandom(100), os.urandom(MAX_FRAME * 2 + 5), b"", b"xbstream tail"]
    wire, _ = _sealed("t0ken", data)
    assert _open_all("t0ken", wire) == b"".join(data)
    assert b"xbstream tail" not in wire and b"t0ken" not in wire and GREETING not in wire


def test_a_peer_without_the_token_is_refused_at_the_greeting():
    wire, _ = _sealed("right", [b"data"])
    with pytest.raises(StreamBroken, match="does not open"):
        SealedReader("wrong", io.BytesIO(wire)).greet()
    with pytest.raises(StreamBroken):
        SealedReader("right", io.BytesIO(b"right\nplain text from an old sender")).greet()


def test_a_changed_byte_is_refused():
    wire, _ = _sealed("k", [b"a" * 1000])
    tampered = bytearray(wire)
    tampered[-40] ^= 1
    with pytest.raises(StreamBroken):
        _open_all("k", bytes(tampered))


def test_a_dropped_or_repeated_frame_is_refused():
    _, frames = _sealed("k", [b"one", b"two", b"three"])
    with pytest.raises(StreamBroken):
        _open_all("k", b"".join(frames[:2] + frames[3:]))
    with pytest.raises(StreamBroken):
        _open_all("k", b"".join(frames[:3] + frames[2:]))


def test_a_stream_cut_short_is_an_error_not_a_short_copy():
    wire, frames = _sealed("k", [b"one", b"two"], close=False)
    with pytest.raises(StreamBroken, match="before its last frame"):
        _open_all("k", wire)
    full, frames = _sealed("k", [b"one", b"two"])
    with pytest.raises(StreamBroken):
        _open_all("k", full[:-3])
