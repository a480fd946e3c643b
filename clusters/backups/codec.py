"""The stored format of a backup or an archived binlog: compressed with zstd, optionally encrypted, and
checksummed (sha256 of the bytes as stored, so bytes flipped in storage are found before anything is
restored from them).

Encryption is AES-256-GCM in frames (cryptography's AESGCM): a stream cannot be one Fernet token without
holding it whole in memory. Each frame is `length (4 bytes) | nonce (12) | ciphertext+tag`, and its
associated data is its index and whether it is the last frame, so frames cannot be reordered, dropped or
the stream cut short without decryption failing. The per-cluster key itself is stored Fernet-encrypted
like every other secret (clusters.backups.keys).
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Iterator

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"DBPE1\n"
FRAME_PLAINTEXT = 1 << 20
NONCE = 12
LAST_FLAG = 1 << 31
COMPRESSION = "zstd"
ZSTD_LEVEL = 3


class CorruptBackup(ValueError):
    """The stored bytes are not what was written (checksum, decryption or decompression failed)."""


class Digest:
    """Counts and hashes what passes through: the stored size and sha256, and the raw (input) size."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.stored_bytes = 0
        self.raw_bytes = 0

    @property
    def hexdigest(self) -> str:
        return self.sha256.hexdigest()


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _aad(index: int, last: bool) -> bytes:
    return struct.pack(">QB", index, 1 if last else 0)


def _compress(chunks: Iterable[bytes], digest: Digest) -> Iterator[bytes]:
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compressobj()
    for chunk in chunks:
        digest.raw_bytes += len(chunk)
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


def _encrypt(chunks: Iterable[bytes], key: bytes) -> Iterator[bytes]:
    aead = AESGCM(key)
    yield MAGIC
    index = 0
    pending = b""
    for chunk in chunks:
        pending += chunk
        while len(pending) > FRAME_PLAINTEXT:
            frame, pending = pending[:FRAME_PLAINTEXT], pending[FRAME_PLAINTEXT:]
            yield _frame(aead, index, frame, last=False)
            index += 1
    yield _frame(aead, index, pending, last=True)


def _frame(aead: AESGCM, index: int, plaintext: bytes, last: bool) -> bytes:
    nonce = os.urandom(NONCE)
    sealed = aead.encrypt(nonce, plaintext, _aad(index, last))
    # The last-frame flag rides in the length's top bit and is authenticated through the associated data.
    return struct.pack(">I", len(sealed) | (LAST_FLAG if last else 0)) + nonce + sealed


def encode(chunks: Iterable[bytes], key: bytes | None, digest: Digest) -> Iterator[bytes]:
    """Compress (and encrypt with `key`) a stream of raw chunks; `digest` counts and hashes the output."""
    stream = _compress(chunks, digest)
    if key is not None:
        stream = _encrypt(stream, key)
    for piece in stream:
        if piece:
            digest.sha256.update(piece)
            digest.stored_bytes += len(piece)
            yield piece


class _Buffer:
    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._data = bytearray()

    def read(self, count: int) -> bytes:
        while len(self._data) < count:
            try:
                self._data += next(self._chunks)
            except StopIteration:
                break
        out = bytes(self._data[:count])
        del self._data[:count]
        return out


def _decrypt(chunks: Iterable[bytes], key: bytes) -> Iterator[bytes]:
    aead = AESGCM(key)
    source = _Buffer(chunks)
    if source.read(len(MAGIC)) != MAGIC:
        raise CorruptBackup("not an encrypted dbpilot backup (bad header)")
    index = 0
    while True:
        header = source.read(4)
        if len(header) < 4:
            raise CorruptBackup("the stream ends before its last frame (truncated)")
        (word,) = struct.unpack(">I", header)
        length, last = word & (LAST_FLAG - 1), bool(word & LAST_FLAG)
        nonce = source.read(NONCE)
        sealed = source.read(length)
        if len(nonce) < NONCE or len(sealed) < length:
            raise CorruptBackup("the stream ends inside a frame (truncated)")
        try:
            plaintext = aead.decrypt(nonce, sealed, _aad(index, last))
        except InvalidTag:
            raise CorruptBackup(f"frame {index} does not decrypt: altered, or another key") from None
        yield plaintext
        if last:
            if source.read(1):
                raise CorruptBackup("bytes after the last frame")
            return
        index += 1


def _decompress(chunks: Iterable[bytes]) -> Iterator[bytes]:
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    try:
        for chunk in chunks:
            out = decompressor.decompress(chunk)
            if out:
                yield out
    except zstandard.ZstdError as exc:
        raise CorruptBackup(f"decompression failed: {exc}") from None
    if not decompressor.eof:
        raise CorruptBackup("the compressed stream is truncated")


def _checked(chunks: Iterable[bytes], expected_sha256: str | None) -> Iterator[bytes]:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
        yield chunk
    if expected_sha256 and digest.hexdigest() != expected_sha256:
        raise CorruptBackup(
            f"checksum mismatch: stored bytes hash to {digest.hexdigest()[:16]}..., "
            f"the catalog says {expected_sha256[:16]}..."
        )


def decode(chunks: Iterable[bytes], key: bytes | None, expected_sha256: str | None) -> Iterator[bytes]:
    """The raw chunks back. CorruptBackup when the bytes were altered; the checksum is compared at the end,
    so a consumer must treat what it received as void when this raises."""
    stream: Iterable[bytes] = _checked(chunks, expected_sha256)
    if key is not None:
        stream = _decrypt(stream, key)
    yield from _decompress(stream)


def verify_checksum(chunks: Iterable[bytes], expected_sha256: str) -> str | None:
    """Read everything and compare the checksum; None when it matches, else the reason."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    if digest.hexdigest() != expected_sha256:
        return (
            f"checksum mismatch: stored bytes hash to {digest.hexdigest()[:16]}..., "
            f"the catalog says {expected_sha256[:16]}..."
        )
    return None
