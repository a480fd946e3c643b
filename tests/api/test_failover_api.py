"""Failover without live servers: what a tick decides from a given observation (one refused job per
incident, every guard named, epochs), manual failover refusals (409) and bad input (400), the
failover-control counters and their reset, adopt on PATCH, and long jobs preempted by a failover.
The failovers themselves run on real servers in tests/integration/test_failover*.py."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from clusters import hotstate
from clusters.domain import constants as c
from clusters.domain.settings import merge_settings
from clusters.domain.topology import InventoryServer, analyze
from clusters.jobs.engine import create_job
from clusters.models import Cluster, Event, Job
from clusters.services import failover
from clusters.services.monitoring import TickResult
from tenants.models import AuditEntry
from tenants.platform import set_platform_paused
from tests.api.conftest import closed_ports
from tests.unit.domain_builders import failed, primary, replica, with_channel


@pytest.fixture(autouse=True)
def queued_jobs(settings, clean_redis):
    settings.DBPILOT_FAILOVER_RUNNER = "queue"  # jobs created here are never run


@pytest.fixture
def dark(world, make_cluster):
    """A cluster whose three servers do not answer (closed loopback ports), automatic and armed."""
    cluster = make_cluster(
        world.team_a,
        "dark",
        servers=tuple(("127.0.0.1", port) for port in closed_ports(3)),
        settings={"failover_mode": "automatic"},
    )
    Cluster.objects.filter(pk=cluster.pk).update(failover_armed=True)
    cluster.refresh_from_db()
    return cluster


def _addresses(cluster):
    return [s.address for s in cluster.servers.order_by("id")]


def observation(cluster, *, dead: bool = True, **settings_changes):
    """A TickResult as monitoring would record it: the primary down and both replicas lost it."""
    cluster.refresh_from_db()
    settings = merge_settings(cluster.settings, settings_changes)
    p, r1, r2 = _addresses(cluster)
    lost = {"io_running": "Connecting", "last_io_errno": 2003, "seconds_behind": None}
    probes = {
        p: failed(p) if dead else primary(p),
        r1: with_channel(replica(r1, source=p), **(lost if dead else {})),
        r2: with_channel(replica(r2, source=p), **(lost if dead else {})),
    }
    inventory = [
        InventoryServer(
            id=s.id, address=s.address, maintenance=s.maintenance, fenced=s.fenced, quarantined=s.quarantined
        )
        for s in cluster.servers.order_by("id")
    ]
    now = time.time()
    hotstate._lags_written.pop(cluster.id, None)
    hotstate.remember_lags(cluster.id, {r1: 0.0, r2: 0.0})  # what the healthy ticks before saw
    topology = analyze(
        inventory, probes, settings, {p: settings.failcount} if dead else {}, now, known_primary=p
    )
    return TickResult(cluster.id, topology, probes, {}, settings, now)


def after_tick(cluster, result, epoch=None):
    failover.after_tick(result, epoch=cluster.epoch if epoch is None else epoch)


def test_a_confirmed_failure_starts_one_failover_job_for_the_incident(dark):
    result = observation(dark)
    after_tick(dark, result)
    after_tick(dark, observation(dark))
    [job] = Job.objects.filter(cluster=dark, kind="failover")
    assert job.state == "pending" and job.requested_by == failover.AUTOMATIC_ACTOR
    assert job.params["automatic"] is True and job.params["primary"] == _addresses(dark)[0]
    assert job.params["incident"].startswith(_addresses(dark)[0] + "@")
    assert job.result["tick_winner"] == _addresses(dark)[1]
    assert all(check["ok"] for check in job.result["checks"])
    dark.refresh_from_db()
    assert dark.last_job_id == job.id


def test_blocked_guards_write_one_refused_job_per_incident_naming_every_guard(dark, world):
    set_platform_paused(True, by="root")
    for _ in range(3):
        after_tick(dark, observation(dark, paused=True))
    [job] = Job.objects.filter(cluster=dark, kind="failover")
    assert job.state == "refused" and job.finished_at is not None
    blocking = {check["name"] for check in job.result["checks"] if not check["ok"]}
    assert blocking == {c.GUARD_PLATFORM_PAUSED, c.GUARD_CLUSTER_PAUSED}
    assert "platform" in job.result["detail"] and "cluster is paused" in job.result["detail"]
    assert job.result["election"]["winner"] and job.result["confirmation"]["confirmed"]
    event = Event.objects.get(cluster=dark, kind="failover_blocked")
    assert set(event.data["guards"]) == blocking and event.data["job_id"] == job.id
    assert AuditEntry.objects.filter(action="job.failover", target=f"job:{job.id}", result="refused").exists()
    control = world.client("bob").get(f"/api/v1/clusters/{dark.id}/failover-control/").json()
    assert control["platform_paused"] is True
    assert control["last_blocked"]["id"] == job.id
    assert {ch["name"] for ch in control["last_blocked"]["checks"]} == blocking
    # Once the pauses end, the same incident fails over.
    set_platform_paused(False, by="root")
    after_tick(dark, observation(dark))
    assert Job.objects.filter(cluster=dark, kind="failover", state="pending").count() == 1


def test_manual_mode_refuses_naming_the_mode_and_arming(dark):
    Cluster.objects.filter(pk=dark.pk).update(failover_armed=False, settings={"failover_mode": "manual"})
    after_tick(dark, observation(dark))
    [job] = Job.objects.filter(cluster=dark, kind="failover")
    assert {ch["name"] for ch in job.result["checks"] if not ch["ok"]} == {
        c.GUARD_FAILOVER_MODE,
        c.GUARD_FAILOVER_ARMED,
    }


def test_a_tick_from_an_older_epoch_does_nothing(dark):
    after_tick(dark, observation(dark), epoch=dark.epoch - 1)
    assert not Job.objects.filter(cluster=dark).exists()


def test_an_unconfirmed_failure_starts_nothing(dark):
    result = observation(dark)
    p, r1, r2 = _addresses(dark)
    result.probes[r1] = replica(r1, source=p)  # still receiving: only dbpilot lost the primary
    after_tick(dark, result)
    assert not Job.objects.filter(cluster=dark).exists()


def test_another_active_ha_job_makes_the_tick_wait(dark):
    create_job(dark, "switchover", requested_by="someone")
    after_tick(dark, observation(dark))
    assert not Job.objects.filter(cluster=dark, kind="failover").exists()


def _ran_failover(cluster, minutes_ago: float, state: str = "succeeded") -> Job:
    started = timezone.now() - timedelta(minutes=minutes_ago)
    return Job.objects.create(
        cluster=cluster,
        kind="failover",
        state=state,
        params={"automatic": True},
        started_at=started,
        finished_at=started,
    )


def test_limit_and_interval_block_and_a_reset_clears_them(dark, world):
    Cluster.objects.filter(pk=dark.pk).update(settings={**dark.settings, "failover_limit": 1})
    earlier = _ran_failover(dark, minutes_ago=0.5)
    after_tick(dark, observation(dark))
    refused = Job.objects.get(cluster=dark, kind="failover", state="refused")
    assert {ch["name"] for ch in refused.result["checks"] if not ch["ok"]} == {
        c.GUARD_FAILOVER_LIMIT,
        c.GUARD_FAILOVER_MIN_INTERVAL,
    }
    control = world.client("token:read").get(f"/api/v1/clusters/{dark.id}/failover-control/").json()
    assert control["counters"]["failovers_in_window"] == 1 and control["counters"]["next_allowed_at"]
    assert control["last_failover"]["id"] == earlier.id and control["armed"] is True
    assert (
        world.client("token:read").post(f"/api/v1/clusters/{dark.id}/failover-control/reset/").status_code
        == 403
    )
    reset = world.client("token:operate").post(f"/api/v1/clusters/{dark.id}/failover-control/reset/")
    assert reset.status_code == 200
    assert reset.json()["counters"]["failovers_in_window"] == 0 and reset.json()["counters"]["reset_at"]
    assert AuditEntry.objects.filter(action__contains="failover_control_reset").exists()
    after_tick(dark, observation(dark))  # the same incident, now allowed
    assert Job.objects.filter(cluster=dark, kind="failover", state="pending").exists()


def test_refused_failovers_do_not_count_against_the_limit(dark):
    Cluster.objects.filter(pk=dark.pk).update(settings={**dark.settings, "failover_limit": 1})
    _ran_failover(dark, minutes_ago=0.5, state="refused")
    after_tick(dark, observation(dark))
    assert Job.objects.filter(cluster=dark, kind="failover", state="pending").exists()


def test_a_manual_failover_of_a_cluster_nobody_can_reach_is_refused(world, dark):
    response = world.client("oscar").post(f"/api/v1/clusters/{dark.id}/failover/", {}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "failover_refused"
    assert {"electable_candidate"} <= {ch["name"] for ch in body["checks"] if not ch["ok"]}
    assert not Job.objects.filter(cluster=dark).exists()


def test_a_manual_failover_while_another_ha_job_runs_names_it(world, dark):
    active = create_job(dark, "adopt", requested_by="someone")
    body = (
        world.client("token:operate").post(f"/api/v1/clusters/{dark.id}/failover/", {}, format="json").json()
    )
    assert body["code"] == "ha_job_active" and body["job"] == active.id


@pytest.mark.parametrize("body", [{"candidate": "not an address"}, {"candidate": "host:70000"}])
def test_malformed_failover_input_is_a_400(world, dark, body):
    response = world.client("token:admin").post(f"/api/v1/clusters/{dark.id}/failover/", body, format="json")
    assert response.status_code == 400 and set(response.json()) >= {"detail", "code"}


def test_switching_to_manual_disarms_and_to_automatic_starts_adopt(world, dark):
    client = world.client("alice")
    body = client.patch(f"/api/v1/clusters/{dark.id}/", {"failover_mode": "manual"}, format="json").json()
    assert body["failover_mode"] == "manual" and body["failover_armed"] is False
    assert Event.objects.filter(cluster=dark, kind="failover_disarmed").exists()
    body = client.patch(f"/api/v1/clusters/{dark.id}/", {"failover_mode": "automatic"}, format="json").json()
    assert body["job"]["kind"] == "adopt" and body["job"]["state"] == "pending"
    assert body["failover_armed"] is False


def test_automatic_mode_while_an_ha_job_is_active_is_a_409_and_changes_nothing(world, dark):
    Cluster.objects.filter(pk=dark.pk).update(settings={"failover_mode": "manual"})
    active = create_job(dark, "switchover", requested_by="someone")
    response = world.client("alice").patch(
        f"/api/v1/clusters/{dark.id}/", {"failover_mode": "automatic"}, format="json"
    )
    assert response.status_code == 409 and response.json()["job"] == active.id
    dark.refresh_from_db()
    assert dark.settings["failover_mode"] == "manual"


def test_a_failover_preempts_long_jobs_of_its_cluster(dark):
    backup = Job.objects.create(cluster=dark, kind="backup", state="running", lease_owner="worker-1")
    other = Job.objects.create(cluster=dark, kind="backup", state="succeeded")
    after_tick(dark, observation(dark))
    backup.refresh_from_db()
    job = Job.objects.get(cluster=dark, kind="failover")
    assert backup.state == "failed" and backup.lease_owner == ""
    assert backup.result["detail"] == f"preempted by failover job {job.id}"
    assert Job.objects.get(pk=other.pk).state == "succeeded"
    assert Event.objects.filter(cluster=dark, kind="job_preempted", data__job_id=backup.id).exists()


def test_an_incident_gets_one_failover_attempt_even_when_the_job_refused(dark):
    after_tick(dark, observation(dark))
    job = Job.objects.get(cluster=dark, kind="failover")
    Job.objects.filter(pk=job.pk).update(
        state="refused", started_at=timezone.now(), finished_at=timezone.now()
    )
    for _ in range(2):
        after_tick(dark, observation(dark))
    assert Job.objects.filter(cluster=dark, kind="failover").count() == 1


def test_fence_required_without_a_fence_hook_is_refused_when_saved(world, dark, settings, tmp_path):
    settings.DBPILOT_HOOKS_DIR = tmp_path  # hook names must exist there when saved
    (tmp_path / "cut-power").write_text("#!/bin/sh\n")
    (tmp_path / "cut-power").chmod(0o755)
    client = world.client("alice")
    response = client.patch(
        f"/api/v1/clusters/{dark.id}/", {"settings": {"fence_required": True}}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert set(body) >= {"detail", "code"} and "fence hook" in str(body)
    dark.refresh_from_db()
    assert not dark.settings.get("fence_required")
    accepted = client.patch(
        f"/api/v1/clusters/{dark.id}/",
        {"settings": {"fence_required": True, "fence": "cut-power"}},
        format="json",
    )
    assert accepted.status_code == 200 and accepted.json()["settings"]["fence_required"] is True
    # removing the hook while it is required is refused the same way
    again = client.patch(f"/api/v1/clusters/{dark.id}/", {"settings": {"fence": ""}}, format="json")
    assert again.status_code == 400 and "fence hook" in str(again.json())


def test_the_topology_payload_never_names_a_previous_primary_beside_a_newer_epoch(world, dark):
    p, r1, _ = _addresses(dark)
    servers = {s.address: s for s in dark.servers.all()}
    snapshot = {
        "primary": p,
        "epoch": dark.epoch,
        "updated_at": "2026-12-06T00:00:00+00:00",
        "servers": [
            {
                "id": s.id,
                "address": a,
                "role": "primary" if a == p else "replica",
                "state": "up",
                "read_only": a != p,
                "gtid_current_pos": "0-1-5",
                "replication": None,
            }
            for a, s in servers.items()
        ],
    }
    hotstate.write_topology(dark.id, snapshot)
    url = f"/api/v1/clusters/{dark.id}/topology/"
    assert world.client("alice").get(url).json()["primary"] == p
    # a failover job recorded r1 as the primary and bumped the epoch; the snapshot is from before
    Cluster.objects.filter(pk=dark.pk).update(primary=servers[r1], epoch=dark.epoch + 1)
    body = world.client("alice").get(url).json()
    assert body["primary"] == r1 and body["epoch"] == dark.epoch + 1
    roles = {f"{s['host']}:{s['port']}": s["role"] for s in body["servers"]}
    assert roles[r1] == "primary" and roles[p] == "unknown"


def test_a_job_that_saw_replicas_receiving_makes_them_witnesses_before_the_next_tick(clean_redis):
    """A rejoined or repointed replica is a witness at once (its `received` time moves forward), never
    back in time; with no tick state yet nothing is written."""
    assert hotstate.note_receiving(99, ["r1:3306"], 10.0) is False
    assert hotstate.read_state(99) == {}
    hotstate.write_state(99, {"primary": "p:3306", "received": {"r1:3306": 20.0, "r2:3306": 1.0}})
    assert hotstate.note_receiving(99, ["r1:3306", "r2:3306", "r3:3306"], 15.0) is True
    received, _ = hotstate.read_last_received(99)
    assert received == {"r1:3306": 20.0, "r2:3306": 15.0, "r3:3306": 15.0}
    assert hotstate.read_state(99)["primary"] == "p:3306"  # the rest of the tick's state is kept
