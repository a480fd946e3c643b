"""Server addresses: `host:port`, IPv6 as `[addr]:port`; their canonical form; the allowlist check.

One address is one server, whatever its spelling: `127.1`, `2130706433`, `0x7f000001`, `127.0.0.01` and
`::ffff:127.0.0.1` all name 127.0.0.1 (the C resolver accepts the numeric forms of inet_aton), so
ownership and allowlists compare `canonical_ip` forms, never the text a user typed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

HOSTNAME = re.compile(
    r"\A(?=.{1,253}\Z)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z"
)
# One part of an inet_aton-style numeric IPv4 address: decimal, 0x hex or 0-prefixed octal.
_NUMERIC_PART = re.compile(r"0[xX][0-9A-Fa-f]*|[0-9]+")


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
    if not HOSTNAME.fullmatch(candidate):
        raise AddressError(f"host {host!r} is not an IP address or a valid host name")
    return candidate.lower()


def numeric_ipv4(text: str) -> str | None:
    """The dotted form of an inet_aton-style numeric address (`127.1`, `2130706433`, `0x7f000001`,
    `127.0.0.01`), or None when `text` is not one. These are what the resolver would make of them."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(_NUMERIC_PART.fullmatch(p) for p in parts):
        return None
    values = []
    for part in parts:
        if part[:2] in ("0x", "0X"):
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if any(ch in "89" for ch in part):
                return None
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for v in head:
        number = number * 256 + v
    number = number * 256 ** (4 - len(head)) + last
    return str(ipaddress.IPv4Address(number))


def canonical_ip(text: str) -> str | None:
    """The canonical text of an IP address written in any form, IPv4-mapped IPv6 folded to IPv4; None
    when `text` is a host name (to be resolved)."""
    candidate = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        address = ipaddress.ip_address(candidate.split("%", 1)[0] if ":" in candidate else candidate)
    except ValueError:
        return numeric_ipv4(candidate)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def validate_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int):
        if isinstance(port, str) and re.fullmatch(r"[0-9]{1,5}", port):
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
    match = re.fullmatch(r"\[([^\]]+)\]:([0-9]{1,5})", text) or re.fullmatch(
        r"([^:\[\]]+):([0-9]{1,5})", text
    )
    if not match:
        raise AddressError(f"{text!r} is not written host:port (IPv6 as [addr]:port)")
    return Address(validate_host(match.group(1)), validate_port(int(match.group(2))))


def ip_allowed(ip: str, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    address = ipaddress.ip_address(canonical_ip(ip) or ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in networks)
