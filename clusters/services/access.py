"""How dbpilot reaches a cluster's servers: decrypted credentials and connection options."""
from __future__ import annotations

from django.conf import settings as django_settings

from clusters.adapters.mysql import ConnectOptions, Credentials
from clusters.domain.settings import ClusterSettings, merge_settings
from clusters.models import Cluster
from controlplane.crypto import decrypt_json

_cache: dict[tuple[int, str], Credentials] = {}


def cluster_settings(cluster: Cluster) -> ClusterSettings:
    return merge_settings(cluster.settings, {})


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
