"""Alert subscriptions: create them, turn events into deliveries, deliver (webhook or email), digest bursts.

An Event row saved for a finding opened/resolved or a job finished is handed, after commit, to
`on_event` (a post_save receiver: nothing in monitoring or the jobs knows about alerts). Each matching
subscription gets one AlertDelivery (unique per subscription and event: never a repeat); it is sent by
the `deliver_alert` task on the default queue, which retries with backoff (domain/alerts.py). When a
subscription already had BURST_LIMIT alerts in the last minute, further ones wait for one digest,
sent by `send_digest` a minute later. At each delivery the recipient's right to see the cluster is
checked again: a cluster that left the subscription's team (or tenant) is skipped.

Webhooks: JSON POST signed with `X-Dbpilot-Signature`, only to hosts in DBPILOT_ALLOWED_WEBHOOK_HOSTS,
resolved once, every address checked against DBPILOT_ALLOWED_WEBHOOK_NETWORKS, pinned, no redirects. Email: Django's mail backend (EMAIL_* settings).
"""

from __future__ import annotations

import json
import logging
import secrets
import ssl
import time
from datetime import timedelta
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from clusters import hotstate, senders
from clusters.alerts.models import AlertDelivery, AlertSubscription
from clusters.domain import alerts as domain
from clusters.domain.addresses import AddressError, validate_host
from clusters.models import Cluster, Event, Finding
from controlplane.crypto import decrypt_json, encrypt_json
from controlplane.netpolicy import NotAllowed, pin_webhook_host

log = logging.getLogger(__name__)
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0


class AlertInvalid(ValueError):
    """A subscription that cannot be saved; the message says which field and what to do."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


# --- subscriptions ------------------------------------------------------------------------------------


def validate_target(channel: str, target: str) -> str:
    if channel == AlertSubscription.Channel.EMAIL:
        from django.core.validators import validate_email

        try:
            validate_email(target)
        except Exception:  # noqa: BLE001 - Django's ValidationError
            raise AlertInvalid("target", "must be an email address") from None
        return target
    parts = urlsplit(target or "")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise AlertInvalid("target", "must be an http:// or https:// URL without credentials")
    try:
        host = validate_host(parts.hostname)
        _ = parts.port
    except (AddressError, ValueError) as exc:
        raise AlertInvalid("target", f"has an invalid host or port: {exc}") from None
    if host.lower() not in {h.lower() for h in settings.DBPILOT_ALLOWED_WEBHOOK_HOSTS}:
        raise AlertInvalid(
            "target",
            f"host {host} is not in DBPILOT_ALLOWED_WEBHOOK_HOSTS; ask the platform operator to allow it",
        )
    return target


def check_rule(tenant, team, clusters: list[int], severities: list[str]) -> None:
    if team is not None and team.tenant_id != tenant.id:
        raise AlertInvalid("team", "no such team in the tenant")
    known = set(Cluster.objects.filter(tenant=tenant, id__in=clusters).values_list("id", flat=True))
    unknown = [c for c in clusters if c not in known]
    if unknown:
        raise AlertInvalid("clusters", f"no cluster {unknown[0]} in the tenant")
    bad = [s for s in severities if s not in domain.SEVERITIES]
    if bad:
        raise AlertInvalid("severities", f"unknown severity {bad[0]!r}: use {', '.join(domain.SEVERITIES)}")


def create_subscription(tenant, user, data: dict) -> tuple[AlertSubscription, str | None]:
    """Returns the subscription and, for a webhook, its signing secret (shown once)."""
    channel = data["channel"]
    validate_target(channel, data["target"])
    check_rule(tenant, data.get("team"), data.get("clusters") or [], data.get("severities") or [])
    secret = secrets.token_urlsafe(32) if channel == AlertSubscription.Channel.WEBHOOK else None
    try:
        with transaction.atomic():
            sub = AlertSubscription.objects.create(
                tenant=tenant,
                team=data.get("team"),
                name=data["name"],
                channel=channel,
                target=data["target"],
                payload_format=data.get("payload_format") or "json",
                clusters=data.get("clusters") or [],
                severities=data.get("severities") or [],
                codes=data.get("codes") or [],
                jobs=data.get("jobs") or [],
                secret_encrypted=encrypt_json({"secret": secret}) if secret else "",
                created_by=user if getattr(user, "pk", None) else None,
            )
    except IntegrityError:
        raise AlertInvalid("name", "a subscription of the tenant already has this name") from None
    return sub, secret


def update_subscription(sub: AlertSubscription, data: dict) -> AlertSubscription:
    if "target" in data or "channel" in data:
        if data.get("channel", sub.channel) != sub.channel:
            raise AlertInvalid("channel", "cannot change; create another subscription")
        validate_target(sub.channel, data.get("target", sub.target))
    check_rule(
        sub.tenant,
        data.get("team", sub.team),
        data.get("clusters", sub.clusters) or [],
        data.get("severities", sub.severities) or [],
    )
    for field in (
        "name",
        "target",
        "team",
        "payload_format",
        "clusters",
        "severities",
        "codes",
        "jobs",
        "enabled",
    ):
        if field in data:
            setattr(sub, field, data[field] if data[field] is not None else [])
    try:
        with transaction.atomic():
            sub.save()
    except IntegrityError:
        raise AlertInvalid("name", "a subscription of the tenant already has this name") from None
    return sub


# --- events → deliveries ------------------------------------------------------------------------------


def _rule(sub: AlertSubscription) -> domain.Rule:
    return domain.Rule(
        tuple(sub.clusters or ()), tuple(sub.severities or ()), tuple(sub.codes or ()), tuple(sub.jobs or ())
    )


def may_see(sub: AlertSubscription, cluster_id: int) -> bool:
    """The recipient's right to see the cluster, asked again at each delivery."""
    from tenants.access import VIEW, clusters_granted_to

    if sub.team_id is not None:
        return clusters_granted_to(sub.team, VIEW).filter(pk=cluster_id).exists()
    return Cluster.objects.filter(pk=cluster_id, tenant_id=sub.tenant_id).exists()


