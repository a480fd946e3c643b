"""The route driver registry (empty here: the routing issue registers HAProxy, PowerDNS, script...).

@register_driver("haproxy")
class HaproxyRuntimeDriver(RouteDriver): ...
"""

from __future__ import annotations

from clusters.routes.base import RouteDriver

_DRIVERS: dict[str, type[RouteDriver]] = {}


def register_driver(kind: str):
    """Class decorator: make `kind` routes use this driver."""

    def decorate(cls: type[RouteDriver]) -> type[RouteDriver]:
        if not issubclass(cls, RouteDriver):
            raise TypeError(f"{cls.__name__} must subclass RouteDriver")
        existing = _DRIVERS.get(kind)
        if existing is not None and existing is not cls:
            raise ValueError(f"a route driver for {kind!r} is already registered ({existing.__name__})")
        cls.kind = kind
        _DRIVERS[kind] = cls
        return cls

    return decorate


def driver_for(kind: str) -> type[RouteDriver] | None:
    return _DRIVERS.get(kind)


def registered_kinds() -> list[str]:
    return sorted(_DRIVERS)


def unregister_driver(kind: str) -> None:
    """For tests that register a throwaway driver."""
    _DRIVERS.pop(kind, None)
