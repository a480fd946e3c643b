"""The clone stream between two agents, encrypted and authenticated with the clone's one-time token.

Both agents receive the token sealed for their own host (clusters.providers.agent_protocol); it never
crosses the pool's network in clear. The key is HKDF-SHA256 of the token, so every clone has a key of its
own. The stream is a sequence of frames, each `length (4 bytes) | last (1 byte) | AES-GCM ciphertext`:

- the nonce is the frame's number: a frame dropped, repeated or moved makes the next one fail to open;
- the `last` byte is authenticated: a stream cut short (no last frame) is an error, never a short copy;
- the first frame is a fixed greeting, so the receiver drops a connection that does not hold the key
  before it writes anything into the data directory.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

GREETING = b"dbpilot clone stream v1"
MAX_FRAME = 1 << 20  # plaintext bytes per frame
_HEADER = struct.Struct(">IB")
_TAG = 16


class StreamBroken(Exception):
    """The stream cannot be trusted: wrong key, tampered with, reordered or cut short."""


def stream_key(token: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"dbpilot-clone", info=b"stream v1").derive(
        token.encode()
    )
    return AESGCM(key)


def _nonce(number: int) -> bytes:
    return number.to_bytes(12, "big")


class SealedWriter:
    """Seals what it is given into frames and hands them to `send` (a socket's sendall)."""

    def __init__(self, token: str, send: Callable[[bytes], object]):
        self._aead = stream_key(token)
        self._send = send
        self._number = 0
        self._frame(GREETING, last=False)

    def _frame(self, plain: bytes, *, last: bool) -> None:
        flag = 1 if last else 0
        sealed = self._aead.encrypt(_nonce(self._number), plain, bytes([flag]))
        self._number += 1
        self._send(_HEADER.pack(len(sealed), flag) + sealed)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(view), MAX_FRAME):
            self._frame(bytes(view[start : start + MAX_FRAME]), last=False)

    def close(self) -> None:
        """The last frame: without it the receiver treats the stream as cut short."""
        self._frame(b"", last=True)


class SealedReader:
    """Opens the frames read from `stream` (a socket's file); `greet()` first, then `read()` until b""."""

    def __init__(self, token: str, stream: BinaryIO):
        self._aead = stream_key(token)
        self._stream = stream
        self._number = 0
        self._done = False

    def _exactly(self, size: int) -> bytes:
        data = self._stream.read(size)
        if data is None or len(data) != size:
            raise StreamBroken(f"the stream stopped before its last frame ({self._number} frames read)")
        return data

    def _next(self) -> tuple[bytes, bool]:
        length, flag = _HEADER.unpack(self._exactly(_HEADER.size))
        if flag not in (0, 1) or not _TAG <= length <= MAX_FRAME + _TAG:
            raise StreamBroken(f"frame {self._number} has an impossible header")
        try:
            plain = self._aead.decrypt(_nonce(self._number), self._exactly(length), bytes([flag]))
        except InvalidTag:
            raise StreamBroken(f"frame {self._number} does not open with this clone's key") from None
        self._number += 1
        return plain, bool(flag)

    def greet(self) -> None:
        """Read the greeting: StreamBroken when the peer does not hold the clone's key."""
        plain, last = self._next()
        if plain != GREETING or last:
            raise StreamBroken("the first frame is not the clone stream's greeting")

    def read(self) -> bytes:
        """The next chunk of data; b"" once the last frame arrived (StreamBroken if the stream stops first)."""
        while not self._done:
            plain, last = self._next()
            if last:
                self._done = True
            if plain:
                return plain
        return b""