def _opened_severity(event: Event) -> str | None:
    data = event.data or {}
    row = (
        Finding.objects.filter(
            cluster_id=event.cluster_id, code=data.get("code"), server_id=data.get("server_id")
        )
        .order_by("-opened_at")
        .values_list("severity", flat=True)
        .first()
    )
    return row


def on_event(event_id: int) -> list[int]:
    """Make the deliveries an event calls for and send (or queue for a digest) each; returns their ids."""
    event = Event.objects.select_related("cluster__tenant").filter(pk=event_id).first()
    if event is None:
        return []
    cluster = event.cluster
    alert = domain.alert_from_event(
        event.kind,
        cluster.id,
        cluster.label,
        event.message,
        event.severity,
        event.data,
        event.created_at.timestamp(),
        event.id,
    )
    if alert is None:
        return []
    opened = _opened_severity(event) if alert.kind == domain.FINDING_RESOLVED else None
    body = domain.alert_body(alert)
    created = []
    for sub in AlertSubscription.objects.filter(tenant_id=cluster.tenant_id, enabled=True):
        if not domain.matches(_rule(sub), alert, opened) or not may_see(sub, cluster.id):
            continue
        window = timezone.now() - timedelta(seconds=domain.BURST_WINDOW_SECONDS)
        recent = sub.deliveries.filter(created_at__gte=window).exclude(kind="test").count()
        state = AlertDelivery.State.DIGEST if domain.burst(recent) else AlertDelivery.State.PENDING
        try:
            with transaction.atomic():
                delivery = AlertDelivery.objects.create(
                    subscription=sub, event=event, cluster=cluster, kind=alert.kind, state=state, body=body
                )
        except IntegrityError:
            continue  # already made for this event: never twice
        created.append(delivery.id)
        if state == AlertDelivery.State.DIGEST:
            _schedule_digest(sub.id)
        else:
            _enqueue(delivery.id)
    return created


def _enqueue(delivery_id: int, countdown: float = 0) -> None:
    senders.send(senders.DELIVER_ALERT, delivery_id, countdown)


def _schedule_digest(subscription_id: int) -> None:
    """One digest per subscription and window (a Redis flag), sent at the end of the window."""
    if hotstate.client().set(
        f"dbpilot:alerts:digest:{subscription_id}", 1, nx=True, ex=domain.BURST_WINDOW_SECONDS
    ):
        senders.send(senders.SEND_ALERT_DIGEST, subscription_id, domain.BURST_WINDOW_SECONDS)


def send_digest(subscription_id: int) -> int | None:
    """Gather the subscription's waiting alerts into one digest delivery and send it; returns its id."""
    sub = AlertSubscription.objects.filter(pk=subscription_id).first()
    if sub is None:
        return None
    with transaction.atomic():
        waiting = list(
            sub.deliveries.select_for_update().filter(state=AlertDelivery.State.DIGEST).order_by("id")
        )
        visible = [d for d in waiting if d.cluster_id is not None and may_see(sub, d.cluster_id)]
        if not visible:
            sub.deliveries.filter(id__in=[d.id for d in waiting]).update(state=AlertDelivery.State.SKIPPED)
            return None
        digest = AlertDelivery.objects.create(
            subscription=sub, kind="digest", body=domain.digest_body([d.body for d in visible])
        )
        sub.deliveries.filter(id__in=[d.id for d in visible]).update(
            state=AlertDelivery.State.DIGESTED, digest=digest
        )
        skipped = [d.id for d in waiting if d not in visible]
        sub.deliveries.filter(id__in=skipped).update(state=AlertDelivery.State.SKIPPED)
    deliver(digest.id)
    return digest.id


def send_test(sub: AlertSubscription) -> AlertDelivery:
    body = {
        "type": "test",
        "title": f"Test alert from dbpilot for subscription {sub.name!r}",
        "message": "If you read this, alerts reach you.",
        "at": time.time(),
    }
    delivery = AlertDelivery.objects.create(subscription=sub, kind="test", body=body)
    deliver(delivery.id, retry=False)
    delivery.refresh_from_db()
    return delivery


# --- delivery ------------------------------------------------------------------------------------------


