"""The REST API and its websockets, as the CLI uses them. Errors become CliError with the exit code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from dbpilot_cli.config import Config
from dbpilot_cli.errors import NOT_FOUND, REFUSED, UNREACHABLE, USAGE, CliError

TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def _error_line(response: httpx.Response) -> tuple[str, list[dict], str | None]:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}", [], None
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}", [], None
    detail = body.get("detail") or f"HTTP {response.status_code}"
    code = body.get("code")
    text = f"{detail} ({code})" if code and code not in ("invalid", "error") else str(detail)
    return text, body.get("checks") or [], code


def server_of(cluster: dict, ref: str) -> dict:
    """A server of the cluster object by id, host:port or [v6]:port."""
    for server in cluster.get("servers") or []:
        if ref in (
            str(server["id"]),
            f"{server['host']}:{server['port']}",
            f"[{server['host']}]:{server['port']}",
        ):
            return server
    known = ", ".join(f"{s['host']}:{s['port']} (id {s['id']})" for s in cluster.get("servers") or [])
    raise CliError(f"no server {ref} in cluster {cluster['name']}: it has {known or 'none'}", NOT_FOUND)


class Api:
    def __init__(self, config: Config):
        self.config = config
        self.http = httpx.Client(
            base_url=f"{config.url}/api/v1/",
            timeout=TIMEOUT,
            follow_redirects=False,
            headers={
                "Authorization": f"Bearer {config.token}",
                "Accept": "application/json",
                "User-Agent": "dbpilot-cli",
            },
        )

    def request(self, method: str, path: str, *, body: dict | None = None, params: dict | None = None):
        """The answer's JSON (None for 204); an error answer raises CliError with its exit code."""
        return self.answer(method, path, body=body, params=params)[1]

    def answer(
        self, method: str, path: str, *, body: dict | None = None, params: dict | None = None
    ) -> tuple[int, object]:
        """(status, JSON or None) where the status matters (a DELETE's 202 with a job or 204 done)."""
        try:
            response = self.http.request(method, path, json=body, params=params)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the API at {self.config.url}: {exc}", UNREACHABLE) from None
        if response.status_code >= 500:
            raise CliError(f"the API at {self.config.url} failed: HTTP {response.status_code}", UNREACHABLE)
        if response.status_code >= 400:
            message, checks, api_code = _error_line(response)
            code = {400: USAGE, 409: REFUSED}.get(response.status_code, NOT_FOUND)
            if api_code == "quota_exceeded":  # allowed, but over the tenant's limit: a refusal
                code = REFUSED
            if response.status_code == 401:
                message = f"not signed in: {message} (check DBPILOT_TOKEN or run `dbpilot login`)"
            raise CliError(message, code, checks, api_code)
        if response.status_code == 204 or not response.content:
            return response.status_code, None
        try:
            return response.status_code, response.json()
        except ValueError:
            raise CliError(f"the API answered {path} with something that is not JSON", UNREACHABLE) from None

    def sign_in_as_operator(self, email: str, password: str) -> dict:
        """Platform operators are people, never tokens (tenants/access.py): sign in a session with email and
        password, CSRF-checked as the portal's is, and use it instead of the token for this command."""
        self.http.headers.pop("Authorization", None)
        self.http.headers["Origin"] = self.config.url  # Django's CSRF check compares it with the host
        self.http.headers["X-CSRFToken"] = self.get("auth/csrf/")["csrf_token"]
        try:
            me = self.post("auth/login/", {"email": email, "password": password})
        except CliError as exc:
            if exc.code in (USAGE, NOT_FOUND):  # a wrong password is a 400 invalid_credentials: not allowed
                raise CliError(f"cannot sign in as {email}: {exc.message}", NOT_FOUND) from None
            raise
        self.http.headers["X-CSRFToken"] = self.get("auth/csrf/")["csrf_token"]  # rotated at login
        if not me.get("is_operator"):
            raise CliError(f"{email} is not a platform operator", NOT_FOUND)
        return me

    def get(self, path: str, **params):
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None} or None)

    def post(self, path: str, body: dict | None = None):
        return self.request("POST", path, body=body if body is not None else {})

    def patch(self, path: str, body: dict):
        return self.request("PATCH", path, body=body)

    def delete(self, path: str):
        return self.request("DELETE", path)

    def list_all(self, path: str, limit: int | None = None, **params) -> list[dict]:
        """Every item of a paginated list (or a plain list), following pages up to `limit` items."""
        items: list[dict] = []
        page = 1
        while True:
            data = self.get(path, page=page, page_size=min(limit or 500, 500), **params)
            if isinstance(data, list):
                return data[:limit] if limit else data
            items += data.get("results", [])
            if not data.get("next") or (limit and len(items) >= limit):
                return items[:limit] if limit else items
            page += 1

    # --- names -------------------------------------------------------------------------------------------

    def cluster(self, ref: str) -> dict:
        """A cluster by id (digits) or by name within the tenants the token sees."""
        if ref.isdigit():
            return self.get(f"clusters/{ref}/")
        tenant = None
        if "/" in ref:  # tenant/name
            tenant, ref = ref.split("/", 1)
        found = self.list_all("clusters/", name=ref, tenant=tenant)
        if not found:
            raise CliError(f"no cluster named {ref!r}", NOT_FOUND)
        if len(found) > 1:
            tenants = ", ".join(sorted(c["tenant"] for c in found))
            raise CliError(
                f"{ref!r} names clusters in several tenants ({tenants}): write TENANT/{ref} or the id", USAGE
            )
        return found[0]

    def cluster_or_none(self, ref: str) -> dict | None:
        try:
            return self.cluster(ref)
        except CliError as exc:
            if exc.code == NOT_FOUND:
                return None
            raise

    def team(self, ref: str) -> dict:
        teams = self.list_all("teams/")
        for team in teams:
            if str(team["id"]) == ref or team["name"] == ref:
                return team
        raise CliError(f"no team {ref!r} among your teams", NOT_FOUND)

    # --- websockets --------------------------------------------------------------------------------------

    @contextmanager
    def websocket(self, path: str) -> Iterator:
        """A websocket to ws(s)://.../PATH with the bearer token in the header (never in the URL)."""
        from websockets.exceptions import InvalidStatus, WebSocketException
        from websockets.sync.client import connect

        url = self.config.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + path
        try:
            socket = connect(
                url,
                additional_headers={"Authorization": f"Bearer {self.config.token}"},
                open_timeout=10,
                user_agent_header="dbpilot-cli",
            )
        except InvalidStatus as exc:
            raise CliError(
                f"the websocket {path} was refused: HTTP {exc.response.status_code}", NOT_FOUND
            ) from None
        except (OSError, WebSocketException, TimeoutError) as exc:
            raise CliError(f"cannot reach the API's websocket at {url}: {exc}", UNREACHABLE) from None
        with socket:
            yield Socket(socket, path)


class Socket:
    """Messages of an open websocket, as dicts; a close by the server becomes the right CliError."""

    def __init__(self, socket, path: str):
        self.socket, self.path = socket, path

    def receive(self, timeout: float | None) -> dict | None:
        """The next message, or None when nothing came within `timeout` seconds."""
        from websockets.exceptions import ConnectionClosed

        try:
            raw = self.socket.recv(timeout=timeout)
        except TimeoutError:
            return None
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
            if code in (4401, 4403, 4404):
                raise CliError(
                    f"{self.path}: not found or not allowed (websocket closed {code})", NOT_FOUND
                ) from None
            raise CliError(f"{self.path}: the websocket closed ({code})", UNREACHABLE) from None
        return json.loads(raw)
