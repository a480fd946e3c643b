"""The backup storage adapters against real parts: a directory, and moto's standalone S3 server (the
double for an object store; not a real one)."""

from __future__ import annotations

import os

import pytest

from clusters.backups import codec
from clusters.backups.storage import FilesystemStorage, S3Storage, StorageError
from tests.integration.backup_helpers import make_bucket, moto_s3  # noqa: F401 - fixture


def _both(tmp_path, endpoint):
    make_bucket(endpoint, "bkt-test")
    return [
        FilesystemStorage(tmp_path / "store"),
        S3Storage("bkt-test", prefix="p", endpoint=endpoint, access_key="test", secret_key="test"),
    ]


def test_put_get_delete_list_on_a_directory_and_on_s3(tmp_path, moto_s3):  # noqa: F811
    for storage in _both(tmp_path, moto_s3):
        data = os.urandom(20 * (1 << 20) + 5)  # several multipart parts on S3
        key = codec.new_key()
        digest = codec.Digest()
        chunks = (data[i : i + (1 << 20)] for i in range(0, len(data), 1 << 20))
        size = storage.put("1/2/backups/3.xbstream.zst", codec.encode(chunks, key, digest))
        assert size == digest.stored_bytes
        assert storage.exists("1/2/backups/3.xbstream.zst")
        assert storage.keys("1/2/") == ["1/2/backups/3.xbstream.zst"]
        assert (
            b"".join(codec.decode(storage.get("1/2/backups/3.xbstream.zst"), key, digest.hexdigest)) == data
        )
        assert storage.delete("1/2/backups/3.xbstream.zst") is True
        assert storage.delete("1/2/backups/3.xbstream.zst") is False
        assert not storage.exists("1/2/backups/3.xbstream.zst") and storage.keys("1/") == []
        with pytest.raises(StorageError, match="is not in the backup storage|NoSuchKey"):
            list(storage.get("1/2/missing"))


def test_a_failed_write_leaves_nothing(tmp_path, moto_s3):  # noqa: F811
    def failing():
        yield b"x" * 1000
        raise RuntimeError("the backup died")

    for storage in _both(tmp_path, moto_s3):
        with pytest.raises(RuntimeError):
            storage.put("a/b", failing())
        assert storage.keys("") == []


def test_unreachable_s3_is_a_clear_storage_error():
    storage = S3Storage("bkt-test", endpoint="http://127.0.0.1:9", access_key="x", secret_key="y", timeout=1)
    with pytest.raises(StorageError, match="cannot upload a/b .*s3://bkt-test"):
        storage.put("a/b", [b"data"])
    with pytest.raises(StorageError, match="invalid storage key"):
        storage.put("../etc/passwd", [b""])
