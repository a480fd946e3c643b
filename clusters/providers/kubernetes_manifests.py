"""The `kubernetes` provider's manifests for a provisioned cluster's spec: a StatefulSet of MariaDB pods,
a headless Service (each pod's stable address), writer and reader Services, the ConfigMap holding the same
my.cnf settings as the local provider, a Secret with dbpilot's generated passwords, and a
PodDisruptionBudget that keeps all but one server up during voluntary disruptions.

Rendering only: clusters.providers.kubernetes_apply applies them with the official Kubernetes client (tested
against a recorded double of the API); nothing here has been run against a live Kubernetes cluster (the manifests are checked with a validator that bundles the
Kubernetes schemas, tests/unit/test_kubernetes_manifests.py). dbpilot still does monitoring and failover:
every pod starts read-only; server_id comes from the pod's ordinal.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from clusters.providers.mariadb_config import DATADIR_SHAPE, SMALL_INSTANCE

IMAGE = "mariadb:10.11"
NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$")
MYSQL_PORT = 3306


@dataclass(frozen=True)
class KubernetesSpec:
    """What the manifests are made from: the same fields a provision request carries."""

    name: str
    namespace: str
    replicas: int
    memory_mb: int
    semi_sync: bool
    parameters: Mapping[str, str] = field(default_factory=dict)
    storage_gb: int = 10
    binlog_expire_seconds: int = 7 * 24 * 3600

    def __post_init__(self) -> None:
        for what in (self.name, self.namespace):
            if not NAME.fullmatch(what):
                raise ValueError(f"{what!r}: use 1-42 lowercase letters, digits and dashes")

    @property
    def servers(self) -> int:
        return 1 + self.replicas


def my_cnf(spec: KubernetesSpec) -> str:
    """The server settings shared by every pod; the entrypoint adds server_id (ordinal + 1) and report_host."""
    options: dict[str, str] = {
        "datadir": "/var/lib/mysql",
        "secure_file_priv": "/var/lib/mysql-files",
        "bind_address": "0.0.0.0",
        "port": str(MYSQL_PORT),
        "skip_name_resolve": "ON",
        "local_infile": "OFF",
        "character_set_server": "utf8mb4",
        "collation_server": "utf8mb4_general_ci",
        "max_connections": "400",
        "log_bin": "mysql-bin",
        "relay_log": "relay-bin",
        "log_slave_updates": "ON",
        "binlog_format": "ROW",
        "gtid_strict_mode": "ON",
        "read_only": "ON",
        "slave_net_timeout": "4",
        "rpl_semi_sync_master_wait_point": "AFTER_SYNC",
        "binlog_expire_logs_seconds": str(spec.binlog_expire_seconds),
        **DATADIR_SHAPE,
        **SMALL_INSTANCE,
        "innodb_buffer_pool_size": f"{max(32, spec.memory_mb // 2)}M",
    }
    if spec.semi_sync:
        options["rpl_semi_sync_slave_enabled"] = "ON"
    options.update({k: str(v) for k, v in spec.parameters.items()})
    return "[mysqld]\n" + "".join(f"{k}={v}\n" for k, v in options.items())


ENTRYPOINT = r"""set -eu
ordinal="${HOSTNAME##*-}"
{ echo "[mysqld]"; echo "server_id=$((ordinal + 1))"; echo "report_host=${HOSTNAME}.${GOVERNING_SERVICE}"; } \
  > /etc/mysql/conf.d/zz-identity.cnf
exec docker-entrypoint.sh mariadbd
"""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def render(spec: KubernetesSpec, passwords: Mapping[str, str]) -> list[dict]:
    """Every manifest of the cluster, in the order they are applied."""
    labels = {
        "app.kubernetes.io/name": "mariadb",
        "app.kubernetes.io/instance": spec.name,
        "app.kubernetes.io/managed-by": "dbpilot",
    }
    meta = lambda name, **extra: {"name": name, "namespace": spec.namespace, "labels": dict(labels), **extra}  # noqa: E731
    headless = f"{spec.name}-servers"
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(f"{spec.name}-config"),
        "data": {"dbpilot.cnf": my_cnf(spec), "entrypoint.sh": ENTRYPOINT},
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(f"{spec.name}-credentials"),
        "type": "Opaque",
        "data": {key: _b64(value) for key, value in sorted(passwords.items())},
    }
    service_headless = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(headless),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": dict(labels),
            "ports": [{"name": "mysql", "port": MYSQL_PORT, "targetPort": MYSQL_PORT}],
        },
    }

    def role_service(role: str) -> dict:
        # dbpilot labels the pods with their role (dbpilot.io/role) after each topology change.
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(f"{spec.name}-{role}"),
            "spec": {
                "type": "ClusterIP",
                "selector": {**labels, "dbpilot.io/role": role},
                "ports": [{"name": "mysql", "port": MYSQL_PORT, "targetPort": MYSQL_PORT}],
            },
        }

    memory = f"{spec.memory_mb}Mi"
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta(spec.name),
        "spec": {
            "serviceName": headless,
            "replicas": spec.servers,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "securityContext": {
                        "runAsUser": 999,
                        "runAsGroup": 999,
                        "fsGroup": 999,
                        "runAsNonRoot": True,
                    },
                    "affinity": {
                        "podAntiAffinity": {
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "weight": 100,
                                    "podAffinityTerm": {
                                        "topologyKey": "topology.kubernetes.io/zone",
                                        "labelSelector": {"matchLabels": dict(labels)},
                                    },
                                }
                            ]
                        }
                    },
                    "containers": [
                        {
                            "name": "mariadb",
                            "image": IMAGE,
                            "command": ["/bin/sh", "/etc/dbpilot/entrypoint.sh"],
                            "ports": [{"name": "mysql", "containerPort": MYSQL_PORT}],
                            "env": [
                                {"name": "GOVERNING_SERVICE", "value": headless},
                                {
                                    "name": "MARIADB_ROOT_PASSWORD",
                                    "valueFrom": {
                                        "secretKeyRef": {"name": f"{spec.name}-credentials", "key": "root"}
                                    },
                                },
                            ],
                            "resources": {
                                "requests": {"memory": memory, "cpu": "250m"},
                                "limits": {"memory": memory},
                            },
                            "readinessProbe": {"tcpSocket": {"port": MYSQL_PORT}, "periodSeconds": 2},
                            "volumeMounts": [
                                {"name": "data", "mountPath": "/var/lib/mysql"},
                                {
                                    "name": "config",
                                    "mountPath": "/etc/mysql/conf.d/dbpilot.cnf",
                                    "subPath": "dbpilot.cnf",
                                },
                                {
                                    "name": "config",
                                    "mountPath": "/etc/dbpilot/entrypoint.sh",
                                    "subPath": "entrypoint.sh",
                                },
                            ],
                        }
                    ],
                    "volumes": [{"name": "config", "configMap": {"name": f"{spec.name}-config"}}],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": f"{spec.storage_gb}Gi"}},
                    },
                }
            ],
        },
    }
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(spec.name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(labels)}},
    }
    return [
        config,
        secret,
        service_headless,
        role_service("primary"),
        role_service("replica"),
        statefulset,
        budget,
    ]
