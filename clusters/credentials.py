"""How dbpilot reaches a cluster's servers: decrypted credentials and connection options."""

from __future__ import annotations

import json

from django.conf import settings as django_settings

from clusters.adapters.mysql import ConnectOptions, Credentials
from clusters.domain.settings import ClusterSettings, merge_settings
from clusters.models import Cluster
from controlplane.crypto import decrypt_json

_cache: dict[tuple[int, str], Credentials] = {}


_settings_cache: dict[tuple[int, str], ClusterSettings] = {}


def cluster_settings(cluster: Cluster) -> ClusterSettings:
    """The cluster's settings over the defaults (cached by content: every tick asks for them)."""
    key = (cluster.id, json.dumps(cluster.settings, sort_keys=True))
    merged = _settings_cache.get(key)
    if merged is None:
        if len(_settings_cache) > 10000:
            _settings_cache.clear()
        merged = _settings_cache[key] = merge_settings(cluster.settings, {})
    return merged


def admin_credentials(cluster: Cluster) -> Credentials:
    key = (cluster.id, cluster.credentials_encrypted[-24:])
    creds = _cache.get(key)
    if creds is None:
        data = decrypt_json(cluster.credentials_encrypted) or {}
        creds = Credentials(data.get("user", ""), data.get("password", ""))
        _cache[key] = creds
    return creds


def replication_credentials(cluster: Cluster) -> Credentials:
    data = decrypt_json(cluster.replication_credentials_encrypted) or {}
    return Credentials(data.get("user", ""), data.get("password", ""))


def connect_options(settings: ClusterSettings, *, read_timeout: float | None = None) -> ConnectOptions:
    timeout = django_settings.DBPILOT_PROBE_TIMEOUT_SECONDS
    return ConnectOptions(
        connect_timeout=timeout,
        read_timeout=read_timeout if read_timeout is not None else timeout,
        tls=settings.tls,
        tls_ca=settings.tls_ca,
    )
