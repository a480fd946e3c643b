"""Schemathesis against /api/schema/: requests generated from the OpenAPI schema (valid and invalid ones),
sent with a valid team admin token, must never get a 5xx.

Bounded in time: DBPILOT_SCHEMATHESIS_SECONDS (default 45) for the whole run, shared evenly among the
operations (one that is slow cannot starve the others); at most DBPILOT_SCHEMATHESIS_EXAMPLES (default
15) examples per operation and generation mode. Every example runs inside a
savepoint that is rolled back, so each starts from the same world (a DELETE cannot starve the rest).
Generated server addresses can only reach loopback: the allowlist is narrowed to it and host names
other than IP literals and localhost do not resolve (no DNS query leaves the machine).

Hostile inputs ride along: every valid example is sent again with a control character or line separator
(`\n`, `\r`, `\t`, NUL, U+2028) appended to each of its strings (body, query and path parameters), and
every operation that takes a body also gets a 20 kB `[[[...]]]` and a deeply nested object.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import socket
import time

import pytest
from django.db import transaction
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable

pytestmark = pytest.mark.django_db

BUDGET_SECONDS = float(os.environ.get("DBPILOT_SCHEMATHESIS_SECONDS", "45"))
EXAMPLES = int(os.environ.get("DBPILOT_SCHEMATHESIS_EXAMPLES", "15"))
SEPARATORS = ["\n", "\r", "\t", "\x00", "\u2028"]
DEEP_BODIES = ["[" * 20000 + "]" * 20000, '{"a":' * 20000 + "1" + "}" * 20000]


def _with_separator(value, separator: str):
    """`value` with `separator` appended to every string in it (keys untouched)."""
    if isinstance(value, str):
        return value + separator
    if isinstance(value, dict):
        return {k: _with_separator(v, separator) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_separator(v, separator) for v in value]
    return value


def _send_hostile(case, headers: dict, index: int, failures: list[str], label: str) -> int:
    """Send the case again with separators in its strings, and (first example only) deep bodies."""
    from werkzeug.test import Client  # not Django's test client: it reconnects close_old_connections

    from controlplane.wsgi import application

    sent = 0
    separator = SEPARATORS[index % len(SEPARATORS)]
    originals = {}
    for part in ("body", "query", "path_parameters"):
        value = getattr(case, part, None)
        if isinstance(value, (dict, list, str)) and value:
            originals[part] = value
            setattr(case, part, _with_separator(copy.deepcopy(value), separator))
    if originals:
        started = time.monotonic()
        with transaction.atomic():
            try:
                response = case.call(headers=headers)
            except Exception as exc:  # noqa: BLE001 - a path the client cannot even encode is no server error
                response = None
                if "500" in str(exc):
                    failures.append(f"{label} (separator {separator!r}): {exc}")
            finally:
                for part, value in originals.items():
                    setattr(case, part, value)
            transaction.set_rollback(True)
        sent += 1
        if os.environ.get("DBPILOT_SCHEMATHESIS_DEBUG"):
            print(
                label,
                repr(separator),
                round(time.monotonic() - started, 2),
                response and response.status_code,
            )
        if response is not None and response.status_code >= 500:
            failures.append(
                f"{label} (separator {separator!r}): {response.status_code} {response.text[:200]!r}"
            )
    if index == 0 and case.method.upper() in ("POST", "PUT", "PATCH"):
        client = Client(application)
        for body in DEEP_BODIES:
            with transaction.atomic():
                response = client.open(
                    case.formatted_path,
                    method=case.method.upper(),
                    data=body,
                    content_type="application/json",
                    headers=headers,
                )
                transaction.set_rollback(True)
            sent += 1
            if response.status_code >= 500:
                failures.append(f"{label} (deep body): {response.status_code} {response.get_data()[:200]!r}")
    return sent


@pytest.fixture
def loopback_only(settings, monkeypatch):
    settings.DBPILOT_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        try:
            ipaddress.ip_address(name)
        except (TypeError, ValueError):
            if name not in ("localhost", None):
                raise socket.gaierror(socket.EAI_NONAME, "name resolution is off in this test") from None
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def wsgi_in_test_transaction():
    """Django's WSGI handler closes the database connection around each request (as the test client
    does not); keep the test's connection, and its transaction, open while schemathesis calls the app."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def fuzz(operation, mode, deadline: float, headers: dict, failures: list[str]) -> tuple[int, bool]:
    """Send up to EXAMPLES generated requests for one operation until `deadline`.
    Returns (requests sent, whether the deadline cut it short); 5xx answers go to `failures`."""
    sent, cut_short = 0, False
    if os.environ.get("DBPILOT_SCHEMATHESIS_DEBUG"):
        print("fuzz", operation.label, mode.value, round(deadline - time.monotonic(), 1), flush=True)

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        nonlocal sent, cut_short
        if sent and time.monotonic() > deadline:  # one example always goes: a loaded machine still tests all
            cut_short = True
            return
        with transaction.atomic():
            response = case.call(headers=headers)
            transaction.set_rollback(True)
        sent += 1
        if response.status_code >= 500:
            failures.append(
                f"{operation.label} ({mode.value}): {response.status_code} "
                f"{response.text[:200]!r}\n    {case.as_curl_command(headers=headers)}"
            )
        if mode.value == "positive":
            sent += _send_hostile(case, headers, sent - 1, failures, operation.label)

    try:
        run()
    except Unsatisfiable:  # e.g. no invalid request exists for an operation without inputs
        pass
    return sent, cut_short


def test_generated_requests_never_get_a_server_error(world, loopback_only, wsgi_in_test_transaction):
    import schemathesis
    from schemathesis.generation import GenerationMode

    from controlplane.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, "the schema lists the API's operations"
    headers = {"Authorization": f"Bearer {world.tokens['admin']}"}
    failures: list[str] = []
    calls, cut_short = 0, set()
    started = time.monotonic()
    for index, operation in enumerate(operations):
        # Operation i may run until its share of the budget, plus whatever earlier ones left unused.
        deadline = started + BUDGET_SECONDS * (index + 1) / len(operations)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            sent, cut = fuzz(operation, mode, deadline, headers, failures)
            calls += sent
            if cut:
                cut_short.add(operation.label)

    elapsed = time.monotonic() - started
    print(
        f"\nschemathesis: {calls} requests over {len(operations)} operations in {elapsed:.1f} s"
        + (f"; the time budget cut {len(cut_short)} operations short" if cut_short else "")
    )
    assert calls > len(operations), "every operation got requests"
    assert not failures, f"{len(failures)} server errors:\n  " + "\n  ".join(dict.fromkeys(failures))
