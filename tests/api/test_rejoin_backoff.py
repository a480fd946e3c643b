"""The automatic rejoin's retry backoff (clusters.services.fencing.start_rejoin): a rejoin that did not
succeed is retried after 15 s, 30 s, 60 s...; but failures against an earlier primary (one that died under
the rejoin, say) do not hold back a rejoin to the primary a later failover or switchover chose."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from clusters.models import Job
from clusters.services.fencing import rejoin_backoff_seconds, start_rejoin
from tests.api.conftest import closed_ports

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def queued_jobs(settings, clean_redis):
    settings.DBPILOT_FAILOVER_RUNNER = "queue"  # jobs created here are never run


@pytest.fixture
def cluster(world, make_cluster):
    return make_cluster(world.team_a, "backoff", servers=tuple(("127.0.0.1", p) for p in closed_ports(3)))


def _job(cluster, kind, state, seconds_ago, **params):
    when = timezone.now() - timedelta(seconds=seconds_ago)
    job = Job.objects.create(cluster=cluster, kind=kind, state=state, params=params)
    Job.objects.filter(pk=job.pk).update(created_at=when, finished_at=when)
    return job


def test_the_backoff_doubles_and_is_capped():
    assert [rejoin_backoff_seconds(n) for n in range(5)] == [0, 15, 30, 60, 120]
    assert rejoin_backoff_seconds(20) == 600


def test_a_recent_failure_holds_the_next_rejoin_back_until_its_backoff_passed(cluster):
    server = cluster.servers.order_by("id")[1]
    _job(cluster, "rejoin", "failed", 10, server=server.address)
    assert start_rejoin(cluster, server) is None  # 10 s < 15 s
    Job.objects.filter(kind="rejoin").update(created_at=timezone.now() - timedelta(seconds=20))
    job = start_rejoin(cluster, server)
    assert job is not None and job.params == {"server": server.address}


def test_failures_against_an_earlier_primary_do_not_count_after_a_failover(cluster):
    server = cluster.servers.order_by("id")[1]
    for seconds_ago in (200, 100, 12):  # three failures: the next try would wait 60 s
        _job(cluster, "rejoin", "failed", seconds_ago, server=server.address)
    assert start_rejoin(cluster, server) is None
    _job(cluster, "failover", "succeeded", 5)  # a new primary since the last failure
    job = start_rejoin(cluster, server)
    assert job is not None and job.kind == "rejoin"
