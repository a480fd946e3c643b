"""Pytest fixtures that give tests real, replicating MariaDB clusters (clusters.providers.LocalSandbox).

- `sandbox_factory`: call it to start a cluster (`sandbox_factory(nodes=3, semi_sync=True, ...)`); every
  cluster it started is destroyed when the test ends. For tests that break a cluster on purpose.
- `sandbox_cluster`: one 3-node cluster shared by a test module; leave it as you found it.
- `sandbox_netns_cluster`: the same, each node in its own network namespace (cut/heal); root only.

Sandboxes are temporary: they record the test run's pid, and a later run removes those whose run died.
Network-namespace mode is skipped only on a machine where the tests do not run as root; anywhere else a
failure to create namespaces fails the test with the reason.
"""

from __future__ import annotations

import os
import secrets

import pytest

from clusters.providers import LocalSandbox


def _new_sandbox(nodes: int, **options) -> LocalSandbox:
    """A sandbox with a fresh name, not started yet."""
    if options.get("netns") and os.geteuid() != 0:
        pytest.skip("network-namespace mode needs root (ip netns add); these tests run as root in CI")
    return LocalSandbox(f"t-{secrets.token_hex(4)}", nodes, temporary=True, **options)


def pytest_sessionstart(session):
    """Remove the clusters of earlier test runs that were killed before their teardown."""
    LocalSandbox.remove_abandoned()


@pytest.fixture
def sandbox_factory():
    started: list[LocalSandbox] = []

    def start(nodes: int = 3, **options) -> LocalSandbox:
        sandbox = _new_sandbox(nodes, **options)
        started.append(sandbox)
        sandbox.up()  # a failed start removes what it started and raises SandboxError with the reason
        return sandbox

    yield start
    for sandbox in reversed(started):
        sandbox.destroy()


@pytest.fixture(scope="module")
def sandbox_cluster():
    sandbox = _new_sandbox(3)
    sandbox.up()
    yield sandbox
    sandbox.destroy()


@pytest.fixture(scope="module")
def sandbox_netns_cluster():
    sandbox = _new_sandbox(3, netns=True)
    sandbox.up()
    yield sandbox
    sandbox.destroy()
