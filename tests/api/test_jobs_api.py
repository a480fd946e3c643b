"""POST /api/v1/clusters/{id}/switchover/ without live servers: what is refused at once (409 with named
checks and no job), bad input (400), and who may ask (operate). The switchover itself is in
tests/integration/test_switchover*.py."""

from __future__ import annotations

import pytest

from clusters.jobs.engine import create_job
from clusters.models import Job
from tests.api.conftest import closed_ports


@pytest.fixture
def unreachable_cluster(world, make_cluster):
    return make_cluster(world.team_a, "dark", servers=tuple(("127.0.0.1", port) for port in closed_ports(2)))


def test_a_second_switchover_while_one_is_active_is_a_409_naming_it(world, unreachable_cluster):
    active = create_job(unreachable_cluster, "switchover", requested_by="someone")
    response = world.client("token:operate").post(
        f"/api/v1/clusters/{unreachable_cluster.id}/switchover/", {}, format="json"
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "ha_job_active" and body["job"] == active.id
    assert f"job {active.id} (switchover, pending)" in body["detail"]
    blocking = {c["name"]: c for c in body["checks"] if not c["ok"]}
    assert f"job {active.id}" in blocking["no_active_ha_job"]["detail"]
    assert all(set(c) == {"name", "ok", "detail"} for c in body["checks"])
    assert Job.objects.filter(cluster=unreachable_cluster).count() == 1


def test_a_cluster_without_a_live_primary_is_refused_with_every_blocking_check(world, unreachable_cluster):
    response = world.client("oscar").post(
        f"/api/v1/clusters/{unreachable_cluster.id}/switchover/",
        {"candidate": unreachable_cluster.servers.last().address},
        format="json",
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "switchover_refused"
    names = {c["name"] for c in body["checks"] if not c["ok"]}
    assert {"primary_up", "candidate"} <= names
    assert "no_active_ha_job" not in names
    assert not Job.objects.filter(cluster=unreachable_cluster).exists()


@pytest.mark.parametrize(
    "body",
    [
        {"candidate": "not an address"},
        {"candidate": "host:99999"},
        {"candidate": 5},
        {"catchup_timeout_seconds": 0},
        {"catchup_timeout_seconds": "x"},
    ],
)
def test_malformed_input_is_a_400(world, unreachable_cluster, body):
    response = world.client("token:admin").post(
        f"/api/v1/clusters/{unreachable_cluster.id}/switchover/", body, format="json"
    )
    assert response.status_code == 400, response.content
    assert set(response.json()) >= {"detail", "code"}
    assert not Job.objects.filter(cluster=unreachable_cluster).exists()


@pytest.mark.parametrize("who,status", [("token:read", 403), ("bob", 403), ("charlie", 404), (None, 401)])
def test_only_operators_of_the_cluster_may_switch_over(world, unreachable_cluster, who, status):
    response = world.client(who).post(
        f"/api/v1/clusters/{unreachable_cluster.id}/switchover/", {}, format="json"
    )
    assert response.status_code == status
    assert not Job.objects.filter(cluster=unreachable_cluster).exists()
