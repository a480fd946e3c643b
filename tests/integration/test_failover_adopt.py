"""Consent to automatic failover through the API: `failover_mode: automatic` at registration runs the adopt
job (the cluster object's `job`), which prepares the replicas and arms the cluster; PATCH back to manual
disarms; changing the semi-sync policy while automatic adopts again. The job runs inline here."""

from __future__ import annotations

import pytest

from tests.integration.monitoring_helpers import registration_payload, tenant_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def inline_jobs(settings, clean_redis):
    settings.DBPILOT_FAILOVER_RUNNER = "inline"


def variables(sandbox, node: int, *names: str) -> dict:
    return sandbox.sql(node, "SELECT " + ", ".join(f"@@{n} AS {n}" for n in names))[0]


def test_automatic_mode_adopts_the_cluster_then_arms_it(sandbox_factory):
    sandbox = sandbox_factory(3, semi_sync=True)
    for node in (2, 3):  # what a registered cluster typically has: slow detection, a writable replica
        for statement in (
            "STOP SLAVE",
            "CHANGE MASTER TO MASTER_CONNECT_RETRY=60, MASTER_HEARTBEAT_PERIOD=30",
            "SET GLOBAL slave_net_timeout=60",
            "SET GLOBAL read_only=0",
            "START SLAVE",
        ):
            sandbox.sql(node, statement)
    sandbox.sql(1, "SET GLOBAL rpl_semi_sync_master_wait_point=AFTER_COMMIT")
    client, _ = tenant_client()
    payload = registration_payload(sandbox, semi_sync_timeout_ms=2500)
    payload["failover_mode"] = "automatic"
    response = client.post("/api/v1/clusters/", payload, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["failover_mode"] == "automatic" and body["failover_armed"] is True
    assert body["job"]["kind"] == "adopt" and body["job"]["state"] == "succeeded", body["job"]["result"]
    assert [s["name"] for s in body["job"]["steps"]] == [
        "inspect",
        "prepare_replicas",
        "replicas_read_only",
        "semi_sync_primary",
        "arm",
    ]
    for node in (2, 3):
        status = sandbox.sql(node, "SHOW ALL SLAVES STATUS")[0]
        assert int(status["Connect_Retry"]) == 1 and float(status["Slave_heartbeat_period"]) == 1.0
        assert status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes"
        assert variables(
            sandbox,
            node,
            "slave_net_timeout",
            "read_only",
            "rpl_semi_sync_slave_enabled",
            "rpl_semi_sync_master_enabled",
        ) == {
            "slave_net_timeout": 4,
            "read_only": 1,
            "rpl_semi_sync_slave_enabled": 1,
            "rpl_semi_sync_master_enabled": 0,
        }
    primary = variables(
        sandbox,
        1,
        "rpl_semi_sync_master_wait_point",
        "rpl_semi_sync_master_timeout",
        "rpl_semi_sync_master_enabled",
        "read_only",
    )
    assert primary == {
        "rpl_semi_sync_master_wait_point": "AFTER_SYNC",
        "rpl_semi_sync_master_timeout": 2500,
        "rpl_semi_sync_master_enabled": 1,
        "read_only": 0,
    }

    url = f"/api/v1/clusters/{body['id']}/"
    manual = client.patch(url, {"failover_mode": "manual"}, format="json").json()
    assert manual["failover_armed"] is False and manual["job"]["id"] == body["job"]["id"]
    again = client.patch(
        url, {"failover_mode": "automatic", "settings": {"semi_sync_on_timeout": "wait"}}, format="json"
    ).json()
    assert (
        again["failover_armed"] is True
        and again["job"]["kind"] == "adopt"
        and again["job"]["id"] != body["job"]["id"]
    )
    assert variables(sandbox, 1, "rpl_semi_sync_master_timeout")["rpl_semi_sync_master_timeout"] == 4294967295
    writes = sandbox.sql(1, "SELECT @@gtid_binlog_pos AS pos")[0]["pos"]
    assert (
        sandbox.sql(2, "SELECT @@gtid_binlog_state AS s")[0]["s"]
        == sandbox.sql(1, "SELECT @@gtid_binlog_state AS s")[0]["s"]
    )
    assert writes == ""  # adopting wrote nothing: no GTID anywhere


def test_adopt_refuses_without_a_live_primary_and_the_cluster_stays_unarmed(sandbox_factory):
    sandbox = sandbox_factory(2)
    client, _ = tenant_client()
    response = client.post("/api/v1/clusters/", registration_payload(sandbox), format="json")
    cluster_id = response.json()["id"]
    sandbox.kill(1)
    body = client.patch(
        f"/api/v1/clusters/{cluster_id}/", {"failover_mode": "automatic"}, format="json"
    ).json()
    assert body["failover_armed"] is False
    assert body["job"]["kind"] == "adopt" and body["job"]["state"] == "refused"
    assert [ch["name"] for ch in body["job"]["result"]["checks"]] == ["primary_up"]
