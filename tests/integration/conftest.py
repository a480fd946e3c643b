"""Integration tests run against real servers (tests/sandbox_plugin.py starts them): every test in this
directory carries the `integration` marker, so `-m integration` selects them and `-m "not integration"`
leaves them out."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.integration.provisioning_helpers import TEST_PORTS


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def local_servers(settings, clean_redis):
    """Jobs run inline; the local provider's servers go under a directory of this test, removed after it
    (every server killed first), so no test leaves a mariadbd behind."""
    settings.DBPILOT_FAILOVER_RUNNER = "inline"
    root = Path(tempfile.mkdtemp(prefix="p", dir="/tmp/dbp" if Path("/tmp/dbp").is_dir() else None))
    os.chmod(root, 0o755)
    settings.DBPILOT_LOCAL_SERVERS_ROOT = root
    settings.DBPILOT_LOCAL_PORTS = TEST_PORTS
    from clusters.providers.local_provider import LocalProvider

    provider = LocalProvider(root, TEST_PORTS)
    yield provider
    for instance in provider.instances():
        provider.destroy(instance)
    shutil.rmtree(root, ignore_errors=True)
