"""The route driver interface HA jobs call: registry, provider seam, failures that never fail a job."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from clusters.routes import (
    PRIMARY_CHANGED,
    PRIMARY_LEAVING,
    RouteDriver,
    RouteError,
    RouteResult,
    announce_new_primary,
    announce_primary_leaving,
    cluster_routes,
    driver_for,
    register_driver,
    set_routes_provider,
)
from clusters.routes.registry import unregister_driver

pytestmark = pytest.mark.unit


@dataclass
class FakeRoute:
    id: int
    kind: str
    fail: str = ""  # "", "route_error", "permanent", "crash"


APPLIED: list = []


class RecordingDriver(RouteDriver):
    def apply(self, plan):
        APPLIED.append((self.route.id, plan))
        if self.route.fail == "route_error":
            raise RouteError("proxy did not answer")
        if self.route.fail == "permanent":
            raise RouteError("no such backend", permanent=True)
        if self.route.fail == "crash":
            raise KeyError("bug")
        return RouteResult(self.name, True, f"writes to {plan.primary}")


@pytest.fixture
def fake_routes():
    APPLIED.clear()
    register_driver("fake")(RecordingDriver)
    routes: list[FakeRoute] = []
    set_routes_provider(lambda cluster: routes)
    yield routes
    set_routes_provider(None)
    unregister_driver("fake")


def test_without_a_provider_a_cluster_has_no_routes():
    assert cluster_routes(object()) == []
    assert announce_primary_leaving("acme/main", "127.0.0.1:1") == []


def test_the_registry_knows_registered_drivers_only(fake_routes):
    assert driver_for("fake") is RecordingDriver and RecordingDriver.kind == "fake"
    assert driver_for("no-such-kind") is None
    with pytest.raises(ValueError, match="already registered"):
        register_driver("fake")(type("Other", (RouteDriver,), {}))
    with pytest.raises(TypeError):
        register_driver("bad")(object)  # type: ignore[arg-type]


def test_both_announcements_reach_every_route_with_the_plan(fake_routes):
    fake_routes += [FakeRoute(1, "fake"), FakeRoute(2, "fake")]
    leaving = announce_primary_leaving(
        "acme/main", "10.0.0.1:3306", replicas=["10.0.0.2:3306"], epoch=7, job_id=3
    )
    assert [r.ok for r in leaving] == [True, True]
    plan = APPLIED[0][1]
    assert (plan.phase, plan.primary, plan.old_primary, plan.epoch, plan.job_id) == (
        PRIMARY_LEAVING,
        None,
        "10.0.0.1:3306",
        7,
        3,
    )
    changed = announce_new_primary("acme/main", "10.0.0.2:3306", old_primary="10.0.0.1:3306")
    assert all(r.ok for r in changed)
    assert APPLIED[-1][1].phase == PRIMARY_CHANGED and APPLIED[-1][1].primary == "10.0.0.2:3306"


def test_a_failing_route_is_reported_not_raised(fake_routes):
    fake_routes += [
        FakeRoute(1, "fake", "route_error"),
        FakeRoute(2, "fake", "permanent"),
        FakeRoute(3, "fake", "crash"),
        FakeRoute(4, "unknown-kind"),
        FakeRoute(5, "fake"),
    ]
    results = announce_new_primary("acme/main", "10.0.0.2:3306")
    by_route = {r.route: r for r in results}
    assert not by_route["fake:1"].ok and not by_route["fake:1"].permanent
    # What the proxy said goes to the operator's log; the tenant reads one generic failure.
    assert (
        "proxy did not answer" not in by_route["fake:1"].detail
        and "not reachable" in by_route["fake:1"].detail
    )
    assert not by_route["fake:2"].ok and by_route["fake:2"].permanent
    assert not by_route["fake:3"].ok and by_route["fake:3"].detail == by_route["fake:1"].detail
    assert not by_route["unknown-kind:4"].ok and "no driver" in by_route["unknown-kind:4"].detail
    assert by_route["fake:5"].ok
