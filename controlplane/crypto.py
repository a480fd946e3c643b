"""Secrets at rest: JSON values encrypted with MultiFernet (the first key encrypts, every key decrypts).

Which columns hold encrypted values: every model field whose name ends in `_encrypted` (the naming
convention, e.g. clusters.Cluster.credentials_encrypted), plus any field registered with
`register_encrypted_field` (for a name that cannot follow the convention). `manage.py rotate_secrets`
re-encrypts all of them under the first key, so an old key can then be dropped.
"""

from __future__ import annotations

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ENCRYPTED_SUFFIX = "_encrypted"
_registered: set[tuple[str, str]] = set()


@lru_cache(maxsize=4)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("DBPILOT_FERNET_KEYS is empty: secrets at rest need at least one key.")
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "DBPILOT_FERNET_KEYS holds an invalid key: each must be 32 url-safe base64-encoded bytes "
            "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
        ) from None


def _fernet() -> MultiFernet:
    return _fernet_for(tuple(settings.DBPILOT_FERNET_KEYS))


def encrypt_json(value) -> str:
    return _fernet().encrypt(json.dumps(value).encode()).decode()


def decrypt_json(token: str):
    if not token:
        return None
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise ValueError(
            "cannot decrypt a stored secret: is DBPILOT_FERNET_KEYS missing the key it was written with?"
        ) from None


def rotate(token: str) -> str:
    """Re-encrypt under the first (newest) key; raises ValueError when no key decrypts it."""
    if not token:
        return token
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise ValueError(
            "cannot decrypt a stored secret: is DBPILOT_FERNET_KEYS missing the key it was written with?"
        ) from None


def encrypted_under_first_key(token: str) -> bool:
    """Whether the newest key alone decrypts this value (nothing left to rotate)."""
    if not token:
        return True
    try:
        Fernet(settings.DBPILOT_FERNET_KEYS[0].encode()).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def register_encrypted_field(model_label: str, field_name: str) -> None:
    """Declare an encrypted column whose name does not end in `_encrypted` ("app_label.Model", "field")."""
    _registered.add((model_label, field_name))


def encrypted_fields() -> list[tuple[type, str]]:
    """Every (model, field name) that holds encrypted values, in a stable order."""
    found = set()
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if field.name.endswith(ENCRYPTED_SUFFIX):
                found.add((model._meta.label, field.name))
    found |= _registered
    return [(apps.get_model(label), name) for label, name in sorted(found)]
