"""Shared test configuration: plugins with the sandbox (real MariaDB) and service (Redis, Celery) fixtures."""

import os

pytest_plugins = ["tests.sandbox_plugin", "tests.services_plugin"]

# Only loopback and the namespaces tests create are ever dialled (see controlplane/test_settings.py).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.test_settings")
