"""A recorded double of the Kubernetes API for the objects dbpilot applies: a local HTTP server that
answers create, patch and delete as the API reference documents (201 with the stored object, 409
`Status` reason AlreadyExists, 200 on patch, 404 `Status` reason NotFound, 401 without the bearer token),
and records every request. No Kubernetes cluster is involved.

Also as documented: a list (`GET` of a collection) answers a `<Kind>List` filtered by an equality
`labelSelector`; the StatefulSet's `scale` subresource answers an `autoscaling/v1` `Scale` (a PATCH of
`spec.replicas` changes the StatefulSet's; a negative count is 422 Invalid); deleting a Pod or a
PersistentVolumeClaim answers the deleted object (a Service too), other kinds a `Status`. Deletion is
immediate here (a real API keeps a terminating pod, and a claim in use, until they are gone).

`controller=True` also plays the StatefulSet controller (not the API): pods `<sts>-<ordinal>` exist, Running
and Ready, for the ordinals below `spec.replicas`, with their claims `data-<sts>-<ordinal>` (kept on scale
down, as the default retention policy does); a deleted pod is created again with a new uid. Labels a client
patched onto a pod stay, as they do on a live cluster."""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

RESOURCES = {
    ("api/v1", "configmaps"): "ConfigMap",
    ("api/v1", "secrets"): "Secret",
    ("api/v1", "services"): "Service",
    ("apis/apps/v1", "statefulsets"): "StatefulSet",
    ("apis/policy/v1", "poddisruptionbudgets"): "PodDisruptionBudget",
    ("api/v1", "pods"): "Pod",
    ("api/v1", "persistentvolumeclaims"): "PersistentVolumeClaim",
}
API_VERSION = {"api/v1": "v1", "apis/apps/v1": "apps/v1", "apis/policy/v1": "policy/v1"}
RETURNS_DELETED = {"services", "pods", "persistentvolumeclaims"}  # DELETE answers the object, not a Status
PATH = re.compile(
    r"^/(api/v1|apis/[a-z.]+/v1)/namespaces/([a-z0-9-]+)/([a-z]+)(?:/([a-z0-9-]+))?(?:/(scale))?$"
)


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


MERGE_PATCHES = ("application/merge-patch+json", "application/strategic-merge-patch+json")
JSON_PATCH = "application/json-patch+json"


def merge(into: dict, patch: dict) -> dict:
    """A merge patch (RFC 7386; `null` removes a key). A strategic merge patch is taken as one here: lists
    are replaced, not merged by key (dbpilot patches maps and whole objects only)."""
    for key, value in patch.items():
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
    return into


def json_patch(into: dict, operations: list) -> dict:
    """A JSON patch (RFC 6902): add, replace and remove on object members."""
    for operation in operations:
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in operation["path"].split("/")[1:]]
        target = into
        for part in parents:
            target = target[part]
        if operation["op"] in ("add", "replace"):
            target[last] = copy.deepcopy(operation["value"])
        elif operation["op"] == "remove":
            del target[last]
        else:
            raise ValueError(f"unsupported operation {operation['op']!r}")
    return into


