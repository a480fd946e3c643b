"""The hosts provider's placement against the pool's rows (no agent is called: choose_host only records
where a server goes): one server of a cluster per host, zones spread, within instance and memory
capacity, never a down host, a named host obeying the same rules; a cluster the pool cannot take is
refused up front with the rule that left no host, and nothing is created; a host's agent key rotated."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from clusters.models import Cluster, DatabaseHost, HostedInstance
from clusters.providers.agent_protocol import seal
from clusters.providers.base import ProviderError, ServerSpec
from clusters.providers.hosts_provider import HostsProvider, answer, host_key, pool_room
from clusters.services.hosts import register_host

pytestmark = pytest.mark.django_db


def pool():
    register_host("a1", "10.0.0.1", "zone-a", 2, 1024)
    register_host("a2", "10.0.0.2", "zone-a", 2, 1024)
    register_host("b1", "10.0.0.3", "zone-b", 2, 1024)
    register_host("c1", "10.0.0.4", "zone-c", 1, 1024)


def place(provider, group: str, index: int, memory_mb: int = 256, host: str | None = None) -> str:
    spec = ServerSpec(f"{group}-s{index}", index, memory_mb=memory_mb, group=group, host=host)
    return provider.choose_host(spec).host.name


def test_servers_of_a_cluster_go_to_distinct_hosts_zones_first_least_loaded_first():
    pool()
    provider = HostsProvider()
    first = [place(provider, "orders", i) for i in (1, 2, 3)]
    assert first == ["a1", "b1", "c1"]  # a zone the cluster does not use yet first; ties by name
    assert place(provider, "orders", 4) == "a2"  # zones all used: the host without a server of it
    assert place(provider, "orders", 1) == "a1"  # placing again is idempotent
    with pytest.raises(ProviderError, match="every host is down or already runs a server of this cluster"):
        place(provider, "orders", 5)
    # Another cluster: the least loaded host of each new zone first (a2 holds 1 of 2, a1 1 of 2: by name).
    assert [place(provider, "billing", i) for i in (1, 2)] == ["a1", "b1"]
    assert HostedInstance.objects.filter(host__name="a1").count() == 2


def test_capacity_down_hosts_and_named_hosts():
    pool()
    provider = HostsProvider()
    DatabaseHost.objects.filter(name="b1").update(down=True)
    assert [place(provider, "x", i) for i in (1, 2)] == ["a1", "c1"]
    with pytest.raises(ProviderError, match="host b1 is down"):
        place(provider, "y", 1, host="b1")
    with pytest.raises(ProviderError, match="no host named 'zz'"):
        place(provider, "y", 1, host="zz")
    with pytest.raises(ProviderError, match="host c1 has no room"):
        place(provider, "y", 1, host="c1")  # c1 holds 1 of 1
    with pytest.raises(ProviderError, match="no host has room for another 2048 MB server"):
        place(provider, "big", 1, memory_mb=2048)
    assert place(provider, "y", 1, host="a1") == "a1"
    assert not HostedInstance.objects.filter(group__in=["big"]).exists()


def test_a_cluster_the_pool_cannot_take_is_refused_up_front(world):
    pool()
    DatabaseHost.objects.filter(name__in=["a2", "c1"]).update(down=True)
    assert pool_room(2, 256) == ""  # a1 and b1 are up
    assert "cannot place server 3 of 3" in pool_room(3, 256)
    body = {"name": "big", "provision": {"provider": "hosts", "replicas": 2}}
    with override_settings(DBPILOT_PROVIDERS=["local", "hosts"]):
        response = world.client("alice").post("/api/v1/clusters/", body, format="json")
    assert response.status_code == 400, response.content
    assert "the host pool has no room for this cluster" in str(response.json())
    assert not Cluster.objects.filter(name="big").exists()


def test_a_host_key_is_rotated_and_the_old_one_no_longer_opens_its_operations():
    pool()
    host = DatabaseHost.objects.get(name="a1")
    old = host_key(host)
    out = io.StringIO()
    call_command("host_agent_key", "a1", stdout=out, stderr=io.StringIO())
    new = out.getvalue().strip()
    host.refresh_from_db()
    assert new != old and host_key(host) == new
    assert answer(host, seal(new, {"ok": "pong"}), "ping") == "pong"
    with pytest.raises(ProviderError, match="the answer is not the agent's"):
        answer(host, seal(old, {"ok": "pong"}), "ping")  # an answer sealed with the old key is refused
    with pytest.raises(CommandError, match="no host named 'nope'"):
        call_command("host_agent_key", "nope", stdout=io.StringIO())
