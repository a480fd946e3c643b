"""dbpilot's own health for operators, the REDIS_UNREACHABLE platform finding, and 503 JSON (never a 500
page) while its database or Redis does not answer."""

from __future__ import annotations

import json
import socket

import pytest
from django.db import OperationalError, connection

from controlplane.unavailable import unavailable_response
from tenants.models import PlatformFinding
from tenants.platform_health import REDIS_UNREACHABLE, record_redis

pytestmark = [pytest.mark.django_db, pytest.mark.api]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_operators_see_redis_and_the_database_healthy(world, settings):
    body = world.client("root").get("/api/v1/platform/health/").json()
    assert body["redis"]["ok"] is True and body["database"]["ok"] is True
    assert body["automatic_actions"] == "allowed" and body["findings"] == [] and body["ok"] is True
    assert world.client("alice").get("/api/v1/platform/health/").status_code == 403


def test_an_unreachable_redis_opens_one_platform_finding_until_it_answers_again(world, settings):
    root = world.client("root")
    test_redis = settings.REDIS_URL
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    for _ in range(2):
        body = root.get("/api/v1/platform/health/").json()
        assert body["redis"]["ok"] is False and body["automatic_actions"] == "stopped" and body["ok"] is False
        assert [f["code"] for f in body["findings"]] == [REDIS_UNREACHABLE]
        assert "no automatic action" in body["findings"][0]["message"]
    assert PlatformFinding.objects.filter(code=REDIS_UNREACHABLE).count() == 1  # opened once, not per check

    settings.REDIS_URL = f"sentinel://127.0.0.1:{_closed_port()}/dbpilot/0"  # no Sentinel answers either
    body = root.get("/api/v1/platform/health/").json()
    assert body["redis"]["ok"] is False and body["redis"]["sentinel"] is True

    settings.REDIS_URL = test_redis  # it answers again
    body = root.get("/api/v1/platform/health/").json()
    assert body["redis"]["ok"] is True and body["findings"] == []
    finding = PlatformFinding.objects.get(code=REDIS_UNREACHABLE)
    assert finding.resolved_at is not None


def test_recording_an_outage_twice_keeps_one_open_finding(db):
    record_redis(False, "ConnectionError: refused")
    record_redis(False, "ConnectionError: refused")
    record_redis(True)
    record_redis(False, "TimeoutError")
    assert [f.resolved_at is None for f in PlatformFinding.objects.order_by("opened_at", "id")] == [
        False,
        True,
    ]


def test_a_database_or_redis_outage_is_a_503_with_detail_and_code(db):
    from django.db.backends.sqlite3.base import DatabaseWrapper

    gone = DatabaseWrapper(
        {**connection.settings_dict, "NAME": "/nonexistent-dir/dbpilot.sqlite3"}, alias="gone"
    )
    with pytest.raises(OperationalError) as caught:
        gone.ensure_connection()  # the database cannot be reached: Django's OperationalError
    response = unavailable_response(caught.value)
    assert response.status_code == 503 and response["Retry-After"]
    body = json.loads(response.content)
    assert body["code"] == "database_unavailable" and body["detail"]
    import redis

    with pytest.raises(redis.ConnectionError) as refused:
        redis.Redis(host="127.0.0.1", port=_closed_port(), socket_connect_timeout=1).ping()
    assert json.loads(unavailable_response(refused.value).content)["code"] == "redis_unavailable"
    import kombu.exceptions

    broker_down = kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:6399")
    assert json.loads(unavailable_response(broker_down).content)["code"] == "redis_unavailable"
    assert unavailable_response(ValueError("a bug")) is None  # other errors are not hidden as outages
