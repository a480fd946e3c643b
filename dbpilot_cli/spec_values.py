"""A spec's vocabulary, shared by dbpilot_cli.spec (registered clusters, routes, grants) and
dbpilot_cli.spec_provision (provision blocks): the spec and plan records, addresses, credentials and
secret references. Pure except `load_spec_file` and `resolve_secret`, which say so."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class SpecError(ValueError):
    """A spec that cannot be used, with what to fix."""


@dataclass
class Spec:
    name: str
    servers: list[str]
    tenant: str | None = None
    team: str | None = None
    credentials: dict | None = None
    replication_credentials: dict | None = None
    failover_mode: str | None = None
    paused: bool | None = None
    settings: dict = field(default_factory=dict)
    routes: list[dict] = field(default_factory=list)
    grants: list[dict] = field(default_factory=list)
    prune: bool = False
    provision: dict | None = None  # the provision block, normalized (servers is then empty)


@dataclass(frozen=True)
class Change:
    """One step of a plan. `action`: create, update, delete, keep (left alone, said why) or unsupported."""

    action: str
    target: str  # cluster, setting, route, grant, servers, replicas, parameter_group, provision
    name: str
    detail: str = ""
    body: dict | None = None
    ref: Any = None  # what the change acts on: a route id, a team name

    @property
    def changes_something(self) -> bool:
        return self.action in ("create", "update", "delete")


@dataclass(frozen=True)
class State:
    """What the control plane holds for the spec's cluster (None: no such cluster)."""

    cluster: dict | None
    routes: list[dict] = field(default_factory=list)
    grants: dict[str, list[str]] = field(default_factory=dict)  # team name -> permissions on this cluster


def load_spec_file(path: str | Path) -> dict:
    """Read a spec file (I/O): .toml as TOML, anything else as YAML."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec is a mapping with at least `name` and `servers`")
    return data


def coerce_scalar(text: str):
    """`5` -> 5, `true` -> True, `a,b` stays text: for KEY=VALUE arguments."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none"):
        return None
    if re.fullmatch(r"-?\d+", text.strip()):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d+", text.strip()):
        return float(text)
    return text


def address_of(server) -> str:
    """A server written "host:port", {"host", "port"} or "[v6]:port" -> the API's "host:port" form."""
    if isinstance(server, dict):
        host, port = str(server.get("host", "")), int(server.get("port", 3306))
    elif isinstance(server, str):
        text = server.strip()
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port = int(rest.lstrip(":") or 3306)
        elif text.count(":") == 1:
            host, port_text = text.split(":")
            port = int(port_text)
        else:
            host, port = text, 3306
    else:
        raise SpecError(f"server {server!r}: write host:port")
    if not host:
        raise SpecError(f"server {server!r}: the host is missing")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_address(address: str) -> dict:
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return {"host": host, "port": int(rest.lstrip(":"))}
    host, port = address.rsplit(":", 1)
    return {"host": host, "port": int(port)}


def parse_credentials(value, what: str) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict) or "user" not in value or "password" not in value:
        raise SpecError(f"{what}: write {{user: ..., password: env:NAME}}")
    return {"user": str(value["user"]), "password": str(value["password"])}


def resolve_secret(value: str) -> str:
    """`env:NAME` -> the variable's value, `file:PATH` -> the file's content (I/O); anything else as is."""
    if not isinstance(value, str):
        return value
    if value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise SpecError(f"{value}: the environment variable {name} is not set")
        return os.environ[name]
    if value.startswith("file:"):
        try:
            return Path(value[5:]).read_text().rstrip("\n")
        except OSError as exc:
            raise SpecError(f"{value}: cannot read the file ({exc.strerror})") from None
    return value


def show_value(value) -> str:
    return "-" if value is None else str(value)


def pairs(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items()))


def env_name(*parts: str) -> str:
    return "DBPILOT_" + "_".join(re.sub(r"[^A-Za-z0-9]+", "_", p).strip("_").upper() for p in parts if p)
