"""Where backups and archived binlogs are kept: one small interface, two adapters.

`FilesystemStorage` writes under a directory (`DBPILOT_BACKUP_ROOT`, the embedded default);
`S3Storage` writes to an S3-compatible bucket through boto3 (multipart upload of a stream, so a backup is
never held whole in memory or on a local disk). Keys are relative paths (`<tenant>/<cluster>/...`).

Storage knows nothing of clusters or backups: it stores bytes under keys. Every failure is a
`StorageError` whose message says what to fix; `permanent=False` when trying again may help.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

CHUNK = 1 << 20
KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,500}")


class StorageError(RuntimeError):
    """The storage could not do what was asked; the message says why."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class BackupStorage(Protocol):
    """Bytes under keys. `put` consumes an iterable of chunks and returns the number of bytes stored."""

    name: str

    def put(self, key: str, chunks: Iterable[bytes]) -> int: ...

    def get(self, key: str) -> Iterator[bytes]: ...

    def delete(self, key: str) -> bool: ...

    def exists(self, key: str) -> bool: ...

    def keys(self, prefix: str = "") -> list[str]: ...

    def describe(self) -> str: ...


def check_key(key: str) -> str:
    if not KEY_PATTERN.fullmatch(key) or ".." in key.split("/"):
        raise StorageError(f"invalid storage key {key!r}", permanent=True)
    return key


class FilesystemStorage:
    """Keys are files under `root`; a file is written beside its final name and renamed when complete, so
    a reader never sees half a backup."""

    name = "filesystem"

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def describe(self) -> str:
        return f"directory {self.root}"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        path = self._path(key)
        partial = path.with_name(path.name + ".partial")
        size = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with open(partial, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            partial.replace(path)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return size

    def get(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        try:
            handle = open(path, "rb")
        except FileNotFoundError:
            raise StorageError(f"{key} is not in the backup storage ({self.describe()})", True) from None
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from None
        return _file_chunks(handle)

    def delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def keys(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.endswith(".partial"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append(key)
        return sorted(found)


def _file_chunks(handle) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of chunks (what boto3's managed upload reads from)."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._buffer = b""
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        count = min(len(target), len(self._buffer))
        target[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        self.size += count
        return count


class S3Storage:
    """An S3-compatible bucket (AWS, MinIO, Ceph RGW...) through boto3. Tested against moto's server only:
    not verified against a real object store (docs/backups.md)."""

    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        timeout: float = 10.0,
    ):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint or None,
            region_name=region or "us-east-1",
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            config=Config(
                connect_timeout=timeout,
                read_timeout=max(timeout, 30),
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )

    def describe(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _error(self, what: str, exc: Exception) -> StorageError:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            permanent = code in ("NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "NoSuchKey", "404")
            return StorageError(f"{what} ({self.describe()}): {code or exc}", permanent)
        return StorageError(f"{what} ({self.describe()}): {exc.__class__.__name__}: {exc}")

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        from boto3.s3.transfer import TransferConfig

        reader = _ChunkReader(chunks)
        try:
            self.client.upload_fileobj(
                io.BufferedReader(reader, CHUNK),
                self.bucket,
                self._key(key),
                Config=TransferConfig(multipart_chunksize=8 * CHUNK, max_concurrency=2),
            )
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001 - botocore's errors and the connection's
            if exc.__class__.__module__.startswith(("botocore", "boto3", "urllib3", "s3transfer")):
                raise self._error(f"cannot upload {key}", exc) from None
            raise
        return reader.size

    def get(self, key: str) -> Iterator[bytes]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except Exception as exc:  # noqa: BLE001
            raise self._error(f"cannot read {key}", exc) from None
        return _s3_chunks(body)

    def delete(self, key: str) -> bool:
        existed = self.exists(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:  # noqa: BLE001
            raise self._error(f"cannot delete {key}", exc) from None
        return existed

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._error(f"cannot look up {key}", exc) from None
        except Exception as exc:  # noqa: BLE001
            raise self._error(f"cannot look up {key}", exc) from None
        return True

    def keys(self, prefix: str = "") -> list[str]:
        full = self._key(prefix) if prefix else (f"{self.prefix}/" if self.prefix else "")
        found = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full
            ):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    found.append(key[len(self.prefix) + 1 :] if self.prefix else key)
        except Exception as exc:  # noqa: BLE001
            raise self._error("cannot list the bucket", exc) from None
        return sorted(found)


def _s3_chunks(body) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK)
    finally:
        body.close()


def storage_from_settings() -> BackupStorage:
    """The deployment's backup storage (DBPILOT_BACKUP_STORAGE, docs/configuration.md)."""
    from django.conf import settings

    if settings.DBPILOT_BACKUP_STORAGE == "s3":
        if not settings.DBPILOT_BACKUP_S3_BUCKET:
            raise StorageError("DBPILOT_BACKUP_STORAGE=s3 needs DBPILOT_BACKUP_S3_BUCKET", permanent=True)
        return S3Storage(
            settings.DBPILOT_BACKUP_S3_BUCKET,
            prefix=settings.DBPILOT_BACKUP_S3_PREFIX,
            endpoint=settings.DBPILOT_BACKUP_S3_ENDPOINT or None,
            region=settings.DBPILOT_BACKUP_S3_REGION or None,
            access_key=settings.DBPILOT_BACKUP_S3_ACCESS_KEY or None,
            secret_key=settings.DBPILOT_BACKUP_S3_SECRET_KEY or None,
        )
    return FilesystemStorage(settings.DBPILOT_BACKUP_ROOT)
