"""Connections a failover opens must be cheap: the TLS context is built once per TLS setting, not per
connection (building one loads the system CA bundle: about 50 ms of CPU per fresh session)."""

from __future__ import annotations

import ssl

import pytest

from clusters.adapters.mysql import ConnectOptions, _ssl_options

pytestmark = pytest.mark.unit


def test_the_tls_context_is_shared_between_connections_with_the_same_setting():
    first = _ssl_options(ConnectOptions(tls="preferred"))
    assert first is _ssl_options(ConnectOptions(tls="preferred", connect_timeout=0.3))
    assert first.verify_mode == ssl.CERT_NONE and not first.check_hostname


def test_verify_keeps_its_own_checking_context_and_disabled_has_none():
    verify = _ssl_options(ConnectOptions(tls="verify"))
    assert verify.verify_mode == ssl.CERT_REQUIRED and verify.check_hostname
    assert verify is not _ssl_options(ConnectOptions(tls="preferred"))
    assert _ssl_options(ConnectOptions(tls="disabled")) is None
