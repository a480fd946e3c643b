"""Shared API fixtures: two tenants, the people in them, every kind of token, and clusters made directly
through the models (no live servers).

The `world` fixture (function scope, rolled back after each test) holds, in the healthchecks manner:

    tenant A "acme", team A "ops":
        alice    tenant A admin, admin of team A
        bob      viewer on team A
        oscar    operator on team A
        cluster_x, cluster_y   tenant A clusters granted (view, operate, admin) to team A
                               (cluster_x has a job, `world.job_x`)
    tenant B "globex", team B "dev":
        charlie  tenant B admin, admin of team B (sees nothing of tenant A)
        cluster_z              tenant B cluster granted to team B
    root         a platform operator (Django superuser), in no team

    world.tokens[name] -> bearer value; world.token_rows[name] -> ApiToken:
        "admin", "operate", "read"   team A tokens of each scope
        "restricted"                 team A, admin scope, restricted to cluster_y only
        "expired", "revoked"         team A admin tokens that no longer work
        "tenant_b"                   team B admin token (charlie's team)

    world.client("alice") / world.client("token:read") / world.client(None) -> an APIClient (people log
    in with a session; tokens send `Authorization: Bearer ...`); world.ws_headers(...) the same for a
    websocket handshake; world.label("bob") -> the audit actor label.

Fixtures with the same names (`alice`, `bob`, `charlie`, `team_a`, `cluster_x`, ...) return the parts.
`make_cluster(team, name, ...)` creates a registered cluster directly and grants it to the team.
`websocket_in_test_transaction` lets a sync test drive consumers with async_to_sync(...) and
channels.testing.WebsocketCommunicator (see tests/api/test_permissions.py).

Every plaintext secret this session encrypts or issues is remembered (`plaintext_secrets`), and every
log record goes to a file, so tests/api/test_secrets.py can check, after everything else ran, that
none reached the database file or the logs.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import MultiFernet
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from tenants import tokens as token_format
from tenants.access import CLUSTER_PERMISSIONS
from tenants.audit import is_secret_key
from tenants.models import Role, Team, Tenant, TenantAdmin

# The end-of-run scan must see everything else: it is moved to the very end of the session.
RUN_LAST = "test_no_plaintext_secret_in_database_file_or_logs"

# Plaintext secrets seen in this session (encrypted at rest, or issued as bearer tokens), for the scan.
_SEEN_SECRETS: set[str] = set()
_LOG_PATH = Path(settings.DATA_ROOT) / f"pytest-logging-{os.getpid()}.log"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/tests/api/" in str(item.path):
            item.add_marker(pytest.mark.api)
    last = [item for item in items if item.name == RUN_LAST]
    for item in last:
        items.remove(item)
        items.append(item)


def _remember_secret_leaves(value) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            if is_secret_key(key) and isinstance(inner, str) and len(inner) >= 8:
                _SEEN_SECRETS.add(inner)
            else:
                _remember_secret_leaves(inner)
    elif isinstance(value, list):
        for inner in value:
            _remember_secret_leaves(inner)


class _KeepSessionLogHandler:
    """A plugin (so it sees every test, not only tests/api ones) that re-attaches the session's log file
    handler before each test phase: django.setup() (run again by importing the ASGI or WSGI app) applies
    LOGGING with dictConfig, which drops the root logger's handlers."""

    def __init__(self, handler: logging.Handler):
        self.handler = handler

    def _attach(self) -> None:
        root = logging.getLogger()
        if self.handler not in root.handlers:
            root.addHandler(self.handler)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        self._attach()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item):
        self._attach()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item):
        self._attach()


@pytest.fixture(scope="session", autouse=True)
def _record_secrets_and_logs(pytestconfig):
    """Spy (not mock) on encryption and token issuance, and copy every log record to a file."""
    original_encrypt = MultiFernet.encrypt
    original_new_token = token_format.new_token

    def encrypt(self, data: bytes) -> bytes:
        try:
            _remember_secret_leaves(json.loads(data))
        except ValueError:
            pass
        return original_encrypt(self, data)

    def new_token():
        key, secret, bearer = original_new_token()
        _SEEN_SECRETS.add(secret)
        return key, secret, bearer

    handler = logging.FileHandler(_LOG_PATH, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    keeper = _KeepSessionLogHandler(handler)
    keeper._attach()
    pytestconfig.pluginmanager.register(keeper, "dbpilot-session-log")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MultiFernet, "encrypt", encrypt)
        patch.setattr(token_format, "new_token", new_token)
        yield
    pytestconfig.pluginmanager.unregister(keeper)
    logging.getLogger().removeHandler(handler)
    handler.close()
    _LOG_PATH.unlink(missing_ok=True)


