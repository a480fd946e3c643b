"""Applying the `kubernetes` provider's manifests (clusters.providers.kubernetes_manifests) with the official
Kubernetes Python client: each object is created, or patched when it exists already (409 AlreadyExists),
so applying twice is harmless, like every provider step; removing deletes them (404 is fine).

Configured by `DBPILOT_KUBERNETES_CONFIG` (a kubeconfig file; empty: the in-cluster service account).
The client dials only the API server its configuration names: a configuration that routes through a
proxy, or names one of dbpilot's own services (controlplane.netpolicy), is refused. Tested only against a
recorded double of the API (tests/unit/test_kubernetes_apply.py: a local HTTP server answering as the
API's documentation says); **not verified against a live Kubernetes cluster**. The provider that runs
provisioning jobs with it is clusters.providers.kubernetes_provider.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from clusters.providers.base import ProviderError


@dataclass(frozen=True)
class KindApi:
    """The typed client calls for one kind of object."""

    api: Callable[[k8s.ApiClient], object]
    suffix: str  # create_namespaced_<suffix>, patch_namespaced_<suffix>, delete_namespaced_<suffix>


KINDS: dict[str, KindApi] = {
    "ConfigMap": KindApi(k8s.CoreV1Api, "config_map"),
    "Secret": KindApi(k8s.CoreV1Api, "secret"),
    "Service": KindApi(k8s.CoreV1Api, "service"),
    "StatefulSet": KindApi(k8s.AppsV1Api, "stateful_set"),
    "PodDisruptionBudget": KindApi(k8s.PolicyV1Api, "pod_disruption_budget"),
}


def api_client(config_file: str | None) -> k8s.ApiClient:
    """A client for the configured cluster: a kubeconfig file, or the pod's service account when empty."""
    from kubernetes import config

    try:
        if config_file:
            client = config.new_client_from_config(config_file=config_file)
        else:
            config.load_incluster_config()
            client = k8s.ApiClient()
    except Exception as exc:  # noqa: BLE001 - the library raises several kinds; the message is what matters
        raise ProviderError(
            f"cannot configure the Kubernetes client (DBPILOT_KUBERNETES_CONFIG): {exc}"
        ) from None
    check_api_server(client.configuration)
    return client


def check_api_server(configuration: k8s.Configuration) -> None:
    """The client must dial only the configured API server: no proxy in between (it would be dialled
    instead), and never one of dbpilot's own services (Redis, the control-plane database, its web ports)."""
    from controlplane.netpolicy import is_own_service, resolve_all

    if configuration.proxy:
        raise ProviderError(
            f"the Kubernetes configuration routes through a proxy ({configuration.proxy}): dbpilot dials the "
            "API server directly (DBPILOT_KUBERNETES_CONFIG)"
        )
    parts = urlsplit(configuration.host or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProviderError(f"the Kubernetes API server {configuration.host!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve_all(parts.hostname, port)
    except ValueError as exc:
        raise ProviderError(f"the Kubernetes API server: {exc}", permanent=False) from None
    for ip in addresses:
        if is_own_service(ip, port):
            raise ProviderError(
                f"the Kubernetes API server {configuration.host} ({ip}:{port}) is one of dbpilot's own services"
            )


def _calls(client: k8s.ApiClient, manifest: dict) -> tuple[KindApi, object]:
    kind = KINDS.get(manifest.get("kind", ""))
    if kind is None:
        raise ProviderError(f"dbpilot does not apply objects of kind {manifest.get('kind')!r}")
    return kind, kind.api(client)


def _reason(exc: ApiException) -> str:
    return f"{exc.status} {exc.reason}: {(exc.body or '').strip()[:300]}"


def apply(client: k8s.ApiClient, manifests: Sequence[dict]) -> list[str]:
    """Create each object, or patch it when it exists; "created Kind/name" or "updated Kind/name" each."""
    done = []
    for manifest in manifests:
        kind, api = _calls(client, manifest)
        name, namespace = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
        try:
            getattr(api, f"create_namespaced_{kind.suffix}")(namespace, manifest)
            done.append(f"created {manifest['kind']}/{name}")
        except ApiException as exc:
            if exc.status != 409:
                raise ProviderError(
                    f"creating {manifest['kind']}/{name} in {namespace} failed: {_reason(exc)}",
                    permanent=exc.status in (400, 403, 404, 422),
                ) from None
            try:
                getattr(api, f"patch_namespaced_{kind.suffix}")(name, namespace, manifest)
            except ApiException as patch_exc:
                raise ProviderError(
                    f"updating {manifest['kind']}/{name} in {namespace} failed: {_reason(patch_exc)}",
                    permanent=patch_exc.status in (400, 403, 422),
                ) from None
            done.append(f"updated {manifest['kind']}/{name}")
    return done


def remove(client: k8s.ApiClient, manifests: Sequence[dict]) -> list[str]:
    """Delete each object (in reverse order: the StatefulSet before its Services); a missing one is fine.
    The StatefulSet's volume claims stay (Kubernetes keeps them unless its retention policy says so)."""
    done = []
    for manifest in reversed(manifests):
        kind, api = _calls(client, manifest)
        name, namespace = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
        try:
            getattr(api, f"delete_namespaced_{kind.suffix}")(name, namespace)
            done.append(f"deleted {manifest['kind']}/{name}")
        except ApiException as exc:
            if exc.status != 404:
                raise ProviderError(
                    f"deleting {manifest['kind']}/{name} in {namespace} failed: {_reason(exc)}",
                    permanent=False,
                ) from None
    return done
