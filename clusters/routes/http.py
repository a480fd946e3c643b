"""Outgoing HTTP for route drivers (PowerDNS, MaxScale, Consul): allowlisted, pinned, no redirects.

The host of the URL is resolved once through controlplane.netpolicy.pin_host (which refuses anything
outside DBPILOT_ALLOWED_NETWORKS) and the connection goes to that pinned address, with the original host
name kept for the Host header and TLS (SNI and certificate checks). No retries, no redirects: a 3xx is an
error, so an allowed API can never bounce dbpilot to an address the operator did not allow.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import urllib3

from clusters.domain.addresses import AddressError
from clusters.routes.base import RouteError
from clusters.routes.spec import parse_http_url
from controlplane.netpolicy import NotAllowed, pin_host

CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 3.0


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def text(self, limit: int = 300) -> str:
        return self.body[:limit].decode("utf-8", errors="replace").strip()


class PinnedHttp:
    """A tiny client for one API base URL (`what` names the service in error messages)."""

    def __init__(
        self,
        base_url: str,
        what: str,
        *,
        headers: dict[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
        read_timeout: float = READ_TIMEOUT,
    ):
        try:
            endpoint = parse_http_url(base_url)
        except ValueError as exc:
            raise RouteError(f"{what} URL {base_url!r} {exc}", permanent=True) from None
        try:
            ip = pin_host(endpoint.host)
        except (NotAllowed, AddressError) as exc:
            raise RouteError(f"{what} at {base_url}: {exc}", permanent=isinstance(exc, NotAllowed)) from None
        self.what = what
        self.base_url = base_url
        self.base_path = endpoint.path
        default_port = 443 if endpoint.scheme == "https" else 80
        host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
        self.headers = {
            "Host": host if endpoint.port == default_port else f"{host}:{endpoint.port}",
            "Accept": "application/json",
            "User-Agent": "dbpilot-routes",
        }
        if basic_auth:
            self.headers.update(urllib3.make_headers(basic_auth=f"{basic_auth[0]}:{basic_auth[1]}"))
        self.headers.update(headers or {})
        timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=read_timeout)
        if endpoint.scheme == "https":
            self.pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
                ip,
                endpoint.port,
                timeout=timeout,
                retries=False,
                maxsize=1,
                ssl_context=ssl.create_default_context(),
                server_hostname=endpoint.host,
                assert_hostname=endpoint.host,
            )
        else:
            self.pool = urllib3.HTTPConnectionPool(
                ip, endpoint.port, timeout=timeout, retries=False, maxsize=1
            )

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw: bytes | None = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> HttpAnswer:
        url = self.base_path + path + (f"?{urlencode(query)}" if query else "")
        sent = dict(self.headers)
        sent.update(headers or {})
        payload = raw
        if body is not None:
            payload = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        try:
            response = self.pool.urlopen(
                method,
                url,
                body=payload,
                headers=sent,
                redirect=False,
                retries=False,
                preload_content=True,
                assert_same_host=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise RouteError(f"{self.what} at {self.base_url} is not reachable: {reason}") from None
        answer = HttpAnswer(response.status, response.data or b"")
        if 300 <= answer.status < 400:
            raise RouteError(
                f"{self.what} at {self.base_url} answered {method} {url} with a redirect "
                f"({answer.status}); dbpilot follows no redirects: give the final URL",
                permanent=True,
            )
        return answer

    def close(self) -> None:
        self.pool.close()
