"""Server addresses: `host:port`, IPv6 as `[addr]:port`; and the operator's network allowlist check."""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


class AddressError(ValueError):
    pass


@dataclass(frozen=True, order=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return format_address(self.host, self.port)


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def validate_host(host: object) -> str:
    if not isinstance(host, str) or not host:
        raise AddressError("host must be a non-empty string")
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        pass
    if not HOSTNAME.match(candidate):
        raise AddressError(f"host {host!r} is not an IP address or a valid host name")
    return candidate.lower()


def validate_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int):
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        else:
            raise AddressError(f"port {port!r} must be a whole number from 1 to 65535")
    if not 1 <= port <= 65535:
        raise AddressError(f"port {port} must be from 1 to 65535")
    return port


def parse_address(text: object) -> Address:
    """Parse `host:port` or `[v6]:port`."""
    if not isinstance(text, str):
        raise AddressError("an address must be a string written host:port")
    match = re.match(r"^\[([^\]]+)\]:(\d{1,5})$", text) or re.match(r"^([^:\[\]]+):(\d{1,5})$", text)
    if not match:
        raise AddressError(f"{text!r} is not written host:port (IPv6 as [addr]:port)")
    return Address(validate_host(match.group(1)), validate_port(int(match.group(2))))


def ip_allowed(ip: str, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in networks)
