"""The providers this deployment enables (`DBPILOT_PROVIDERS`), by name."""

from __future__ import annotations

from django.conf import settings

from clusters.providers.base import Provider, ProviderError

KNOWN_PROVIDERS = ("local", "hosts", "kubernetes")


def enabled_providers() -> list[str]:
    return [name for name in settings.DBPILOT_PROVIDERS if name]


def get_provider(name: str) -> Provider:
    """The provider NAME, configured from settings; ProviderError when it is unknown or not enabled."""
    if name not in enabled_providers():
        enabled = ", ".join(enabled_providers()) or "none"
        raise ProviderError(f"provider {name!r} is not enabled on this platform (enabled: {enabled})")
    if name == "local":
        from clusters.providers.local_provider import LocalProvider

        return LocalProvider(settings.DBPILOT_LOCAL_SERVERS_ROOT, settings.DBPILOT_LOCAL_PORTS)
    if name == "hosts":
        from clusters.providers.hosts_provider import HostsProvider

        return HostsProvider()
    if name == "kubernetes":
        from clusters.providers.kubernetes_apply import api_client
        from clusters.providers.kubernetes_provider import KubernetesProvider
        from controlplane.netpolicy import pin_host

        return KubernetesProvider(
            api_client(settings.DBPILOT_KUBERNETES_CONFIG),
            settings.DBPILOT_KUBERNETES_NAMESPACE,
            settings.DBPILOT_KUBERNETES_STORAGE_GB,
            settings.DBPILOT_KUBERNETES_READY_SECONDS,
            pin=pin_host,
        )
    raise ProviderError(f"provider {name!r} is not available in this version")
