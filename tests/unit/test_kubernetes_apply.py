"""Applying the kubernetes provider's manifests with the official client, against a recorded double of the
Kubernetes API (tests/unit/kubernetes_double.py): created once, patched when they exist, deleted in
reverse order, a missing object is fine, a refused token or an unknown kind is a ProviderError with its
reason. Not verified against a live cluster."""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from clusters.providers.base import ProviderError
from clusters.providers.kubernetes_apply import apply, remove
from clusters.providers.kubernetes_manifests import KubernetesSpec, render
from tests.unit.kubernetes_double import KubernetesDouble

pytestmark = pytest.mark.unit
PASSWORDS = {"root": "r00t-secret", "dbpilot": "admin-secret", "repl": "repl-secret"}


def manifests(replicas: int = 2) -> list[dict]:
    spec = KubernetesSpec("orders", "tenant-acme", replicas, 512, True, {"max_connections": "500"})
    return render(spec, PASSWORDS)


def client_for(double: KubernetesDouble, token: str = "test-token") -> k8s.ApiClient:
    configuration = k8s.Configuration(host=double.url)
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return k8s.ApiClient(configuration)


@pytest.fixture
def double():
    with KubernetesDouble() as api:
        yield api


def test_manifests_are_created_then_patched_when_applied_again(double):
    client = client_for(double)
    first = apply(client, manifests(2))
    assert first == [
        "created ConfigMap/orders-config",
        "created Secret/orders-credentials",
        "created Service/orders-servers",
        "created Service/orders-primary",
        "created Service/orders-replica",
        "created StatefulSet/orders",
        "created PodDisruptionBudget/orders",
    ]
    assert [(m, p) for m, p, _ in double.requests] == [
        ("POST", "/api/v1/namespaces/tenant-acme/configmaps"),
        ("POST", "/api/v1/namespaces/tenant-acme/secrets"),
        ("POST", "/api/v1/namespaces/tenant-acme/services"),
        ("POST", "/api/v1/namespaces/tenant-acme/services"),
        ("POST", "/api/v1/namespaces/tenant-acme/services"),
        ("POST", "/apis/apps/v1/namespaces/tenant-acme/statefulsets"),
        ("POST", "/apis/policy/v1/namespaces/tenant-acme/poddisruptionbudgets"),
    ]
    stored = double.objects[("statefulsets", "tenant-acme", "orders")]
    assert stored["spec"]["replicas"] == 3
    assert double.objects[("configmaps", "tenant-acme", "orders-config")]["data"] == manifests(2)[0]["data"]

    double.requests.clear()
    second = apply(client, manifests(3))  # one more replica: every object exists, so each is patched
    assert second == [line.replace("created", "updated") for line in first]
    assert [m for m, _, _ in double.requests] == ["POST", "PATCH"] * 7
    assert all("json" in content for m, _, content in double.requests if m == "PATCH")
    assert double.objects[("statefulsets", "tenant-acme", "orders")]["spec"]["replicas"] == 4


def test_removing_deletes_in_reverse_order_and_a_missing_object_is_fine(double):
    client = client_for(double)
    apply(client, manifests())
    removed = remove(client, manifests())
    assert (
        removed[0] == "deleted PodDisruptionBudget/orders"
        and removed[-1] == "deleted ConfigMap/orders-config"
    )
    assert double.objects == {}
    assert remove(client, manifests()) == []  # every DELETE answered 404 NotFound: nothing left to do


def test_a_refused_token_and_an_unknown_kind_say_why(double):
    with pytest.raises(ProviderError, match="creating ConfigMap/orders-config in tenant-acme failed: 401"):
        apply(client_for(double, token="wrong"), manifests())
    assert double.objects == {}
    with pytest.raises(ProviderError, match="does not apply objects of kind 'Deployment'"):
        apply(client_for(double), [{"kind": "Deployment", "metadata": {"name": "x", "namespace": "y"}}])
