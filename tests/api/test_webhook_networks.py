"""An allowed webhook host is still only dialled at an allowed address: every address its name resolves to
must be public (when the operator allows `public`) or inside DBPILOT_ALLOWED_WEBHOOK_NETWORKS, and never
one of dbpilot's own services, so a DNS answer that changes cannot reach into the operator's network."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from clusters.alerts.models import AlertSubscription
from clusters.services import alerts
from controlplane.netpolicy import NotAllowed, pin_webhook_host

pytestmark = pytest.mark.api


def _resolves_to(monkeypatch, address: str) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    def getaddrinfo(host, port, *args, **kwargs):
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_name_resolving_to_a_private_address_is_refused_under_the_public_default(settings, monkeypatch):
    settings.DBPILOT_WEBHOOK_PUBLIC_ALLOWED = True
    settings.DBPILOT_ALLOWED_WEBHOOK_NETWORKS = []
    for private in ("10.1.2.3", "169.254.169.254", "192.168.0.10", "127.0.0.1", "fd00::1"):
        _resolves_to(monkeypatch, private)
        with pytest.raises(NotAllowed, match="DBPILOT_ALLOWED_WEBHOOK_NETWORKS"):
            pin_webhook_host("hooks.example.test", 443)
    _resolves_to(monkeypatch, "192.0.43.10")  # a global address
    assert pin_webhook_host("hooks.example.test", 443) == "192.0.43.10"


def test_a_private_network_the_operator_lists_is_allowed_and_public_can_be_turned_off(settings, monkeypatch):
    settings.DBPILOT_WEBHOOK_PUBLIC_ALLOWED = False
    settings.DBPILOT_ALLOWED_WEBHOOK_NETWORKS = [ipaddress.ip_network("10.20.0.0/16")]
    _resolves_to(monkeypatch, "10.20.1.1")
    assert pin_webhook_host("alertmanager.internal", 9093) == "10.20.1.1"
    _resolves_to(monkeypatch, "192.0.43.10")
    with pytest.raises(NotAllowed):
        pin_webhook_host("alertmanager.internal", 9093)


def test_dbpilots_own_services_are_never_a_webhook_target(settings):
    settings.DBPILOT_WEB_PORTS = [8000]
    with pytest.raises(NotAllowed, match="own services"):
        pin_webhook_host("127.0.0.1", 8000)


def test_a_delivery_to_a_host_that_now_resolves_outside_is_a_permanent_failure(settings, monkeypatch):
    settings.DBPILOT_ALLOWED_WEBHOOK_HOSTS = ["hooks.example.test"]
    settings.DBPILOT_WEBHOOK_PUBLIC_ALLOWED = True
    settings.DBPILOT_ALLOWED_WEBHOOK_NETWORKS = []
    _resolves_to(monkeypatch, "10.0.0.5")
    subscription = AlertSubscription(
        channel=AlertSubscription.Channel.WEBHOOK, target="https://hooks.example.test/x", secret_encrypted=""
    )
    with pytest.raises(alerts.DeliveryError) as raised:
        alerts._post_webhook(subscription, {"kind": "test"})
    assert raised.value.permanent
    assert "10.0.0.5" in str(raised.value)
