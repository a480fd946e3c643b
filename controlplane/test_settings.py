"""Settings for the test suite: the real settings, with the network allowlist narrowed.

Tests may only ever make dbpilot dial loopback and the network namespaces they create
themselves (10.231.0.0/16 is reserved for the test namespaces; nothing else on it is reachable).
"""

import os
import tempfile

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("DBPILOT_DATA_ROOT", os.path.join(tempfile.gettempdir(), "dbpilot-test-var"))
os.environ["DBPILOT_ALLOWED_NETWORKS"] = os.environ.get(
    "DBPILOT_TEST_NETWORKS", "127.0.0.0/8,::1/128,10.231.0.0/16"
)
os.environ["DBPILOT_ALLOWED_WEBHOOK_NETWORKS"] = os.environ["DBPILOT_ALLOWED_NETWORKS"]
os.environ.setdefault("DBPILOT_ALLOWED_SOCKET_DIRS", "/run/dbpilot,/tmp/dbp")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")

from controlplane.settings import *  # noqa: E402,F401,F403

# A file-based test database, so a real Celery worker process started by a test shares it (it is given
# the file through DATABASE_URL), and the secrets scan can read it. One per pytest process, so test runs
# in the same checkout at the same time do not delete each other's database.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_ROOT / f"test-db-{os.getpid()}.sqlite3")}  # noqa: F405
