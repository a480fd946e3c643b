"""The orphan sweep on real servers (local provider): a server placed and started as a job would, then
owned by nothing, is destroyed (process gone, data removed); a server of the cluster and a fresh unowned
one are left alone."""

from __future__ import annotations

import json
import time

import pytest

from clusters.models import Event
from clusters.providers.base import ServerSpec
from clusters.services.orphans import sweep_orphans
from tests.integration.provisioning_helpers import job_of, provision, tenant_client

pytestmark = pytest.mark.django_db(transaction=True)


def backdate(provider, instance: str, seconds: float) -> None:
    path = provider.dir(instance) / "instance.json"
    state = json.loads(path.read_text())
    state["created_at"] -= seconds
    path.write_text(json.dumps(state))


def pid_alive(pid: int) -> bool:
    """Running: a killed child of this test process stays a zombie until reaped, which is not running."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_sweep_destroys_an_unowned_server_past_the_grace_and_nothing_else(local_servers, settings):
    settings.DBPILOT_ORPHAN_GRACE_SECONDS = 600
    client, _ = tenant_client()
    body, cluster = provision(client, "swept", replicas=0)
    job = job_of(body)
    assert job.state == "succeeded", (job.result.get("detail"), job.steps)
    key = cluster.provision["key"]
    owned = f"{key}-s1"
    backdate(local_servers, owned, 3600)  # old, but its Server row owns it

    # An add-replica whose worker died after starting its server, the job long over: owned by nothing.
    orphan = f"{key}-s2"
    local_servers.create(ServerSpec(orphan, 2, semi_sync=False))
    local_servers.start(orphan, None)
    pid = int((local_servers.dir(orphan) / "mariadbd.pid").read_text())
    backdate(local_servers, orphan, 700)
    # A server of a cluster deleted meanwhile (placed, never started).
    gone = "gone-abc123-s1"
    local_servers.create(ServerSpec(gone, 1, semi_sync=False))
    backdate(local_servers, gone, 700)
    # A server a running job has just created, before the job recorded it: inside the grace.
    fresh = f"{key}-s3"
    local_servers.create(ServerSpec(fresh, 3, semi_sync=False))

    destroyed = sweep_orphans()

    assert sorted(destroyed) == sorted([orphan, gone])
    deadline = time.monotonic() + 30
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(pid)
    assert not local_servers.dir(orphan).exists() and not local_servers.dir(gone).exists()
    assert set(local_servers.instances()) == {owned, fresh}
    assert local_servers.running(owned)
    event = Event.objects.get(cluster=cluster, kind="orphan_destroyed")
    assert orphan in event.message and "local provider" in event.message
    assert sweep_orphans() == []  # nothing left to do: the owned and the fresh stay