@pytest.fixture
def plaintext_secrets() -> set[str]:
    """Every plaintext secret encrypted or issued so far in this session (a live set)."""
    return _SEEN_SECRETS


@pytest.fixture
def session_log_path() -> Path:
    """The file that receives every log record of this test session."""
    return _LOG_PATH


def create_person(username: str, **extra):
    """A user with no usable password (tests log people in with force_login; hashing is slow)."""
    User = get_user_model()
    user = User(username=username, email=username if "@" in username else "", **extra)
    user.set_unusable_password()
    user.save()
    return user


_ALIASES = iter(range(1, 60000))


def _loopback_alias() -> str:
    """A loopback address of its own for each made cluster: one address is one server (127.0.x.y)."""
    number = next(_ALIASES)
    return f"127.0.{number // 250}.{number % 250 + 2}"


def _make_cluster(
    team: Team,
    name: str,
    *,
    servers=None,
    password: str | None = None,
    replication_password: str | None = None,
    settings: dict | None = None,
    perms=CLUSTER_PERMISSIONS,
    primary: bool = True,
):
    """A registered cluster written directly through the models (no servers are contacted), with
    encrypted credentials, granted to `team`. The plaintext passwords are on `cluster.test_passwords`."""
    from clusters.domain.addresses import canonical_ip
    from clusters.models import Cluster, Server
    from controlplane.crypto import encrypt_json
    from tenants.services import grant_cluster

    password = password or f"pw-{secrets.token_urlsafe(12)}"
    replication_password = replication_password or f"repl-{secrets.token_urlsafe(12)}"
    cluster = Cluster.objects.create(
        tenant=team.tenant,
        name=name,
        settings=dict(settings or {}),
        credentials_encrypted=encrypt_json({"user": "dbpilot", "password": password}),
        replication_credentials_encrypted=encrypt_json({"user": "repl", "password": replication_password}),
    )
    if servers is None:  # the first made cluster at 127.0.0.1, the others at addresses of their own
        alias = (
            "127.0.0.1"
            if not Server.objects.filter(ip="127.0.0.1", port=3306).exists()
            else _loopback_alias()
        )
        servers = ((alias, 3306), (alias, 3307))
    created = [
        Server.objects.create(cluster=cluster, host=host, port=port, ip=canonical_ip(host) or host)
        for host, port in servers
    ]
    if primary and created:
        cluster.primary = created[0]
        cluster.save(update_fields=["primary"])
    grant_cluster(team, cluster, perms)
    cluster.test_passwords = (password, replication_password)
    return cluster


def closed_ports(count: int) -> list[int]:
    """`count` distinct loopback ports nobody listens on: all bound at once while chosen (one at a time,
    the kernel may hand out the same port twice, and two servers of a cluster cannot share an address)."""
    import socket

    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


@pytest.fixture
def make_cluster(db):
    """make_cluster(team, name, servers=((host, port), ...), password=None, settings=None, perms=all) -> Cluster."""
    return _make_cluster


def _team(tenant: Tenant, name: str) -> Team:
    from tenants.services import ensure_team

    return ensure_team(tenant, name)


