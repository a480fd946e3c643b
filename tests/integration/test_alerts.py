"""Alert subscriptions end to end: a real sandbox cluster, the real monitoring tick, Celery tasks run eagerly,
a webhook receiver and an SMTP server (aiosmtpd) on loopback.

The receiver gets exactly one signed alert when a finding opens and one when it resolves; a flaky
receiver that first answers 500 gets the alert again (the retry) and the log says so; another tenant's
subscription to the same receiver gets nothing; an email goes through a real SMTP server."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from clusters.alerts.models import AlertDelivery
from clusters.domain import constants as c
from clusters.domain.alerts import verify
from clusters.services import alerts
from clusters.services.monitoring import tick_cluster
from controlplane.celery import app as celery_app
from tests.integration.monitoring_helpers import register, tenant_client
from tests.integration.routing_helpers import free_port

pytestmark = pytest.mark.django_db(transaction=True)


class Receiver:
    """A webhook receiver on loopback: records every POST; `fail_first[path]` answers 500 that many times."""

    def __init__(self):
        self.received: list[tuple[str, dict, bytes]] = []
        self.fail_first: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append((self.path, dict(self.headers), body))
                failing = receiver.fail_first.get(self.path, 0)
                if failing:
                    receiver.fail_first[self.path] = failing - 1
                self.send_response(500 if failing else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[tuple[dict, bytes]]:
        return [(h, b) for p, h, b in self.received if p == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.DBPILOT_ALLOWED_WEBHOOK_HOSTS = ["127.0.0.1"]
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the tasks run in the test, in order (Celery reads it live)
    settings.CELERY_TASK_EAGER_PROPAGATES = True
    assert celery_app.conf.task_always_eager
    r = Receiver()
    yield r
    r.close()


def admin_client(name: str):
    """The tenant admin, signed in (tenant admins manage subscriptions; tokens do not)."""
    from rest_framework.test import APIClient

    _, created = tenant_client(name)
    client = APIClient()
    client.force_authenticate(created.user)
    return client, created


def webhook(client, receiver, path: str, **rule) -> dict:
    response = client.post(
        "/api/v1/alerts/subscriptions/",
        {"name": path.strip("/"), "channel": "webhook", "target": receiver.url(path), **rule},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_one_signed_alert_per_open_and_resolve_a_retry_after_500_and_nothing_across_tenants(
    sandbox_cluster, clean_redis, receiver
):
    client, created = admin_client("alertco")
    other, _ = admin_client("otherco")
    cluster = register(created.team, sandbox_cluster)
    rule = {"codes": [c.REPLICA_SQL_STOPPED]}
    mine = webhook(client, receiver, "/mine", **rule)
    flaky = webhook(client, receiver, "/flaky", **rule)
    theirs = webhook(other, receiver, "/theirs")
    receiver.fail_first["/flaky"] = 1
    tick_cluster(cluster.id)
    sandbox_cluster.sql(2, "STOP SLAVE SQL_THREAD")
    try:
        for _ in range(4):
            tick_cluster(cluster.id)
            time.sleep(0.2)
    finally:
        sandbox_cluster.sql(2, "START SLAVE SQL_THREAD")
    assert len(receiver.on("/mine")) == 1  # opened, and never repeated while it stays open
    for _ in range(6):
        tick_cluster(cluster.id)
        time.sleep(0.2)

    got = receiver.on("/mine")
    assert len(got) == 2
    bodies = []
    for headers, body in got:
        assert verify(mine["secret"], headers["X-Dbpilot-Signature"], body, now=time.time())
        assert not verify(theirs["secret"], headers["X-Dbpilot-Signature"], body, now=time.time())
        bodies.append(json.loads(body))
    assert [b["type"] for b in bodies] == ["finding_opened", "finding_resolved"]
    assert all(b["code"] == c.REPLICA_SQL_STOPPED and b["cluster"]["id"] == cluster.id for b in bodies)

    flaky_got = receiver.on("/flaky")
    assert [json.loads(b)["type"] for _, b in flaky_got] == [
        "finding_opened",
        "finding_opened",
        "finding_resolved",
    ]
    log = client.get(f"/api/v1/alerts/subscriptions/{flaky['id']}/deliveries/").json()["results"]
    assert [(d["kind"], d["state"], d["attempts"]) for d in reversed(log)] == [
        ("finding_opened", "sent", 2),
        ("finding_resolved", "sent", 1),
    ]
    assert receiver.on("/theirs") == []
    assert not AlertDelivery.objects.filter(subscription_id=theirs["id"]).exists()


class Mailbox:
    def __init__(self):
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def test_an_email_alert_goes_through_a_real_smtp_server(settings, clean_redis, receiver):
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.DEFAULT_FROM_EMAIL = "dbpilot@alerts.test"
        client, _ = admin_client("mailco")
        sub = client.post(
            "/api/v1/alerts/subscriptions/",
            {"name": "mail", "channel": "email", "target": "oncall@mailco.test"},
            format="json",
        ).json()
        answer = client.post(f"/api/v1/alerts/subscriptions/{sub['id']}/test/").json()
        assert answer["state"] == "sent" and answer["attempts"] == 1
        ((sender, recipients, content),) = mailbox.messages
        assert sender == "dbpilot@alerts.test" and recipients == ["oncall@mailco.test"]
        assert b"Test alert from dbpilot" in content
        settings.EMAIL_PORT = free_port()  # nothing listens: the attempt fails and says why
        failed = alerts.send_test(alerts.AlertSubscription.objects.get(pk=sub["id"]))
        assert failed.state == "failed" and "mail not sent" in failed.last_error
    finally:
        controller.stop()
