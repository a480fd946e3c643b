"""Alert subscriptions API: tenant admins manage them, the secret is shown once, input errors are 400s that
say what to fix, deliveries are listed, a test alert goes out (Django's locmem mailbox here), and events
of a subscribed cluster become exactly one delivery each."""

import pytest
from django.core import mail
from django.test import override_settings

from clusters.alerts.models import AlertDelivery, AlertSubscription
from clusters.events import record_event
from clusters.services import alerts

pytestmark = [pytest.mark.api, pytest.mark.django_db]
URL = "/api/v1/alerts/subscriptions/"


@pytest.fixture(autouse=True)
def allowed_hosts(settings):
    settings.DBPILOT_ALLOWED_WEBHOOK_HOSTS = ["hooks.example.test", "localhost"]


def test_tenant_admin_creates_a_webhook_and_sees_its_secret_once(world):
    alice = world.client("alice")
    response = alice.post(
        URL,
        {
            "name": "ops-hook",
            "channel": "webhook",
            "target": "https://hooks.example.test/x",
            "severities": ["error", "critical"],
            "payload_format": "slack",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert len(body["secret"]) >= 40 and body["tenant"] == world.tenant_a.id and body["clusters"] == []
    again = alice.get(f"{URL}{body['id']}/").json()
    assert "secret" not in again and again["severities"] == ["error", "critical"]
    assert [s["id"] for s in alice.get(URL).json()["results"]] == [body["id"]]
    sub = AlertSubscription.objects.get(pk=body["id"])
    assert body["secret"] not in sub.secret_encrypted


def test_only_tenant_admins_manage_and_other_tenants_see_nothing(world):
    sub, _ = alerts.create_subscription(
        world.tenant_a, world.alice, {"name": "mail", "channel": "email", "target": "ops@acme.example"}
    )
    bob = world.client("bob")
    assert (
        bob.post(
            URL, {"name": "x", "channel": "email", "target": "b@acme.example"}, format="json"
        ).status_code
        == 403
    )
    assert bob.get(f"{URL}{sub.id}/").status_code == 404
    assert world.client("token:admin").get(URL).json()["results"] == []  # tokens administer no tenant
    charlie = world.client("charlie")
    assert charlie.get(f"{URL}{sub.id}/").status_code == 404
    assert charlie.get(f"{URL}{sub.id}/deliveries/").status_code == 404
    assert charlie.delete(f"{URL}{sub.id}/").status_code == 404
    bad = charlie.post(
        URL,
        {"name": "x", "channel": "email", "target": "c@globex.example", "clusters": [world.cluster_x.id]},
        format="json",
    )
    assert bad.status_code == 400 and "clusters" in bad.json()["detail"]


@pytest.mark.parametrize(
    "payload, field, words",
    [
        (
            {"channel": "webhook", "target": "https://evil.example.test/x"},
            "target",
            "DBPILOT_ALLOWED_WEBHOOK_HOSTS",
        ),
        ({"channel": "webhook", "target": "ftp://hooks.example.test/x"}, "target", "http"),
        ({"channel": "webhook", "target": "https://u:p@hooks.example.test/x"}, "target", "credentials"),
        ({"channel": "email", "target": "not-an-address"}, "target", "email"),
        (
            {"channel": "email", "target": "a@acme.example", "severities": ["loud"]},
            "severities",
            "unknown severity",
        ),
        ({"channel": "pigeon", "target": "a@acme.example"}, "channel", ""),
    ],
)
def test_bad_input_is_a_400_that_names_the_field(world, payload, field, words):
    response = world.client("alice").post(URL, {"name": "n", **payload}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] and field in str(body) and words in str(body)


def test_patch_delete_and_a_name_taken(world):
    alice = world.client("alice")
    first = alice.post(
        URL, {"name": "a", "channel": "email", "target": "a@acme.example"}, format="json"
    ).json()
    alice.post(URL, {"name": "b", "channel": "email", "target": "b@acme.example"}, format="json")
    taken = alice.patch(f"{URL}{first['id']}/", {"name": "b"}, format="json")
    assert taken.status_code == 400 and "name" in str(taken.json())
    changed = alice.patch(
        f"{URL}{first['id']}/", {"codes": ["replication_stopped"], "enabled": False}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["codes"] == ["replication_stopped"]
    assert changed.json()["enabled"] is False
    assert alice.delete(f"{URL}{first['id']}/").status_code == 204
    assert alice.get(f"{URL}{first['id']}/").status_code == 404


def test_a_test_alert_lands_in_the_mailbox_and_in_the_delivery_log(world):
    alice = world.client("alice")
    sub = alice.post(
        URL, {"name": "mail", "channel": "email", "target": "ops@acme.example"}, format="json"
    ).json()
    response = alice.post(f"{URL}{sub['id']}/test/")
    assert response.status_code == 200 and response.json()["state"] == "sent"
    (message,) = mail.outbox
    assert message.to == ["ops@acme.example"] and "Test alert" in message.subject
    log = alice.get(f"{URL}{sub['id']}/deliveries/").json()["results"]
    assert [(d["kind"], d["state"], d["attempts"]) for d in log] == [("test", "sent", 1)]


def test_an_event_makes_one_delivery_per_matching_subscription_and_never_a_repeat(world, monkeypatch):
    sent = []
    monkeypatch.setattr(alerts, "_enqueue", lambda delivery_id, countdown=0: sent.append(delivery_id))
    mine, _ = alerts.create_subscription(
        world.tenant_a, world.alice, {"name": "all", "channel": "email", "target": "ops@acme.example"}
    )
    alerts.create_subscription(
        world.tenant_a,
        world.alice,
        {"name": "critical-only", "channel": "email", "target": "x@acme.example", "severities": ["critical"]},
    )
    alerts.create_subscription(
        world.tenant_a,
        world.alice,
        {
            "name": "other-cluster",
            "channel": "email",
            "target": "y@acme.example",
            "clusters": [world.cluster_y.id],
        },
    )
    theirs, _ = alerts.create_subscription(
        world.tenant_b, world.charlie, {"name": "all", "channel": "email", "target": "c@globex.example"}
    )
    event = record_event(
        world.cluster_x.id,
        "finding_opened",
        "Replica stopped",
        severity="error",
        data={"code": "replication_stopped", "server": "127.0.0.1:3307"},
    )
    assert len(alerts.on_event(event.id)) == 1
    assert alerts.on_event(event.id) == []  # the same event again: nothing new
    (delivery,) = AlertDelivery.objects.all()
    assert delivery.subscription == mine and sent == [delivery.id]
    assert not theirs.deliveries.exists()
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
        assert alerts.deliver(delivery.id) == "sent"
    assert mail.outbox[0].subject == "dbpilot: [error] acme/prod: replication_stopped opened"


def test_a_burst_becomes_one_digest(world, monkeypatch):
    monkeypatch.setattr(alerts, "_enqueue", lambda delivery_id, countdown=0: alerts.deliver(delivery_id))
    scheduled = []
    monkeypatch.setattr(alerts, "_schedule_digest", lambda sub_id: scheduled.append(sub_id))
    sub, _ = alerts.create_subscription(
        world.tenant_a, world.alice, {"name": "all", "channel": "email", "target": "ops@acme.example"}
    )
    for i in range(50):
        event = record_event(
            world.cluster_x.id,
            "finding_opened",
            f"Finding {i}",
            severity="warning",
            data={"code": f"code_{i}"},
        )
        alerts.on_event(event.id)
    assert len(mail.outbox) == 10  # the first BURST_LIMIT go out at once
    assert sub.deliveries.filter(state="digest").count() == 40 and set(scheduled) == {sub.id}
    alerts.send_digest(sub.id)
    assert len(mail.outbox) == 11 and "40 alerts" in mail.outbox[-1].subject
    assert sub.deliveries.filter(state="digested").count() == 40


def test_a_cluster_the_team_may_no_longer_see_is_skipped_at_delivery(world, monkeypatch):
    from tenants.services import revoke_cluster

    monkeypatch.setattr(alerts, "_enqueue", lambda delivery_id, countdown=0: None)
    sub, _ = alerts.create_subscription(
        world.tenant_a,
        world.alice,
        {"name": "team", "channel": "email", "target": "ops@acme.example", "team": world.team_a},
    )
    event = record_event(
        world.cluster_x.id,
        "finding_opened",
        "Replica stopped",
        severity="error",
        data={"code": "replication_stopped"},
    )
    (delivery_id,) = alerts.on_event(event.id)
    revoke_cluster(world.team_a, world.cluster_x)
    assert alerts.deliver(delivery_id) == "skipped" and not mail.outbox


def test_job_outcomes_alert_by_default_for_failovers_and_failures_and_as_asked(world, monkeypatch):
    monkeypatch.setattr(alerts, "_enqueue", lambda delivery_id, countdown=0: None)
    default, _ = alerts.create_subscription(
        world.tenant_a, world.alice, {"name": "default", "channel": "email", "target": "ops@acme.example"}
    )
    only, _ = alerts.create_subscription(
        world.tenant_a,
        world.alice,
        {
            "name": "switchover-failures",
            "channel": "email",
            "target": "x@acme.example",
            "jobs": ["switchover_failed"],
        },
    )
    outcomes = [("failover", "succeeded"), ("switchover", "succeeded"), ("switchover", "failed")]
    for kind, state in outcomes:
        event = record_event(
            world.cluster_x.id,
            "job_finished",
            f"{kind} {state}",
            severity="info",
            data={"job_id": 1, "kind": kind, "state": state},
        )
        alerts.on_event(event.id)
    assert [d.body["job"] for d in default.deliveries.order_by("id")] == [
        {"kind": "failover", "outcome": "succeeded"},
        {"kind": "switchover", "outcome": "failed"},
    ]
    assert [d.body["job"] for d in only.deliveries.all()] == [{"kind": "switchover", "outcome": "failed"}]
