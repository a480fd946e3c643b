"""Tokens never reach the web server's access log: a real daphne serves a request with a token in its
query string, and its log line keeps the path but not the secret. (The log file lands in tests/output/,
which the end-of-run secrets scan reads too.)"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

import pytest

from controlplane.accesslog import scrub_uri
from tests.services_plugin import ManagedProcess, _bin, worker_environment

pytestmark = [pytest.mark.api]

FAKE = "dbp_abcdefghijkl_" + "S3cretS3cretS3cretS3cretS3cret0123"


@pytest.mark.parametrize(
    "uri, kept, gone",
    [
        (f"/api/v1/clusters/?token={FAKE}", "/api/v1/clusters/?token=***", FAKE),
        ("/api/v1/clusters/?page=2&access_token=abc123def", "page=2&access_token=***", "abc123def"),
        (f"/api/v1/clusters/?q={FAKE}&page=1", "page=1", FAKE),
        (f"/x/{FAKE}/", "/x/dbp_***/", FAKE),
        ("/api/v1/clusters/?api_key=k%20ey&name=prod", "api_key=***&name=prod", "k%20ey"),
    ],
)
def test_scrub_uri_masks_secret_looking_values(uri, kept, gone):
    scrubbed = scrub_uri(uri)
    assert kept in scrubbed and gone not in scrubbed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_the_web_servers_access_log_keeps_no_token():
    port = _free_port()
    web = ManagedProcess(
        f"web-accesslog-{port}",
        [_bin("daphne"), "-b", "127.0.0.1", "-p", str(port), "controlplane.asgi:application"],
        worker_environment(),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/auth/csrf/?token={FAKE}", timeout=2)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                assert web.alive() and time.monotonic() < deadline, web.log_text()[-2000:]
                time.sleep(0.2)
        for _ in range(50):
            if "/api/v1/auth/csrf/" in web.log_text():
                break
            time.sleep(0.1)
    finally:
        web.stop()
    text = web.log_text()
    assert "/api/v1/auth/csrf/?token=***" in text, text[-2000:]
    assert FAKE not in text and "S3cret" not in text
