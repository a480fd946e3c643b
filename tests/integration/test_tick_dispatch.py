"""How beat's dispatcher cuts the due clusters into shards (clusters.services.monitoring.due_shards)."""

from __future__ import annotations

import pytest

from clusters.models import Cluster, Server
from clusters.services.monitoring import due_shards
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def test_every_due_cluster_is_sent_once_and_the_shards_start_elsewhere_each_second(clean_redis):
    tenant = Tenant.objects.create(name="dispatch")
    ids = []
    for n in range(6):
        cluster = Cluster.objects.create(tenant=tenant, name=f"d{n}")
        Server.objects.create(cluster=cluster, host="127.0.0.1", port=3300 + n, ip="127.0.0.1")
        ids.append(cluster.id)

    first = due_shards(2, now=1000.0)
    second = due_shards(2, now=1001.0)
    for shards in (first, second):
        sent = [cid for shard in shards for cid in shard]
        assert sorted(sent) == sorted(ids)  # each one exactly once
        assert all(len(shard) == 2 for shard in shards)
    # Workers that fall behind drop the shards sent last (they expire): those are other clusters each second.
    assert first[-1] != second[-1]
    assert sorted(map(tuple, first)) == sorted(map(tuple, second))  # the same shards, another order
    assert due_shards(2, now=1001.5) == []  # not due again within the cluster's tick_seconds (1)