class KubernetesDouble:
    def __init__(self, token: str = "test-token", controller: bool = False):
        self.token = token
        self.controller = controller
        self.lock = threading.Lock()
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
                path, _, query = self.path.partition("?")
                match = PATH.match(path)
                if (
                    not match
                    or (match.group(1), match.group(3)) not in RESOURCES
                    or (match.group(5) and match.group(3) != "statefulsets")
                ):
                    return self._answer(
                        404, status(404, "NotFound", "the server could not find the requested resource")
                    )
                group, namespace, resource, name, subresource = match.groups()
                body = json.loads(raw) if raw else None
                content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                if method == "PATCH" and content_type not in (*MERGE_PATCHES, JSON_PATCH):
                    # The reference: a PATCH names its patch type; anything else is 415.
                    return self._answer(
                        415,
                        status(
                            415,
                            "UnsupportedMediaType",
                            f"the body of the request was in an unknown format - accepted media types include: "
                            f"{JSON_PATCH}, {', '.join(MERGE_PATCHES)}, application/apply-patch+yaml",
                        ),
                    )
                if method == "PATCH" and (content_type == JSON_PATCH) != isinstance(body, list):
                    return self._answer(
                        400, status(400, "BadRequest", f"the body does not fit {content_type}")
                    )
                with double.lock:
                    if subresource == "scale":
                        answer = double.serve_scale(method, namespace, name, body)
                    elif method == "GET" and name is None:
                        answer = double.serve_list(group, resource, namespace, parse_qs(query))
                    else:
                        answer = double.serve(method, resource, namespace, name, body)
                self._answer(*answer)

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
            self._reconcile(resource, namespace, name)
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
            stored = (json_patch if isinstance(body, list) else merge)(self.objects[key], body)
            stored["metadata"]["resourceVersion"] = str(self.version)
            self._reconcile(resource, namespace, key[2])
            return 200, stored
        if method == "DELETE":
            stored = self.objects.pop(key)
            if resource == "pods" and self.controller:
                owner = stored["metadata"].get("labels", {}).get("dbpilot.test/statefulset")
                if owner:
                    self._reconcile("statefulsets", namespace, owner)
            if resource in RETURNS_DELETED:  # the reference: these answer the deleted object
                return 200, stored
            return 200, status(
                200, "", "", {"name": name, "kind": resource, "uid": stored["metadata"]["uid"]}
            )
        return 405, status(405, "MethodNotAllowed", f"{method} is not supported here")

    def serve_list(self, group: str, resource: str, namespace: str, query: dict):
        wanted = {}
        for term in (query.get("labelSelector") or [""])[0].split(","):
            if term:
                label, _, value = term.partition("=")
                wanted[label] = value.lstrip("=")
        items = [
            obj
            for (kind, ns, _), obj in sorted(self.objects.items())
            if kind == resource
            and ns == namespace
            and all(obj["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
        ]
        return 200, {
            "kind": f"{RESOURCES[(group, resource)]}List",
            "apiVersion": API_VERSION[group],
            "metadata": {"resourceVersion": str(self.version)},
            "items": items,
        }

    def _scale_of(self, stored: dict) -> dict:
        meta = stored["metadata"]
        labels = stored["spec"].get("selector", {}).get("matchLabels", {})
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
            },
            "spec": {"replicas": stored["spec"].get("replicas", 1)},
            "status": {
                "replicas": stored.get("status", {}).get("replicas", 0),
                "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            },
        }

    def serve_scale(self, method: str, namespace: str, name: str, body: dict | None):
        key = ("statefulsets", namespace, name)
        if key not in self.objects:
            return 404, status(
                404,
                "NotFound",
                f'statefulsets.apps "{name}" not found',
                {"name": name, "kind": "statefulsets"},
            )
        stored = self.objects[key]
        if method == "PATCH":
            if isinstance(body, list):
                body = json_patch({"spec": {"replicas": stored["spec"].get("replicas", 1)}}, body)
            replicas = (body or {}).get("spec", {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                return 422, status(
                    422,
                    "Invalid",
                    f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: {replicas}: '
                    "must be greater than or equal to 0",
                    {"name": name, "group": "autoscaling", "kind": "Scale"},
                )
            self.version += 1
            stored["spec"]["replicas"] = replicas
            stored["metadata"]["resourceVersion"] = str(self.version)
            self._reconcile("statefulsets", namespace, name)
        elif method != "GET":
            return 405, status(405, "MethodNotAllowed", f"{method} is not supported on scale")
        return 200, self._scale_of(stored)

    def _reconcile(self, resource: str, namespace: str, name: str) -> None:
        """The StatefulSet controller's part (controller=True only): pods and claims follow spec.replicas."""
        if not self.controller or resource != "statefulsets":
            return
        stored = self.objects.get(("statefulsets", namespace, name))
        replicas = stored["spec"].get("replicas", 1) if stored else 0
        for (kind, ns, pod_name), pod in list(self.objects.items()):
            owner = pod["metadata"].get("labels", {}).get("dbpilot.test/statefulset")
            if kind == "pods" and ns == namespace and owner == name:
                if int(pod_name.rsplit("-", 1)[1]) >= replicas:
                    del self.objects[(kind, ns, pod_name)]
        for ordinal in range(replicas):
            pod_name = f"{name}-{ordinal}"
            if ("pods", namespace, pod_name) in self.objects:
                continue
            self.version += 1
            labels = {
                **stored["spec"]["template"]["metadata"].get("labels", {}),
                "statefulset.kubernetes.io/pod-name": pod_name,
                "dbpilot.test/statefulset": name,
            }
            self.objects[("pods", namespace, pod_name)] = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod_name,
                    "namespace": namespace,
                    "labels": labels,
                    "uid": str(uuid.uuid4()),
                    "resourceVersion": str(self.version),
                },
                "spec": copy.deepcopy(stored["spec"]["template"]["spec"]),
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
            }
            claim = f"data-{pod_name}"
            if ("persistentvolumeclaims", namespace, claim) not in self.objects:
                self.objects[("persistentvolumeclaims", namespace, claim)] = {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": claim, "namespace": namespace, "uid": str(uuid.uuid4())},
                    "spec": {"accessModes": ["ReadWriteOnce"]},
                    "status": {"phase": "Bound"},
                }
        if stored is not None:
            stored.setdefault("status", {})["replicas"] = replicas

    def __enter__(self) -> KubernetesDouble:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
