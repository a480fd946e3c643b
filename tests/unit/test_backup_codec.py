"""The stored format: round trips with and without encryption, and altered bytes always caught."""

from __future__ import annotations

import os

import pytest

from clusters.backups import codec


def _stored(data: bytes, key: bytes | None) -> tuple[bytes, codec.Digest]:
    digest = codec.Digest()
    chunks = [data[i : i + 300_000] for i in range(0, len(data), 300_000)] or [b""]
    return b"".join(codec.encode(chunks, key, digest)), digest


@pytest.mark.parametrize("encrypted", [False, True])
@pytest.mark.parametrize("size", [0, 10, 3 * (1 << 20) + 17])
def test_round_trip(encrypted, size):
    key = codec.new_key() if encrypted else None
    data = os.urandom(size // 2) + b"a" * (size - size // 2)
    stored, digest = _stored(data, key)
    assert digest.raw_bytes == size and digest.stored_bytes == len(stored)
    back = b"".join(
        codec.decode([stored[i : i + 7777] for i in range(0, len(stored), 7777)], key, digest.hexdigest)
    )
    assert back == data
    if encrypted:
        assert stored.startswith(codec.MAGIC)


def test_compresses_repetitive_data():
    stored, digest = _stored(b"row " * 500_000, None)
    assert digest.stored_bytes < digest.raw_bytes / 50


@pytest.mark.parametrize("encrypted", [False, True])
def test_a_flipped_byte_fails_the_checksum(encrypted):
    key = codec.new_key() if encrypted else None
    stored, digest = _stored(os.urandom(200_000), key)
    altered = bytearray(stored)
    altered[len(altered) // 2] ^= 0x01
    with pytest.raises(codec.CorruptBackup):
        b"".join(codec.decode([bytes(altered)], key, digest.hexdigest))
    assert "checksum mismatch" in codec.verify_checksum([bytes(altered)], digest.hexdigest)
    assert codec.verify_checksum([stored], digest.hexdigest) is None


def test_encryption_catches_truncation_and_wrong_key_without_a_checksum():
    key = codec.new_key()
    stored, _ = _stored(os.urandom(3 * (1 << 20)), key)
    with pytest.raises(codec.CorruptBackup, match="truncated"):
        b"".join(codec.decode([stored[: len(stored) // 2]], key, None))
    with pytest.raises(codec.CorruptBackup, match="another key"):
        b"".join(codec.decode([stored], codec.new_key(), None))
    # Dropping whole frames: the frame indexes are authenticated.
    with pytest.raises(codec.CorruptBackup):
        b"".join(codec.decode([stored[:6] + stored[6 + 4 + 12 + (1 << 20) + 16 :]], key, None))
