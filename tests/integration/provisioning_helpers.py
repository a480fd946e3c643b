"""Shared by the provisioning tests: helpers to provision through the API and to reach the servers (the
`local_servers` fixture is in tests/integration/conftest.py)."""

from __future__ import annotations

import pymysql

from clusters.models import Cluster, Job
from clusters.providers.local_provider import LocalProvider
from controlplane.crypto import decrypt_json
from tests.integration.monitoring_helpers import tenant_client

TEST_PORTS = "20100-20399"


def provision_body(name: str = "main", replicas: int = 2, **extra) -> dict:
    spec = {
        "provider": "local",
        "replicas": replicas,
        "master_user": {"user": "owner", "password": "a-long-password-1"},
        **extra,
    }
    return {"name": name, "provision": spec}


def provision(client, name: str = "main", replicas: int = 2, **extra) -> tuple[dict, Cluster]:
    response = client.post("/api/v1/clusters/", provision_body(name, replicas, **extra), format="json")
    assert response.status_code == 202, response.content
    return response.json(), Cluster.objects.get(pk=response.json()["id"])


def job_of(body: dict) -> Job:
    return Job.objects.get(pk=body["job"]["id"] if "job" in body and body["job"] else body["id"])


def root_connection(provider: LocalProvider, cluster: Cluster, instance: str):
    password = decrypt_json(cluster.provision_secrets_encrypted)["root"]
    return provider.root_connection(instance, password)


def connect(address: str, user: str, password: str, database: str | None = None):
    host, port = address.rsplit(":", 1)
    return pymysql.connect(
        host=host,
        port=int(port),
        user=user,
        password=password,
        database=database,
        autocommit=True,
        connect_timeout=5,
        cursorclass=pymysql.cursors.DictCursor,
    )


__all__ = ["provision", "provision_body", "job_of", "root_connection", "connect", "tenant_client"]