@dataclass
class World:
    """Two tenants, their people, tokens and clusters (see the module docstring)."""

    tenant_a: Tenant
    tenant_b: Tenant
    team_a: Team
    team_b: Team
    alice: object
    bob: object
    oscar: object
    charlie: object
    root: object
    cluster_x: object
    cluster_y: object
    cluster_z: object
    job_x: object
    tokens: dict[str, str] = field(default_factory=dict)
    token_rows: dict = field(default_factory=dict)

    def person(self, name: str):
        return getattr(self, name)

    def client(self, who: str | None) -> APIClient:
        """who: None (anonymous), a person ("alice", "bob", "oscar", "charlie", "root") or "token:<name>"."""
        client = APIClient()
        if who is None:
            return client
        if who.startswith("token:"):
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.tokens[who[len('token:') :]]}")
        else:
            client.force_login(self.person(who))
        return client

    def ws_headers(self, who: str | None) -> list[tuple[bytes, bytes]]:
        """Websocket handshake headers for `who` (a bearer token, or a logged-in session's cookie)."""
        if who is None:
            return []
        if who.startswith("token:"):
            return [(b"authorization", f"Bearer {self.tokens[who[len('token:') :]]}".encode())]
        session = self.client(who).cookies[settings.SESSION_COOKIE_NAME].value
        return [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode())]

    def label(self, who: str) -> str:
        """The audit log's actor label for `who`."""
        if who.startswith("token:"):
            row = self.token_rows[who[len("token:") :]]
            return f"token:{row.key} (team {row.team.name})"
        return f"user:{self.person(who).username}"


@pytest.fixture
def world(db) -> World:
    from clusters.models import Job
    from tenants.services import add_member, issue_token, revoke_token

    tenant_a = Tenant.objects.create(name="acme")
    tenant_b = Tenant.objects.create(name="globex")
    team_a = _team(tenant_a, "ops")
    team_b = _team(tenant_b, "dev")
    alice = create_person("alice@acme.example")
    bob = create_person("bob@acme.example")
    oscar = create_person("oscar@acme.example")
    charlie = create_person("charlie@globex.example")
    root = create_person("root@dbpilot.example", is_superuser=True, is_staff=True)
    TenantAdmin.objects.create(tenant=tenant_a, user=alice)
    TenantAdmin.objects.create(tenant=tenant_b, user=charlie)
    add_member(team_a, alice, Role.ADMIN)
    add_member(team_a, bob, Role.VIEWER)
    add_member(team_a, oscar, Role.OPERATOR)
    add_member(team_b, charlie, Role.ADMIN)
    cluster_x = _make_cluster(team_a, "prod")
    cluster_y = _make_cluster(team_a, "staging")
    cluster_z = _make_cluster(team_b, "prod")
    job_x = Job.objects.create(cluster=cluster_x, kind="switchover", state="succeeded", requested_by="test")
    world = World(
        tenant_a,
        tenant_b,
        team_a,
        team_b,
        alice,
        bob,
        oscar,
        charlie,
        root,
        cluster_x,
        cluster_y,
        cluster_z,
        job_x,
    )
    specs = {
        "admin": (team_a, "admin", {}),
        "operate": (team_a, "operate", {}),
        "read": (team_a, "read", {}),
        "restricted": (team_a, "admin", {"clusters": [cluster_y]}),
        "expired": (team_a, "admin", {"expires_at": timezone.now() - timedelta(minutes=1)}),
        "revoked": (team_a, "admin", {}),
        "tenant_b": (team_b, "admin", {}),
    }
    for name, (team, scope, options) in specs.items():
        row, bearer = issue_token(
            team, scope, name=name, created_by=alice if team == team_a else charlie, **options
        )
        world.tokens[name] = bearer
        world.token_rows[name] = row
    revoke_token(world.token_rows["revoked"])
    return world


@pytest.fixture
def websocket_in_test_transaction(settings, monkeypatch):
    """For websocket tests run with asgiref's async_to_sync from a normal (sync) test: the consumers'
    database calls then run in this thread, inside the test's transaction. Keeps Channels from closing
    that connection around each call, and uses the in-memory channel layer."""
    import channels.db

    monkeypatch.setattr(channels.db, "close_old_connections", lambda: None)
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def tenant_a(world):
    return world.tenant_a


@pytest.fixture
def tenant_b(world):
    return world.tenant_b


@pytest.fixture
def team_a(world):
    return world.team_a


@pytest.fixture
def team_b(world):
    return world.team_b


@pytest.fixture
def alice(world):
    return world.alice


@pytest.fixture
def bob(world):
    return world.bob


@pytest.fixture
def oscar(world):
    return world.oscar


@pytest.fixture
def charlie(world):
    return world.charlie


@pytest.fixture
def cluster_x(world):
    return world.cluster_x


@pytest.fixture
def cluster_y(world):
    return world.cluster_y


@pytest.fixture
def cluster_z(world):
    return world.cluster_z


@pytest.fixture
def tokens(world) -> dict[str, str]:
    return world.tokens
