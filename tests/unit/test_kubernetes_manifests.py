"""The kubernetes provider's manifests, checked against the Kubernetes API schemas that kubernetes-validate
bundles (strict: no unknown field). No Kubernetes cluster is involved: see docs/provisioning.md."""

import kubernetes_validate
import pytest

from clusters.providers.kubernetes_manifests import KubernetesSpec, my_cnf, render

pytestmark = pytest.mark.unit
VERSION = "1.30.0"


def spec(**changes) -> KubernetesSpec:
    values = {
        "name": "orders",
        "namespace": "tenant-acme",
        "replicas": 2,
        "memory_mb": 512,
        "semi_sync": True,
        "parameters": {"max_connections": "500"},
    }
    return KubernetesSpec(**{**values, **changes})


def test_every_manifest_is_valid_for_the_kubernetes_api():
    manifests = render(spec(), {"root": "r00t-secret", "dbpilot": "admin-secret", "repl": "repl-secret"})
    kinds = [m["kind"] for m in manifests]
    assert kinds == [
        "ConfigMap",
        "Secret",
        "Service",
        "Service",
        "Service",
        "StatefulSet",
        "PodDisruptionBudget",
    ]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, VERSION, strict=True)


def test_the_statefulset_has_one_pod_per_server_and_the_same_server_settings_as_local():
    manifests = {(m["kind"], m["metadata"]["name"]): m for m in render(spec(replicas=3), {"root": "x"})}
    assert manifests[("StatefulSet", "orders")]["spec"]["replicas"] == 4
    cnf = manifests[("ConfigMap", "orders-config")]["data"]["dbpilot.cnf"]
    for line in (
        "read_only=ON",
        "gtid_strict_mode=ON",
        "log_slave_updates=ON",
        "binlog_format=ROW",
        "rpl_semi_sync_master_wait_point=AFTER_SYNC",
        "rpl_semi_sync_slave_enabled=ON",
        "binlog_expire_logs_seconds=604800",
        "max_connections=500",
        "innodb_buffer_pool_size=256M",
    ):
        assert line in cnf.splitlines(), line
    assert "r00t" not in str(manifests[("ConfigMap", "orders-config")])  # passwords only in the Secret


def test_names_that_kubernetes_would_refuse_are_refused_first():
    with pytest.raises(ValueError):
        spec(name="Orders_1")
    assert "rpl_semi_sync_slave_enabled" not in my_cnf(spec(replicas=0, semi_sync=False))


def test_the_validator_does_refuse_a_broken_manifest():
    statefulset = next(m for m in render(spec(), {"root": "x"}) if m["kind"] == "StatefulSet")
    broken = {**statefulset, "spec": {**statefulset["spec"], "replicas": "three"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)
    unknown = {**statefulset, "spec": {**statefulset["spec"], "replicaCount": 3}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(unknown, VERSION, strict=True)
