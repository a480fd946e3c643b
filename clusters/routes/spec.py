"""What a route of each kind is made of, and the strict checks its fields pass before anything is stored.

Plain Python (no Django): `validate_route(kind, data, existing)` returns a `RouteSpec` (settings, secrets
and the endpoint the route dials) or raises `RouteInvalid` with one message per field. The allowlist
checks of the endpoints (DBPILOT_ALLOWED_NETWORKS / _SOCKET_DIRS) need the deployment's settings and
happen in clusters.services.routing, on the `Endpoint` found here.

Names that end up in proxy commands or configs (HAProxy backends and servers, MaxScale server ids, Consul
services) must match `NAME`: the HAProxy runtime API takes `;`-separated commands and a config file takes
directives, so a name can carry neither spaces, `;`, quotes, `#` nor newlines.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from clusters.domain.addresses import AddressError, parse_address, validate_host
from clusters.domain.settings import HOOK_NAME

NAME = re.compile(r"\A[A-Za-z0-9_.-]{1,64}\Z")
# A DNS name in absolute form ("write.db.example."), labels of letters, digits, - and _.
DNS_NAME = re.compile(r"\A(?=.{1,254}\Z)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)+\Z")
MAX_HOSTGROUP = 2**31 - 1
KINDS = ("haproxy", "powerdns", "script", "proxysql", "maxscale", "consul")
CHECKS = ("mysql", "http")


class RouteInvalid(ValueError):
    """One message per offending field."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Endpoint:
    """What a route dials: a unix socket path, or a host and port over TCP (`scheme` says which protocol)."""

    scheme: str  # unix, tcp (HAProxy runtime API), http, https, mysql (ProxySQL admin)
    host: str = ""
    port: int = 0
    path: str = ""  # the socket path (unix) or the base path of an HTTP API

    def text(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.scheme in ("http", "https"):
            return f"{self.scheme}://{host}:{self.port}{self.path}"
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True)
class RouteSpec:
    kind: str
    settings: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict)
    endpoint: Endpoint | None = None


# --- field checks ----------------------------------------------------------------------------------------


def _name(value: Any, what: str = "a name") -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ValueError(f"must be {what} of 1 to 64 letters, digits, '_', '.' or '-'")
    return value


def has_control(value: str) -> bool:
    """Control characters (newlines, tabs, NUL...) and unicode line or paragraph separators."""
    return any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value)


def _text(value: Any, limit: int = 200) -> str:
    if not isinstance(value, str) or not value or len(value) > limit or has_control(value):
        raise ValueError(f"must be a non-empty string of at most {limit} characters on one line")
    return value


