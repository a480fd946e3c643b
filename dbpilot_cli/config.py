"""Where the CLI finds the API and its token: DBPILOT_URL and DBPILOT_TOKEN, else the file `dbpilot login`
wrote ($XDG_CONFIG_HOME/dbpilot/config.toml, mode 0600); the environment wins over the file."""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from dbpilot_cli.errors import USAGE, CliError


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dbpilot" / "config.toml"


@dataclass(frozen=True)
class Config:
    url: str
    token: str


def load_config(require_token: bool = True) -> Config:
    """`require_token=False`: operators' commands sign in with a password instead (client.py)."""
    stored: dict = {}
    path = config_path()
    if path.exists():
        try:
            stored = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CliError(f"cannot read {path}: {exc}", USAGE) from None
    url = os.environ.get("DBPILOT_URL") or stored.get("url") or ""
    token = os.environ.get("DBPILOT_TOKEN") or stored.get("token") or ""
    if not url:
        raise CliError("no API address: set DBPILOT_URL or run `dbpilot login`", USAGE)
    if not token and require_token:
        raise CliError("no token: set DBPILOT_TOKEN or run `dbpilot login`", USAGE)
    return Config(url=url.rstrip("/"), token=token)


def save_config(url: str, token: str) -> Path:
    """Write the file with mode 0600 from its creation (never readable by others, even for a moment)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # json.dumps writes a valid TOML basic string for these values (quotes and backslashes escaped).
    text = f"url = {json.dumps(url.rstrip('/'))}\ntoken = {json.dumps(token)}\n"
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
