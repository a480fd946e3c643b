"""Secrets at rest: encrypted with MultiFernet, rotatable, never returned by the API; and, after the whole
test run, no plaintext server password or token secret in the control-plane database file or the logs."""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from clusters.models import Cluster
from controlplane import crypto
from controlplane.crypto import decrypt_json, encrypt_json, encrypted_fields
from tenants import tokens as token_format

ROOT = Path(__file__).resolve().parents[2]
BEARER = re.compile(rb"dbp_[a-z0-9]{12}_[A-Za-z0-9_-]{20,}")


@pytest.mark.django_db
def test_credentials_are_encrypted_and_never_returned(world):
    password, replication_password = world.cluster_x.test_passwords
    stored = Cluster.objects.get(pk=world.cluster_x.pk)
    assert password not in stored.credentials_encrypted
    assert decrypt_json(stored.credentials_encrypted) == {"user": "dbpilot", "password": password}
    for url in (
        f"/api/v1/clusters/{world.cluster_x.id}/",
        "/api/v1/clusters/",
        f"/api/v1/clusters/{world.cluster_x.id}/topology/",
    ):
        text = world.client("alice").get(url).content.decode()
        assert password not in text and replication_password not in text and "credentials" not in text


def test_a_value_from_an_unknown_key_is_a_clear_error(settings):
    foreign = Fernet(Fernet.generate_key()).encrypt(b'{"password": "x"}').decode()
    with pytest.raises(ValueError, match="DBPILOT_FERNET_KEYS"):
        decrypt_json(foreign)
    settings.DBPILOT_FERNET_KEYS = ["not-a-key"]
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="invalid key"):
        encrypt_json({"a": 1})


@pytest.mark.django_db
def test_encrypted_fields_are_discovered_and_can_be_registered(monkeypatch):
    found = {(model._meta.label, name) for model, name in encrypted_fields()}
    assert {
        ("clusters.Cluster", "credentials_encrypted"),
        ("clusters.Cluster", "replication_credentials_encrypted"),
    } <= found
    monkeypatch.setattr(crypto, "_registered", {("tenants.Tenant", "name")})
    assert (apps.get_model("tenants.Tenant"), "name") in encrypted_fields()


@pytest.mark.django_db
def test_rotate_secrets_reencrypts_every_field_under_the_first_key(world, settings):
    before = {
        c.pk: (decrypt_json(c.credentials_encrypted), decrypt_json(c.replication_credentials_encrypted))
        for c in Cluster.objects.all()
    }
    new_key = Fernet.generate_key().decode()
    settings.DBPILOT_FERNET_KEYS = [new_key, *settings.DBPILOT_FERNET_KEYS]
    dry = io.StringIO()
    call_command("rotate_secrets", "--dry-run", stdout=dry)
    assert (
        "clusters.Cluster.credentials_encrypted: 3 to re-encrypt, 0 already under the first key"
        in dry.getvalue()
    )
    assert not any(crypto.encrypted_under_first_key(c.credentials_encrypted) for c in Cluster.objects.all())

    out = io.StringIO()
    call_command("rotate_secrets", stdout=out)
    assert "clusters.Cluster.replication_credentials_encrypted: 3 re-encrypted" in out.getvalue()
    settings.DBPILOT_FERNET_KEYS = [new_key]  # the old key can now go
    after = {
        c.pk: (decrypt_json(c.credentials_encrypted), decrypt_json(c.replication_credentials_encrypted))
        for c in Cluster.objects.all()
    }
    assert after == before
    again = io.StringIO()
    call_command("rotate_secrets", stdout=again)
    assert "0 re-encrypted, 3 already under the first key" in again.getvalue()


@pytest.mark.django_db
def test_rotate_secrets_names_what_no_key_decrypts_and_rotates_the_rest(world, settings):
    lost = Fernet(Fernet.generate_key()).encrypt(b'{"password": "lost"}').decode()
    Cluster.objects.filter(pk=world.cluster_x.pk).update(credentials_encrypted=lost)
    settings.DBPILOT_FERNET_KEYS = [Fernet.generate_key().decode(), *settings.DBPILOT_FERNET_KEYS]
    with pytest.raises(CommandError, match=f"clusters.Cluster.credentials_encrypted pk={world.cluster_x.pk}"):
        call_command("rotate_secrets", stdout=io.StringIO())
    assert crypto.encrypted_under_first_key(Cluster.objects.get(pk=world.cluster_y.pk).credentials_encrypted)


# The end-of-run scan (tests/api/conftest.py runs it after every other test of the session).


def _database_files() -> list[Path]:
    if connection.vendor != "sqlite":
        return []
    name = Path(connection.settings_dict["NAME"])
    return [p for p in (name, Path(f"{name}-wal"), Path(f"{name}-journal")) if p.exists()]


def _database_rows_text() -> bytes:
    """Every row of every table as text (what the database answers, on any engine)."""
    chunks = []
    for model in apps.get_models(include_auto_created=True):
        for row in model._base_manager.all().values_list():
            chunks.append(json.dumps(row, default=str))
    return "\n".join(chunks).encode()


def _log_files(session_log_path: Path) -> list[Path]:
    candidates = [
        session_log_path,
        *sorted((ROOT / "tests" / "output").glob("*.log")),
        *sorted(Path(settings.DATA_ROOT).glob("*.log")),
    ]
    return [p for p in candidates if p.exists()]


@pytest.mark.django_db(transaction=True)
def test_no_plaintext_secret_in_database_file_or_logs(plaintext_secrets, session_log_path, make_cluster):
    from rest_framework.test import APIClient

    from tenants.services import create_tenant

    # Commit rows that carry secrets, the way users make them, so the scan sees real writes too.
    marker = f"scan-{secrets.token_hex(6)}"
    created = create_tenant(marker, "ops", f"admin@{marker}.example", "scan-user-password-1", "admin")
    cluster = make_cluster(created.team, marker)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {created.token}")
    new_token = client.post("/api/v1/tokens/", {"name": marker}, format="json").json()["token"]
    client.post(
        f"/api/v1/clusters/{cluster.id}/servers/{cluster.servers.first().id}/maintenance/",
        {"on": True, "password": cluster.test_passwords[0]},
        format="json",
    )
    logging.getLogger("tests.secrets_scan").warning("scan marker %s", marker)

    wanted = {s for s in plaintext_secrets if len(s) >= 8}
    token_secrets = {token_format.parse(bearer)[1] for bearer in (new_token, created.token)}
    assert {*cluster.test_passwords, *token_secrets} <= wanted
    database = b"".join(path.read_bytes() for path in _database_files()) + _database_rows_text()
    logs = {path: path.read_bytes() for path in _log_files(session_log_path)}
    assert marker.encode() in database, "the scan must read the data the tests wrote"
    assert marker.encode() in logs[session_log_path], "the scan must read the session's log records"

    leaks = []
    for secret in sorted(wanted):
        needle = secret.encode()
        if needle in database:
            leaks.append(f"a secret ({secret[:3]}…) in the control-plane database")
        leaks += [f"a secret ({secret[:3]}…) in {path}" for path, text in logs.items() if needle in text]
    for where, text in [("the control-plane database", database), *logs.items()]:
        leaks += [f"a bearer token in {where}" for _ in BEARER.findall(text)[:1]]
    assert not leaks, f"{len(wanted)} secrets looked for:\n  " + "\n  ".join(leaks)