def _integer(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and re.fullmatch(r"[0-9]{1,11}", value):
            value = int(value)
        else:
            raise ValueError(f"must be a whole number from {low} to {high}")
    if not low <= value <= high:
        raise ValueError(f"must be a whole number from {low} to {high}")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _dns_name(value: Any) -> str:
    if not isinstance(value, str) or not DNS_NAME.fullmatch(value):
        raise ValueError("must be an absolute DNS name ending with a dot, e.g. write.db.example.")
    return value.lower()


def parse_runtime_api(value: Any) -> Endpoint:
    """`unix:///path/to/socket` or `tcp://host:port` (IPv6 as `tcp://[addr]:port`)."""
    if not isinstance(value, str) or len(value) > 300:
        raise ValueError("must be unix:///path/to/haproxy.sock or tcp://host:port")
    if value.startswith("unix://"):
        path = value[len("unix://") :]
        if not path.startswith("/") or has_control(path) or "/../" in f"{path}/":
            raise ValueError("a unix socket must be an absolute path: unix:///run/dbpilot/haproxy.sock")
        return Endpoint("unix", path=path)
    if value.startswith("tcp://"):
        try:
            address = parse_address(value[len("tcp://") :])
        except AddressError as exc:
            raise ValueError(f"tcp://host:port expected: {exc}") from None
        return Endpoint("tcp", address.host, address.port)
    raise ValueError("must be unix:///path/to/haproxy.sock or tcp://host:port")


def parse_http_url(value: Any) -> Endpoint:
    """An http(s) base URL without credentials, query or fragment."""
    if not isinstance(value, str) or len(value) > 300 or " " in value or has_control(value):
        raise ValueError("must be an http:// or https:// URL")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError("must be an http:// or https:// URL with a valid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials: give them in their own fields (stored encrypted)")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    try:
        host = validate_host(parts.hostname)
    except AddressError as exc:
        raise ValueError(str(exc)) from None
    return Endpoint(
        parts.scheme, host, port or (443 if parts.scheme == "https" else 80), parts.path.rstrip("/")
    )


def _mysql_address(value: Any) -> Endpoint:
    try:
        address = parse_address(value)
    except AddressError as exc:
        raise ValueError(str(exc)) from None
    return Endpoint("mysql", address.host, address.port)


def _bind(value: Any) -> str:
    """A bind address for a generated HAProxy frontend: `host:port`, `*:port` or `[v6]:port`."""
    if isinstance(value, str) and value.startswith("*:"):
        return f"*:{_integer(value[2:], 1, 65535)}"
    try:
        return str(parse_address(value))
    except AddressError as exc:
        raise ValueError(f"must be host:port or *:port ({exc})") from None


def _key_prefix(value: Any) -> str:
    """A relative Consul KV path: segments of NAME characters, never `.` or `..`, no leading `/`."""
    if not isinstance(value, str) or not value or len(value) > 200:
        raise ValueError("must be a relative key path such as dbpilot/prod, of at most 200 characters")
    if value.startswith("/"):
        raise ValueError("must be a relative key path (no leading /), such as dbpilot/prod")
    segments = value.rstrip("/").split("/")
    for segment in segments:
        if segment in (".", "..") or not NAME.fullmatch(segment):
            raise ValueError(
                "must be path segments of 1 to 64 letters, digits, '_', '.' or '-' separated by /, "
                "without . or .. segments"
            )
    return "/".join(segments)


def _check_kind(value: Any) -> str:
    if value not in CHECKS:
        raise ValueError(f"must be one of {', '.join(CHECKS)}")
    return value


def _hook_name(value: Any) -> str:
    if not isinstance(value, str) or not HOOK_NAME.fullmatch(value):
        raise ValueError(
            "must be the name of a script in the hooks directory (letters, digits, . _ -; no path)"
        )
    return value


@dataclass(frozen=True)
class Field:
    check: Any  # value -> cleaned value, raising ValueError
    required: bool = False
    secret: bool = False
    default: Any = None
    endpoint: bool = False  # this field is what the route dials


_FIELDS: dict[str, dict[str, Field]] = {
    "haproxy": {
        "runtime_api": Field(parse_runtime_api, required=True, endpoint=True),
        "write_backend": Field(_name, required=True),
        "read_backend": Field(_name),
        # Used only by the generated haproxy.cfg:
        "check": Field(_check_kind, default="mysql"),
        "check_user": Field(_name, default="haproxy_check"),
        "check_inter_ms": Field(lambda v: _integer(v, 100, 60000), default=1000),
        "health_url": Field(parse_http_url),
        "write_bind": Field(_bind, default="*:3306"),
        "read_bind": Field(_bind, default="*:3307"),
    },
    "powerdns": {
        "api_url": Field(parse_http_url, required=True, endpoint=True),
        "api_key": Field(lambda v: _text(v, 200), required=True, secret=True),
        "server_id": Field(_name, default="localhost"),
        "zone": Field(_dns_name, required=True),
        "write_record": Field(_dns_name, required=True),
        "read_record": Field(_dns_name),
        "ttl": Field(lambda v: _integer(v, 1, 86400), default=5),
    },
    "script": {
        "script": Field(_hook_name, required=True),
    },
    "proxysql": {
        "admin_address": Field(_mysql_address, required=True, endpoint=True),
        "admin_user": Field(_name, required=True),
        "admin_password": Field(lambda v: _text(v, 200), required=True, secret=True),
        "writer_hostgroup": Field(lambda v: _integer(v, 0, MAX_HOSTGROUP), required=True),
        "reader_hostgroup": Field(lambda v: _integer(v, 0, MAX_HOSTGROUP)),
        "save_to_disk": Field(_boolean, default=True),
    },
    "maxscale": {
        "api_url": Field(parse_http_url, required=True, endpoint=True),
        "user": Field(_name, required=True),
        "password": Field(lambda v: _text(v, 200), required=True, secret=True),
    },
    "consul": {
        "api_url": Field(parse_http_url, required=True, endpoint=True),
        "token": Field(lambda v: _text(v, 200), secret=True),
        "key_prefix": Field(_key_prefix, default="dbpilot"),
        "service": Field(_name),
        "node": Field(_name, default="dbpilot-external"),
    },
}
COMMON_FIELDS = ("kind", "name")


def _client_address(value: Any) -> str:
    """Where clients connect through this route (shown in the cluster's `endpoints`, never dialled)."""
    try:
        return str(parse_address(value))
    except AddressError as exc:
        raise ValueError(str(exc)) from None


# Every kind may declare the client-facing addresses of its write and read sides (docs/provisioning.md).
for _kind_fields in _FIELDS.values():
    _kind_fields["client_address"] = Field(_client_address)
    _kind_fields["client_read_address"] = Field(_client_address)


def fields_of(kind: str) -> dict[str, Field]:
    return _FIELDS[kind]


def secret_fields(kind: str) -> list[str]:
    return [name for name, f in _FIELDS.get(kind, {}).items() if f.secret]


def endpoint_of(kind: str, settings: dict[str, Any]) -> Endpoint | None:
    for name, f in _FIELDS[kind].items():
        if f.endpoint and settings.get(name) is not None:
            return f.check(settings[name])
    return None


def validate_route(kind: Any, data: dict[str, Any], existing: RouteSpec | None = None) -> RouteSpec:
    """Clean `data` for a route of `kind`. With `existing` (a change), absent fields keep their values and
    absent secrets stay as stored; `null` clears an optional field."""
    if kind not in _FIELDS:
        raise RouteInvalid({"kind": f"must be one of {', '.join(KINDS)}"})
    if not isinstance(data, dict):
        raise RouteInvalid({"non_field_errors": "the body must be a JSON object"})
    fields = _FIELDS[kind]
    errors: dict[str, str] = {}
    for key in data:
        if key not in fields and key not in COMMON_FIELDS:
            errors[key] = f"is not a field of {kind} routes (fields: {', '.join(fields)})"
    settings = dict(existing.settings) if existing else {}
    secrets = dict(existing.secrets) if existing else {}
    for name, f in fields.items():
        if name in data and data[name] is not None and data[name] != "":
            try:
                value = f.check(data[name])
            except ValueError as exc:
                errors[name] = str(exc)
                continue
            if f.secret:
                secrets[name] = value
            else:
                # Endpoints are stored as given (their parsed form is recomputed when used).
                settings[name] = data[name] if f.endpoint or isinstance(value, Endpoint) else value
        elif name in data and not f.required:
            settings.pop(name, None)
            secrets.pop(name, None)
        if name not in data and existing is None and f.default is not None:
            settings[name] = f.default
        if f.required and not (settings.get(name) if not f.secret else secrets.get(name)):
            errors.setdefault(name, "is required")
    if kind == "haproxy" and settings.get("check") == "http" and not settings.get("health_url"):
        errors.setdefault(
            "health_url", "is required when check is http (the base URL HAProxy reaches dbpilot at)"
        )
    if (
        kind == "haproxy"
        and settings.get("read_backend")
        and settings.get("read_backend") == settings.get("write_backend")
    ):
        errors.setdefault("read_backend", "must differ from write_backend")
    if kind == "powerdns" and not errors:
        zone = settings["zone"]
        for record in ("write_record", "read_record"):
            name = settings.get(record)
            if name and not (name == zone or name.endswith("." + zone)):
                errors[record] = f"must be inside the zone {zone}"
        if settings.get("read_record") and settings.get("read_record") == settings["write_record"]:
            errors["read_record"] = "must differ from write_record"
    if errors:
        raise RouteInvalid(errors)
    return RouteSpec(kind, settings, secrets, endpoint_of(kind, settings))


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
