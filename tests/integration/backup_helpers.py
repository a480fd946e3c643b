"""Shared by the backup tests: moto's standalone S3 server on a loopback port (the S3 double: no real
object store runs here), and settings pointing the backup storage at it or at a directory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def moto_s3():
    """`moto_server` started for the test and stopped after it; yields its endpoint URL."""
    port = _free_port()
    binary = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.1)
    yield endpoint
    process.terminate()
    process.wait(10)


def make_bucket(endpoint: str, bucket: str) -> None:
    import boto3

    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)


def use_s3(settings, endpoint: str, bucket: str = "dbpilot-backups") -> None:
    make_bucket(endpoint, bucket)
    settings.DBPILOT_BACKUP_STORAGE = "s3"
    settings.DBPILOT_BACKUP_S3_ENDPOINT = endpoint
    settings.DBPILOT_BACKUP_S3_BUCKET = bucket
    settings.DBPILOT_BACKUP_S3_PREFIX = "tests"
    settings.DBPILOT_BACKUP_S3_ACCESS_KEY = "test"
    settings.DBPILOT_BACKUP_S3_SECRET_KEY = "test"


def use_directory(settings, root: Path) -> None:
    settings.DBPILOT_BACKUP_STORAGE = "filesystem"
    settings.DBPILOT_BACKUP_ROOT = root
