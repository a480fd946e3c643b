"""A recorded double of the Kubernetes API for the objects dbpilot applies: a local HTTP server that
answers create, patch and delete as the API reference documents (201 with the stored object, 409
`Status` reason AlreadyExists, 200 on patch, 404 `Status` reason NotFound, 401 without the bearer token),
and records every request. No Kubernetes cluster is involved."""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RESOURCES = {
    ("api/v1", "configmaps"): "ConfigMap",
    ("api/v1", "secrets"): "Secret",
    ("api/v1", "services"): "Service",
    ("apis/apps/v1", "statefulsets"): "StatefulSet",
    ("apis/policy/v1", "poddisruptionbudgets"): "PodDisruptionBudget",
}
PATH = re.compile(r"^/(api/v1|apis/[a-z.]+/v1)/namespaces/([a-z0-9-]+)/([a-z]+)(?:/([a-z0-9-]+))?$")


def status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason,
        "details": details or {},
        "code": code,
    }


def merge(into: dict, patch: dict) -> dict:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
    return into


class KubernetesDouble:
    def __init__(self, token: str = "test-token"):
        self.token = token
        self.objects: dict[tuple[str, str, str], dict] = {}  # (resource, namespace, name) -> object
        self.requests: list[tuple[str, str, str]] = []  # (method, path, content type)
        self.version = 0
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _answer(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                double.requests.append((method, self.path, self.headers.get("Content-Type", "")))
                if self.headers.get("Authorization") != f"Bearer {double.token}":
                    return self._answer(401, status(401, "Unauthorized", "Unauthorized"))
                match = PATH.match(self.path.split("?")[0])
                if not match or (match.group(1), match.group(3)) not in RESOURCES:
                    return self._answer(
                        404, status(404, "NotFound", "the server could not find the requested resource")
                    )
                group, namespace, resource, name = match.groups()
                self._answer(
                    *double.serve(method, resource, namespace, name, json.loads(raw) if raw else None)
                )

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

            def do_GET(self) -> None:
                self._handle("GET")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(self, method: str, resource: str, namespace: str, name: str | None, body: dict | None):
        if method == "POST" and name is None:
            name = body["metadata"]["name"]
            key = (resource, namespace, name)
            if key in self.objects:
                return 409, status(
                    409,
                    "AlreadyExists",
                    f'{resource} "{name}" already exists',
                    {"name": name, "kind": resource},
                )
            self.version += 1
            stored = copy.deepcopy(body)
            stored["metadata"].update(
                uid=str(uuid.uuid4()),
                resourceVersion=str(self.version),
                creationTimestamp="2026-12-06T03:00:00Z",
            )
            self.objects[key] = stored
            return 201, stored
        key = (resource, namespace, name or "")
        if key not in self.objects:
            return 404, status(
                404, "NotFound", f'{resource} "{name}" not found', {"name": name, "kind": resource}
            )
        if method == "GET":
            return 200, self.objects[key]
        if method == "PATCH":
            self.version += 1
            stored = merge(self.objects[key], body)
            stored["metadata"]["resourceVersion"] = str(self.version)
            return 200, stored
        if method == "DELETE":
            stored = self.objects.pop(key)
            if resource == "services":  # the reference: deleting a Service answers the Service
                return 200, stored
            return 200, status(
                200, "", "", {"name": name, "kind": resource, "uid": stored["metadata"]["uid"]}
            )
        return 405, status(405, "MethodNotAllowed", f"{method} is not supported here")

    def __enter__(self) -> KubernetesDouble:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
