"""Secrets at rest: JSON values encrypted with MultiFernet (the first key encrypts, every key decrypts)."""
from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in settings.DBPILOT_FERNET_KEYS])


def encrypt_json(value) -> str:
    return _fernet().encrypt(json.dumps(value).encode()).decode()


def decrypt_json(token: str):
    if not token:
        return None
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise ValueError("cannot decrypt a stored secret: is DBPILOT_FERNET_KEYS missing the key it was written with?") from None


def rotate(token: str) -> str:
    """Re-encrypt under the first (newest) key."""
    return _fernet().rotate(token.encode()).decode() if token else token