class DeliveryError(Exception):
    def __init__(self, message: str, status: int | None = None, permanent: bool = False):
        super().__init__(message)
        self.status = status
        self.permanent = permanent


def _post_webhook(sub: AlertSubscription, body: dict) -> int:
    parts = urlsplit(sub.target)
    host = parts.hostname or ""
    if host.lower() not in {h.lower() for h in settings.DBPILOT_ALLOWED_WEBHOOK_HOSTS}:
        raise DeliveryError(f"host {host} is no longer in DBPILOT_ALLOWED_WEBHOOK_HOSTS", permanent=True)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        ip = pin_webhook_host(host, port)  # resolved once, checked, pinned
    except NotAllowed as exc:
        raise DeliveryError(str(exc), permanent=True) from None
    except AddressError as exc:
        raise DeliveryError(str(exc)) from None
    raw = json.dumps(domain.payload(body, sub.payload_format), separators=(",", ":")).encode()
    secret = decrypt_json(sub.secret_encrypted)["secret"] if sub.secret_encrypted else ""
    default_port = 443 if parts.scheme == "https" else 80
    headers = {
        "Host": host if port == default_port else f"{host}:{port}",
        "Content-Type": "application/json",
        "User-Agent": "dbpilot-alerts",
        "X-Dbpilot-Signature": domain.signature(secret, int(time.time()), raw),
    }
    timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)
    if parts.scheme == "https":
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            ip,
            port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            ssl_context=ssl.create_default_context(),
            server_hostname=host,
            assert_hostname=host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(ip, port, timeout=timeout, retries=False, maxsize=1)
    try:
        response = pool.urlopen(
            "POST",
            parts.path or "/",
            body=raw,
            headers=headers,
            redirect=False,
            retries=False,
            assert_same_host=False,
        )
    except urllib3.exceptions.HTTPError as exc:
        raise DeliveryError(
            f"{host}:{port} is not reachable: {getattr(exc, 'reason', None) or exc}"
        ) from None
    finally:
        pool.close()
    if 300 <= response.status < 400:
        raise DeliveryError(
            f"answered with a redirect ({response.status}); dbpilot follows none: give the final URL",
            response.status,
            permanent=True,
        )
    if response.status >= 300:
        raise DeliveryError(
            f"answered {response.status}",
            response.status,
            permanent=400 <= response.status < 500 and response.status not in (408, 429),
        )
    return response.status


def _send_email(sub: AlertSubscription, body: dict) -> None:
    subject, text = domain.email_subject_and_text(body)
    try:
        send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, [sub.target], fail_silently=False)
    except Exception as exc:  # noqa: BLE001 - smtplib and socket errors: retried
        raise DeliveryError(f"mail not sent: {exc}") from None


def deliver(delivery_id: int, retry: bool = True) -> str:
    """One attempt at a delivery; schedules the next attempt (with backoff) when it fails. Returns the state."""
    delivery = AlertDelivery.objects.select_related("subscription__team").filter(pk=delivery_id).first()
    if delivery is None or delivery.state in (
        AlertDelivery.State.SENT,
        AlertDelivery.State.DIGESTED,
        AlertDelivery.State.SKIPPED,
        AlertDelivery.State.FAILED,
    ):
        return delivery.state if delivery else "gone"
    sub = delivery.subscription
    if delivery.cluster_id is not None and not may_see(sub, delivery.cluster_id):
        delivery.state = AlertDelivery.State.SKIPPED
        delivery.last_error = "the subscription may no longer see this cluster"
        delivery.save(update_fields=["state", "last_error"])
        return delivery.state
    delivery.attempts += 1
    try:
        if sub.channel == AlertSubscription.Channel.WEBHOOK:
            delivery.last_status = _post_webhook(sub, delivery.body)
        else:
            _send_email(sub, delivery.body)
    except DeliveryError as exc:
        delivery.last_status = exc.status
        delivery.last_error = str(exc)[:1000]
        if retry and not exc.permanent and delivery.attempts < domain.MAX_ATTEMPTS:
            delay = domain.backoff_seconds(delivery.attempts)
            delivery.state = AlertDelivery.State.RETRYING
            delivery.next_attempt_at = timezone.now() + timedelta(seconds=delay)
            delivery.save()
            transaction.on_commit(lambda: _enqueue(delivery.id, countdown=delay))
        else:
            delivery.state = AlertDelivery.State.FAILED
            delivery.next_attempt_at = None
            delivery.save()
        return delivery.state
    delivery.state = AlertDelivery.State.SENT
    delivery.sent_at = timezone.now()
    delivery.last_error = ""
    delivery.next_attempt_at = None
    delivery.save()
    return delivery.state


def delivery_payload(d: AlertDelivery) -> dict:
    return {
        "id": d.id,
        "kind": d.kind,
        "state": d.state,
        "cluster": d.cluster_id,
        "event": d.event_id,
        "attempts": d.attempts,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "digest": d.digest_id,
        "title": (d.body or {}).get("title"),
        "created_at": d.created_at,
        "sent_at": d.sent_at,
        "next_attempt_at": d.next_attempt_at,
    }
