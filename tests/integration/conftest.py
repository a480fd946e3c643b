"""Integration tests run against real servers (tests/sandbox_plugin.py starts them): every test in this
directory carries the `integration` marker, so `-m integration` selects them and `-m "not integration"`
leaves them out."""

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)
