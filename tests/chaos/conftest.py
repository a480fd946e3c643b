"""The chaos suite: faults injected into dbpilot's own processes and services (beat, Redis through
Sentinel, the PostgreSQL control-plane database), each test bounded in time. Every test here carries the
`chaos` marker: `pytest -m chaos tests/chaos` runs them alone."""

from __future__ import annotations

import re
import socket
from datetime import datetime

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/tests/chaos/" in str(item.path):
            item.add_marker(pytest.mark.chaos)
            item.add_marker(pytest.mark.timeout(150))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): ")


def log_times(text: str, *needles: str) -> list[float]:
    """Epoch times of the Celery log lines (`[YYYY-mm-dd HH:MM:SS,mmm: ...`) that contain every needle."""
    times = []
    for line in text.splitlines():
        match = _STAMP.match(line)
        if match and all(n in line for n in needles):
            times.append(datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return times
