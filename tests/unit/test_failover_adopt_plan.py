"""clusters.domain.adopt_plan: what the adopt job changes on a replica for automatic failover."""

from __future__ import annotations

import pytest

from clusters.domain.adopt_plan import ReplicaSetup, adopt_changes
from clusters.domain.settings import ClusterSettings

pytestmark = pytest.mark.unit
R1 = "127.0.0.1:3302"  # never dialled


def setup(**fields):
    values = dict(
        address=R1,
        using_gtid="Slave_Pos",
        connect_retry=60,
        heartbeat_period=30.0,
        slave_net_timeout=60,
        read_only=False,
        semi_sync_slave=False,
        semi_sync_master=True,
    )
    values.update(fields)
    return ReplicaSetup(**values)


def test_adopt_changes_what_failover_relies_on():
    changes = adopt_changes(setup(), ClusterSettings(semi_sync=True))
    assert changes.restart and changes.change_master and changes.slave_net_timeout
    assert changes.semi_sync_slave_on and changes.semi_sync_master_off and changes.read_only_on
    assert "MASTER_HEARTBEAT_PERIOD=1" in changes.describe()


def test_adopt_leaves_a_ready_replica_alone():
    ready = setup(
        connect_retry=1,
        heartbeat_period=1.0,
        slave_net_timeout=4,
        read_only=True,
        semi_sync_slave=True,
        semi_sync_master=False,
    )
    changes = adopt_changes(ready, ClusterSettings(semi_sync=True))
    assert not changes.any and changes.describe() == "nothing to change"


def test_adopt_refuses_a_replica_without_gtid():
    assert "GTID" in adopt_changes(setup(using_gtid="No"), ClusterSettings()).problem
