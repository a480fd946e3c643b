"""`REDIS_URL`: one plain Redis (`redis://`, `rediss://`) or a Redis behind Sentinel (`sentinel://`).

    sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB][?sentinel_password=SECRET]

The hosts are the Sentinels (IPv6 as `[addr]:port`), MASTER_NAME the name they monitor the master by,
DB the database number (default 0), PASSWORD the Redis master's password and `sentinel_password` the
Sentinels' own password when they require one. From it, each client gets its own form: the Celery broker
(kombu's sentinel transport), the beat lease (celery-redbeat), the Channels layer (channels-redis) and the
hot-state client (redis-py's Sentinel). Each asks the Sentinels for the master when it (re)connects, so a
Sentinel failover needs no restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote

import redis
from redis.sentinel import Sentinel

SENTINEL_SCHEME = "sentinel://"
DEFAULT_SENTINEL_PORT = 26379


class RedisUrlError(ValueError):
    pass


@dataclass(frozen=True)
class RedisTarget:
    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str = ""
    db: int = 0
    password: str | None = None
    sentinel_password: str | None = None

    @property
    def is_sentinel(self) -> bool:
        return bool(self.sentinels)


def _host_port(part: str) -> tuple[str, int]:
    if part.startswith("["):
        host, sep, rest = part[1:].partition("]")
        if not sep:
            raise RedisUrlError(f"unclosed '[' in {part!r}")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = part.rpartition(":") if ":" in part else (part, "", "")
    if not host:
        raise RedisUrlError(f"a Sentinel host is missing in {part!r}")
    try:
        return host, int(port) if port else DEFAULT_SENTINEL_PORT
    except ValueError:
        raise RedisUrlError(f"the port of {part!r} is not a number") from None


def parse(url: str) -> RedisTarget:
    """Parse REDIS_URL; raises RedisUrlError with what to fix."""
    if not url.startswith(SENTINEL_SCHEME):
        if not url.startswith(("redis://", "rediss://")):
            raise RedisUrlError("use redis://, rediss:// or sentinel:// (see docs/configuration.md)")
        return RedisTarget(url=url)
    rest = url[len(SENTINEL_SCHEME) :]
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        password = unquote(userinfo.partition(":")[2] if ":" in userinfo else userinfo) or None
    sentinels = tuple(_host_port(p.strip()) for p in netloc.split(",") if p.strip())
    if not sentinels:
        raise RedisUrlError("sentinel:// needs at least one Sentinel host:port")
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise RedisUrlError(
            "sentinel:// needs the master name after the hosts: sentinel://h1:26379,h2:26379/mymaster/0"
        )
    if len(parts) > 2:
        raise RedisUrlError("sentinel:// takes /MASTER_NAME[/DB] after the hosts, nothing more")
    try:
        db = int(parts[1]) if len(parts) == 2 else 0
    except ValueError:
        raise RedisUrlError(f"the database number {parts[1]!r} is not a number") from None
    options = parse_qs(query)
    unknown = set(options) - {"sentinel_password"}
    if unknown:
        raise RedisUrlError(f"unknown sentinel:// option(s): {', '.join(sorted(unknown))}")
    sentinel_password = options.get("sentinel_password", [None])[0]
    return RedisTarget(
        url=url,
        sentinels=sentinels,
        master_name=unquote(parts[0]),
        db=db,
        password=password,
        sentinel_password=sentinel_password,
    )


def _sentinel_kwargs(target: RedisTarget) -> dict | None:
    return {"password": target.sentinel_password} if target.sentinel_password else None


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def broker_url(target: RedisTarget) -> str:
    """Celery's broker: kombu's sentinel transport takes one URL per Sentinel, separated by ';'."""
    if not target.is_sentinel:
        return target.url
    auth = f":{quote(target.password, safe='')}@" if target.password else ""
    return ";".join(f"sentinel://{auth}{_host_text(h)}:{p}/{target.db}" for h, p in target.sentinels)


def broker_transport_options(target: RedisTarget) -> dict:
    if not target.is_sentinel:
        return {}
    options: dict = {"master_name": target.master_name}
    if target.sentinel_password:
        options["sentinel_kwargs"] = _sentinel_kwargs(target)
    return options


def redbeat_url(target: RedisTarget) -> str:
    """celery-redbeat's URL; for Sentinel its options (below) carry the hosts."""
    return "redis-sentinel://sentinel" if target.is_sentinel else target.url


def redbeat_options(target: RedisTarget) -> dict:
    if not target.is_sentinel:
        return {}
    return {
        "sentinels": list(target.sentinels),
        "service_name": target.master_name,
        "db": target.db,
        "password": target.password,
        "sentinel_kwargs": _sentinel_kwargs(target),
        "socket_timeout": 2,
    }


def channel_host(target: RedisTarget) -> str | dict:
    """A host entry of channels-redis (which supports Sentinel with master_name and sentinels)."""
    if not target.is_sentinel:
        return target.url
    host: dict = {"master_name": target.master_name, "sentinels": list(target.sentinels), "db": target.db}
    if target.password:
        host["password"] = target.password
    if target.sentinel_password:
        host["sentinel_kwargs"] = _sentinel_kwargs(target)
    return host


def client(target: RedisTarget, **kwargs) -> redis.Redis:
    """A redis-py client of the (current) master: through Sentinel, it asks again after a failover."""
    if not target.is_sentinel:
        return redis.Redis.from_url(target.url, **kwargs)
    sentinel_kwargs = dict(_sentinel_kwargs(target) or {})
    for key in ("socket_timeout", "socket_connect_timeout"):
        if key in kwargs:
            sentinel_kwargs[key] = kwargs[key]
    sentinel = Sentinel(
        list(target.sentinels),
        sentinel_kwargs=sentinel_kwargs,
        db=target.db,
        password=target.password,
        **kwargs,
    )
    return sentinel.master_for(target.master_name)


def describe(target: RedisTarget) -> str:
    """The URL without its secrets, for messages and the health endpoint."""
    if not target.is_sentinel:
        return _redact_plain(target.url)
    hosts = ",".join(f"{_host_text(h)}:{p}" for h, p in target.sentinels)
    return f"sentinel://{hosts}/{target.master_name}/{target.db}"


def _redact_plain(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return f"{scheme}{sep}{rest}"
