"""The kubernetes provider (clusters.providers.kubernetes_provider) against the recorded double of the API
(tests/unit/kubernetes_double.py), with the double playing the StatefulSet controller where pods must
exist: create applies the objects and scales to the new ordinal, start and stop scale (from the highest
ordinal down), restart patches the ConfigMap and deletes the pod, destroy scales down and deletes the
claim (the last one every object), the pods' role label follows the primary, clone is refused. Not
verified against a live cluster."""

from __future__ import annotations

import base64
import json

import pytest
from kubernetes import client as k8s

from clusters.providers.base import ProviderError, ServerSpec
from clusters.providers.kubernetes_apply import check_api_server
from clusters.providers.kubernetes_provider import SERVERS_ANNOTATION, KubernetesProvider
from tests.unit.kubernetes_double import KubernetesDouble

pytestmark = pytest.mark.unit
NS = "dbpilot"
KEY = "orders-a1b2c3"
STS = ("statefulsets", NS, KEY)


def client_for(double: KubernetesDouble) -> k8s.ApiClient:
    configuration = k8s.Configuration(host=double.url)
    configuration.api_key = {"authorization": double.token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return k8s.ApiClient(configuration)


def provider_for(double: KubernetesDouble, ready_seconds: float = 5.0) -> KubernetesProvider:
    provider = KubernetesProvider(client_for(double), NS, storage_gb=5, ready_seconds=ready_seconds)
    provider.bind_cluster(KEY, "r00t-secret")
    return provider


def spec(n: int, **extra) -> ServerSpec:
    return ServerSpec(f"{KEY}-s{n}", n, memory_mb=512, group=KEY, **extra)


@pytest.fixture
def cluster():
    with KubernetesDouble(controller=True) as double:
        yield double, provider_for(double)


def requests_of(double: KubernetesDouble, method: str) -> list[str]:
    return [path for m, path, _ in double.requests if m == method]


def test_create_applies_the_objects_and_scales_to_include_each_new_ordinal(cluster):
    double, provider = cluster
    placements = [provider.create(spec(n)) for n in (1, 2, 3)]
    assert [p.address for p in placements] == [f"{KEY}-{o}.{KEY}-servers.{NS}.svc:3306" for o in range(3)]
    scales = [p for p in requests_of(double, "PATCH") if p.endswith("/scale")]
    assert scales == [f"/apis/apps/v1/namespaces/{NS}/statefulsets/{KEY}/scale"] * 3
    statefulset = double.objects[STS]
    assert statefulset["spec"]["replicas"] == 3
    assert sorted(json.loads(statefulset["metadata"]["annotations"][SERVERS_ANNOTATION])) == ["0", "1", "2"]
    secret = double.objects[("secrets", NS, f"{KEY}-credentials")]
    assert base64.b64decode(secret["data"]["root"]).decode() == "r00t-secret"
    assert sorted(k[2] for k in double.objects if k[0] == "pods") == [f"{KEY}-0", f"{KEY}-1", f"{KEY}-2"]
    assert provider.instances() == [f"{KEY}-s1", f"{KEY}-s2", f"{KEY}-s3"]
    assert all(i.created_at for i in provider.list_instances())
    assert provider.placement(f"{KEY}-s4") is None

    provider.create(spec(2))  # a resumed job: applied again, the scale does not move
    assert double.objects[STS]["spec"]["replicas"] == 3


def test_a_cluster_needs_its_root_password_bound_and_names_it_never_places_are_refused(cluster):
    double, _ = cluster
    unbound = KubernetesProvider(client_for(double), NS)
    with pytest.raises(ProviderError, match="no root password bound"):
        unbound.create(spec(1))
    with pytest.raises(ProviderError, match="only `<cluster key>-s<n>` servers"):
        unbound.placement("verify-b7-j42")
    assert double.objects == {}


def test_start_waits_for_the_pod_and_says_what_it_waits_for():
    with KubernetesDouble() as double:  # no controller: no pod ever appears
        provider = provider_for(double, ready_seconds=0.5)
        provider.create(spec(1))
        with pytest.raises(ProviderError) as refused:
            provider.start(f"{KEY}-s1", None, timeout=0.1)
        assert f"pod {KEY}-0 in namespace {NS} is not ready after 0.5 s" in str(refused.value)
        assert "does not exist yet" in str(refused.value) and not refused.value.permanent
        assert not provider.running(f"{KEY}-s1")


def test_start_and_stop_scale_from_the_highest_ordinal_down(cluster):
    double, provider = cluster
    for n in (1, 2, 3):
        provider.create(spec(n))
        provider.start(f"{KEY}-s{n}", "r00t-secret")
    assert all(provider.running(f"{KEY}-s{n}") for n in (1, 2, 3))

    with pytest.raises(ProviderError, match=f"cannot stop {KEY}-s2 .* while {KEY}-2 run"):
        provider.stop(f"{KEY}-s2")
    assert double.objects[STS]["spec"]["replicas"] == 3  # nothing moved

    provider.stop(f"{KEY}-s3")
    provider.stop(f"{KEY}-s2")
    assert double.objects[STS]["spec"]["replicas"] == 1
    assert not provider.running(f"{KEY}-s3") and provider.running(f"{KEY}-s1")
    assert ("persistentvolumeclaims", NS, f"data-{KEY}-2") in double.objects  # stopping keeps the data

    provider.start(f"{KEY}-s3", "r00t-secret")  # its ordinal brings the one below back too
    assert double.objects[STS]["spec"]["replicas"] == 3 and provider.running(f"{KEY}-s3")


def test_restart_with_a_new_configuration_patches_the_configmap_and_replaces_the_pod(cluster):
    double, provider = cluster
    provider.create(spec(1))
    provider.start(f"{KEY}-s1", "r00t-secret")
    assert provider.reconfigure(spec(1)) is False  # the same settings: nothing to patch
    old_uid = double.objects[("pods", NS, f"{KEY}-0")]["metadata"]["uid"]

    provider.restart(spec(1, parameters={"max_connections": "800"}), "r00t-secret")

    config = double.objects[("configmaps", NS, f"{KEY}-config")]["data"]["dbpilot.cnf"]
    assert "max_connections=800" in config
    assert f"/api/v1/namespaces/{NS}/pods/{KEY}-0" in requests_of(double, "DELETE")
    pod = double.objects[("pods", NS, f"{KEY}-0")]
    assert pod["metadata"]["uid"] != old_uid and provider.running(f"{KEY}-s1")


def test_pod_role_labels_follow_the_primary_for_the_writer_service(cluster):
    double, provider = cluster
    instances = [f"{KEY}-s{n}" for n in (1, 2, 3)]
    for n in (1, 2, 3):
        provider.create(spec(n))
    assert provider.roles_changed(instances[0], instances) == [
        f"{KEY}-0 primary",
        f"{KEY}-1 replica",
        f"{KEY}-2 replica",
    ]
    assert provider.roles_changed(instances[0], instances) == []  # already right: no patch

    def selected(service: str) -> list[str]:
        selector = double.objects[("services", NS, f"{KEY}-{service}")]["spec"]["selector"]
        return sorted(
            name
            for (kind, _, name), pod in double.objects.items()
            if kind == "pods" and selector.items() <= pod["metadata"]["labels"].items()
        )

    assert selected("primary") == [f"{KEY}-0"] and selected("replica") == [f"{KEY}-1", f"{KEY}-2"]
    assert provider.roles_changed(None, instances) == [f"{KEY}-0 replica"]  # a switchover's freeze
    assert selected("primary") == []
    assert provider.roles_changed(instances[1], instances) == [f"{KEY}-1 primary"]  # the new primary
    assert selected("primary") == [f"{KEY}-1"] and selected("replica") == [f"{KEY}-0", f"{KEY}-2"]


def test_destroy_scales_down_deletes_the_claim_and_the_last_one_every_object(cluster):
    double, provider = cluster
    for n in (1, 2):
        provider.create(spec(n))
    with pytest.raises(ProviderError, match=f"cannot remove {KEY}-s1"):
        provider.destroy(f"{KEY}-s1")

    assert provider.destroy(f"{KEY}-s2") is True
    assert double.objects[STS]["spec"]["replicas"] == 1
    assert ("persistentvolumeclaims", NS, f"data-{KEY}-1") not in double.objects
    assert provider.instances() == [f"{KEY}-s1"]

    assert provider.destroy(f"{KEY}-s1") is True
    assert double.objects == {}  # StatefulSet, Services, ConfigMap, Secret, PDB, pods and claims gone
    assert provider.destroy(f"{KEY}-s1") is False  # nothing left: every DELETE answered 404


def test_clone_is_refused_with_the_reason(cluster):
    _, provider = cluster
    provider.create(spec(1))
    with pytest.raises(ProviderError, match="cannot clone a server: the new pod's init container"):
        provider.clone(f"{KEY}-s1", spec(2), "r00t-secret")


def test_the_double_answers_scale_and_lists_as_the_api_reference_documents(cluster):
    double, provider = cluster
    provider.create(spec(1))
    apps = k8s.AppsV1Api(client_for(double))
    with pytest.raises(k8s.ApiException) as invalid:
        apps.patch_namespaced_stateful_set_scale(KEY, NS, {"spec": {"replicas": -1}})
    assert invalid.value.status == 422 and json.loads(invalid.value.body)["reason"] == "Invalid"
    with pytest.raises(k8s.ApiException) as missing:
        apps.patch_namespaced_stateful_set_scale("nothing", NS, {"spec": {"replicas": 1}})
    assert missing.value.status == 404 and json.loads(missing.value.body)["reason"] == "NotFound"
    scale = apps.read_namespaced_stateful_set_scale(KEY, NS)
    assert scale.spec.replicas == 1 and "app.kubernetes.io/instance=" + KEY in scale.status.selector
    listed = apps.list_namespaced_stateful_set(NS, label_selector="app.kubernetes.io/managed-by=dbpilot")
    assert [s.metadata.name for s in listed.items] == [KEY]
    assert (
        apps.list_namespaced_stateful_set(NS, label_selector="app.kubernetes.io/managed-by=other").items == []
    )


def test_the_client_dials_only_the_configured_api_server(settings):
    settings.REDIS_URL = "redis://127.0.0.1:6399/0"
    proxied = k8s.Configuration(host="https://10.0.0.1:6443")
    proxied.proxy = "http://10.0.0.9:3128"
    with pytest.raises(ProviderError, match="routes through a proxy"):
        check_api_server(proxied)
    with pytest.raises(ProviderError, match="one of dbpilot's own services"):
        check_api_server(k8s.Configuration(host="http://127.0.0.1:6399"))
    check_api_server(k8s.Configuration(host="https://10.0.0.1:6443"))


def test_the_double_takes_the_patch_types_the_api_takes_and_refuses_others(cluster):
    double, provider = cluster
    provider.create(spec(1))
    core = k8s.CoreV1Api(client_for(double))
    name = f"{KEY}-config"
    core.patch_namespaced_config_map(
        name,
        NS,
        [{"op": "add", "path": "/data/extra", "value": "1"}],
        _content_type="application/json-patch+json",
    )
    core.patch_namespaced_config_map(
        name, NS, {"data": {"extra": None}}, _content_type="application/merge-patch+json"
    )
    assert "extra" not in double.objects[("configmaps", NS, name)]["data"]
    with pytest.raises(k8s.ApiException) as unsupported:
        core.patch_namespaced_config_map(name, NS, {"data": {}}, _content_type="application/json")
    assert unsupported.value.status == 415
    assert json.loads(unsupported.value.body)["reason"] == "UnsupportedMediaType"
    # What the provider sends: strategic merge patches (the client's choice for an object body).
    assert {c for m, _, c in double.requests if m == "PATCH"} >= {"application/strategic-merge-patch+json"}


def test_sql_to_a_pod_goes_through_the_network_allowlist(cluster):
    double, _ = cluster
    pinned = []

    def refuse(host: str) -> str:
        pinned.append(host)
        raise ValueError(f"{host} (10.244.0.7) is outside the networks this dbpilot may connect to")

    provider = KubernetesProvider(client_for(double), NS, pin=refuse)
    provider.bind_cluster(KEY, "r00t-secret")
    provider.create(spec(1))
    with pytest.raises(ProviderError, match="outside the networks") as refused:
        provider.execute(f"{KEY}-s1", "r00t-secret", ["SELECT 1"])
    assert pinned == [f"{KEY}-0.{KEY}-servers.{NS}.svc"] and not refused.value.permanent
