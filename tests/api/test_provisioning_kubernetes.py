"""Provisioning with the kubernetes provider through the API, against the recorded double of the Kubernetes
API (tests/unit/kubernetes_double.py; no Kubernetes cluster exists here, so no pod ever runs): the job
reaches the provider's calls (objects applied, the StatefulSet scaled to each server), waits for the first
pod and fails cleanly with what it waited for, and its abort removes every object it made. A failover's
routes step labels the pods so the writer Service follows the new primary. Adding a replica, and removing
one that is not the newest pod, are refused up front with the reason."""

from __future__ import annotations

import pytest

from clusters.models import Cluster, Job, Server
from clusters.providers.base import ServerSpec
from clusters.providers.registry import get_provider
from clusters.routes import announce_new_primary
from tenants.services import grant_cluster
from tests.integration.monitoring_helpers import tenant_client
from tests.unit.kubernetes_double import KubernetesDouble

pytestmark = pytest.mark.django_db(transaction=True)
NS = "dbpilot"


@pytest.fixture
def kubernetes(settings, tmp_path, clean_redis):
    with KubernetesDouble() as double:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: double\n"
            f"clusters:\n- name: double\n  cluster:\n    server: {double.url}\n"
            f"users:\n- name: dbpilot\n  user:\n    token: {double.token}\n"
            "contexts:\n- name: double\n  context:\n    cluster: double\n    user: dbpilot\n"
        )
        settings.DBPILOT_PROVIDERS = ["local", "kubernetes"]
        settings.DBPILOT_KUBERNETES_CONFIG = str(kubeconfig)
        settings.DBPILOT_KUBERNETES_NAMESPACE = NS
        settings.DBPILOT_KUBERNETES_READY_SECONDS = 1.0
        settings.DBPILOT_FAILOVER_RUNNER = "inline"
        yield double


def test_provisioning_reaches_the_provider_then_fails_cleanly_waiting_for_the_first_pod(kubernetes):
    client, _ = tenant_client()
    response = client.post(
        "/api/v1/clusters/",
        {"name": "orders", "provision": {"provider": "kubernetes", "replicas": 2}},
        format="json",
    )
    assert response.status_code == 202, response.content
    cluster = Cluster.objects.get(pk=response.json()["id"])
    key = cluster.provision["key"]
    job = Job.objects.get(cluster=cluster, kind="provision")

    assert job.state == "failed"
    steps = {s["name"]: s for s in job.steps}
    assert steps["place_servers"]["state"] == "ok"
    assert f"{key}-0.{key}-servers.{NS}.svc:3306" in steps["place_servers"]["detail"]
    assert steps["start_servers"]["state"] == "failed"
    assert (
        f"pod {key}-0 in namespace {NS} is not ready after 1 s: it does not exist yet" in job.result["detail"]
    )

    paths = [(m, p) for m, p, _ in kubernetes.requests]
    scale = f"/apis/apps/v1/namespaces/{NS}/statefulsets/{key}/scale"
    assert ("POST", f"/apis/apps/v1/namespaces/{NS}/statefulsets") in paths
    assert ("POST", f"/api/v1/namespaces/{NS}/secrets") in paths
    # up to 1, 2, 3 servers (create), 3 again (start of the first), down to 2, 1, 0 (the abort)
    assert [m for m, p in paths if p == scale] == ["PATCH"] * 7
    claims = [p for m, p in paths if m == "DELETE" and "persistentvolumeclaims" in p]
    assert claims == [f"/api/v1/namespaces/{NS}/persistentvolumeclaims/data-{key}-{o}" for o in (2, 1, 0)]
    assert kubernetes.objects == {}  # the abort removed everything it had made
    assert "removed 3 server(s)" in str(job.result)
    assert not Server.objects.filter(cluster=cluster).exists()


def test_a_failovers_routes_step_labels_the_pods_and_scaling_is_refused_with_the_reason(kubernetes):
    client, created = tenant_client()
    kubernetes.controller = True  # pods exist (the double plays the StatefulSet controller)
    provider = get_provider("kubernetes")
    key = "shop-a1b2c3"
    provider.bind_cluster(key, "r00t-secret")
    placements = [provider.create(ServerSpec(f"{key}-s{n}", n, group=key)) for n in (1, 2)]
    cluster = Cluster.objects.create(
        tenant_id=created.tenant.pk,
        name="shop",
        origin=Cluster.Origin.PROVISIONED,
        provision={"provider": "kubernetes", "key": key, "replicas": 1},
    )
    servers = [
        Server.objects.create(
            cluster=cluster, host=p.host, port=p.port, ip=f"10.1.0.{i}", instance=p.instance
        )
        for i, p in enumerate(placements, 1)
    ]
    Cluster.objects.filter(pk=cluster.pk).update(primary=servers[0])
    grant_cluster(created.team, cluster)

    results = announce_new_primary(cluster, servers[1].address, old_primary=servers[0].address)

    assert [r.ok for r in results] == [True] and "relabelled" in results[0].detail
    labels = {n: kubernetes.objects[("pods", NS, f"{key}-{n}")]["metadata"]["labels"] for n in (0, 1)}
    assert labels[1]["dbpilot.io/role"] == "primary" and labels[0]["dbpilot.io/role"] == "replica"

    refused = client.post(f"/api/v1/clusters/{cluster.id}/servers/", {}, format="json")
    assert refused.status_code == 409 and "cannot add a replica" in refused.json()["detail"]
    Cluster.objects.filter(pk=cluster.pk).update(primary=servers[1])
    refused = client.delete(f"/api/v1/clusters/{cluster.id}/servers/{servers[0].id}/")
    assert refused.status_code == 409 and "not the cluster's last pod" in refused.json()["detail"]
    assert not Job.objects.filter(cluster=cluster).exists()


def test_the_orphan_sweep_removes_a_kubernetes_clusters_pods_newest_first(kubernetes, settings):
    from clusters.services.orphans import sweep_orphans

    settings.DBPILOT_ORPHAN_GRACE_SECONDS = 0  # every unowned pod is old enough here
    settings.DBPILOT_PROVIDERS = ["kubernetes"]  # never this machine's local servers
    kubernetes.controller = True
    provider = get_provider("kubernetes")
    key = "gone-d4e5f6"  # a cluster deleted while its provision job's worker was dead
    provider.bind_cluster(key, "r00t-secret")
    for n in (1, 2):
        provider.create(ServerSpec(f"{key}-s{n}", n, group=key))

    assert sorted(sweep_orphans()) == [f"{key}-s1", f"{key}-s2"]
    claims = [p for m, p, _ in kubernetes.requests if m == "DELETE" and "persistentvolumeclaims" in p]
    assert claims == [f"/api/v1/namespaces/{NS}/persistentvolumeclaims/data-{key}-{o}" for o in (1, 0)]
    assert kubernetes.objects == {}
