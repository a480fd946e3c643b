"""The `kubernetes` provider: a provisioned cluster's servers are the pods of one StatefulSet.

The protocol, instance by instance (an instance `<key>-s<n>` is the pod of ordinal n-1 of the StatefulSet
named after the cluster's provisioning key, in `DBPILOT_KUBERNETES_NAMESPACE`):

- create: apply the cluster's objects (clusters.providers.kubernetes_manifests: ConfigMap, Secret holding
  the cluster's root password, headless Service, writer and reader Services, StatefulSet, PDB), record the
  ordinal in the StatefulSet's `dbpilot.io/servers` annotation, and scale the StatefulSet to include it.
- start / stop: scale. A StatefulSet runs the ordinals 0..replicas-1, so a server stops only when no
  server above it runs: stopping one below a running one is refused with a ProviderError that says so.
  `start` waits (DBPILOT_KUBERNETES_READY_SECONDS) for the pod to be Ready and says what it waits for.
- reconfigure: patch the ConfigMap's my.cnf (shared by every pod); restart: reconfigure, then delete the
  pod: the StatefulSet controller creates it again with the new configuration; wait until it is Ready.
- destroy: take the ordinal out, scale down, delete its PersistentVolumeClaim; the last server's destroy
  deletes every object. Like stop, only from the highest ordinal down (jobs destroy in that order).
- clone (add a replica, repair): **refused** with a ProviderError. Doing it faithfully needs the new pod's
  init container to pull a `mariadb-backup --stream` from a source pod, which needs a process in the
  source pod serving that stream: the mariadb image has none (no listener tool), and dbpilot does not ship
  one. Replicas are provisioned with the cluster instead (all start empty and replicate from the start).
- placement: the pod's stable DNS address `<sts>-<ordinal>.<sts>-servers.<namespace>.svc`, port 3306.
- roles_changed: the pods' `dbpilot.io/role` label follows the primary (the writer Service selects it);
  called as a route (clusters.routes.pod_roles) wherever the routes are told of a new primary.

The client talks only to the API server of its configuration (DBPILOT_KUBERNETES_CONFIG, or the pod's
service account); SQL to a pod goes to its DNS address pinned through DBPILOT_ALLOWED_NETWORKS
(controlplane.netpolicy), like any server dbpilot connects to. Tested against a recorded double of the
API (tests/unit/kubernetes_double.py); **not verified against a live Kubernetes cluster**.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence

import pymysql
import pymysql.cursors
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from clusters.providers.base import (
    CloneResult,
    InstanceInfo,
    Placement,
    Progress,
    Provider,
    ProviderError,
    ServerSpec,
)
from clusters.providers.kubernetes_apply import apply, remove
from clusters.providers.kubernetes_manifests import MYSQL_PORT, KubernetesSpec, my_cnf, render

SERVERS_ANNOTATION = "dbpilot.io/servers"  # {"<ordinal>": {"state": running|stopped, "created_at": epoch}}
KEY_ANNOTATION = "dbpilot.io/key"  # the cluster's provisioning key (instance names are `<key>-s<n>`)
ROLE_LABEL = "dbpilot.io/role"
MANAGED = "app.kubernetes.io/managed-by=dbpilot"
INSTANCE = re.compile(r"^(?P<key>.+)-s(?P<number>[1-9][0-9]*)$")
POLL_SECONDS = 1.0


def statefulset_name(key: str) -> str:
    """A Kubernetes name for the cluster's key: lowercase letters, digits and dashes, 42 at most."""
    name = re.sub(r"[^a-z0-9-]+", "-", key.lower()).strip("-")[:42].strip("-")
    if not name:
        raise ProviderError(f"cannot make a Kubernetes name of the cluster key {key!r}")
    return name


class KubernetesProvider(Provider):
    name = "kubernetes"
    # Pods get a new address each time they are created: dbpilot's accounts accept any (docs/security.md).
    client_host = "%"

    def __init__(
        self,
        api_client: k8s.ApiClient,
        namespace: str,
        storage_gb: int = 10,
        ready_seconds: float = 300.0,
        pin=None,
    ):
        self.client = api_client
        self.namespace = namespace
        self.storage_gb = storage_gb
        self.ready_seconds = ready_seconds
        self.core = k8s.CoreV1Api(api_client)
        self.apps = k8s.AppsV1Api(api_client)
        self._pin = pin  # host name -> the address to connect to (netpolicy.pin_host), None: as given
        self._root_passwords: dict[str, str] = {}

    # ----- names --------------------------------------------------------------------------------------

    def locate(self, instance: str) -> tuple[str, str, int]:
        """(key, StatefulSet name, ordinal) of an instance; ProviderError for names it never places."""
        match = INSTANCE.match(instance)
        if not match:
            raise ProviderError(
                f"{instance!r} is not a server of a provisioned cluster: the kubernetes provider places "
                "only `<cluster key>-s<n>` servers (its pods)"
            )
        key = match.group("key")
        return key, statefulset_name(key), int(match.group("number")) - 1

    def pod_name(self, instance: str) -> str:
        _, sts, ordinal = self.locate(instance)
        return f"{sts}-{ordinal}"

    def address(self, sts: str, ordinal: int) -> str:
        return f"{sts}-{ordinal}.{sts}-servers.{self.namespace}.svc"

    # ----- the API ------------------------------------------------------------------------------------

    def _call(self, what: str, call, *args, missing_ok: bool = False, **kwargs):
        try:
            return call(*args, **kwargs)
        except ApiException as exc:
            if missing_ok and exc.status == 404:
                return None
            body = (exc.body or "").strip()
            try:
                body = json.loads(body).get("message", body)
            except (ValueError, AttributeError):
                pass
            raise ProviderError(
                f"{what} in namespace {self.namespace}: {exc.status} {exc.reason}: {str(body)[:300]}",
                permanent=exc.status in (400, 401, 403, 422),
            ) from None
        except OSError as exc:  # the API server does not answer (urllib3 errors are OSErrors too)
            raise ProviderError(
                f"{what}: the Kubernetes API does not answer: {exc}", permanent=False
            ) from None

    def _statefulset(self, sts: str) -> dict | None:
        found = self._call(
            f"reading StatefulSet/{sts}",
            self.apps.read_namespaced_stateful_set,
            sts,
            self.namespace,
            missing_ok=True,
        )
        return None if found is None else self.client.sanitize_for_serialization(found)

    def _pod(self, pod: str) -> dict | None:
        found = self._call(
            f"reading Pod/{pod}", self.core.read_namespaced_pod, pod, self.namespace, missing_ok=True
        )
        return None if found is None else self.client.sanitize_for_serialization(found)

    @staticmethod
    def _servers(statefulset: dict | None) -> dict[int, dict]:
        if statefulset is None:
            return {}
        raw = (statefulset.get("metadata", {}).get("annotations") or {}).get(SERVERS_ANNOTATION) or "{}"
        return {int(ordinal): info for ordinal, info in json.loads(raw).items()}

    @staticmethod
    def _replicas_for(servers: dict[int, dict]) -> int:
        """A StatefulSet runs ordinals 0..replicas-1: up to the highest server that must run."""
        running = [o for o, info in servers.items() if info["state"] == "running"]
        return max(running) + 1 if running else 0

    def _save_servers(self, sts: str, servers: dict[int, dict]) -> None:
        annotation = json.dumps({str(o): servers[o] for o in sorted(servers)}, sort_keys=True)
        self._call(
            f"annotating StatefulSet/{sts}",
            self.apps.patch_namespaced_stateful_set,
            sts,
            self.namespace,
            {"metadata": {"annotations": {SERVERS_ANNOTATION: annotation}}},
        )

    def _scale(self, sts: str, replicas: int) -> None:
        self._call(
            f"scaling StatefulSet/{sts} to {replicas}",
            self.apps.patch_namespaced_stateful_set_scale,
            sts,
            self.namespace,
            {"spec": {"replicas": replicas}},
        )

    def _manifests(self, key: str, sts: str, spec: ServerSpec | None, replicas: int) -> list[dict]:
        root = self._root_passwords.get(key, "")
        manifests = render(self._manifest_spec(sts, spec or ServerSpec("", 0)), {"root": root})
        for manifest in manifests:
            if manifest["kind"] == "StatefulSet":
                # Applying again must not move the scale: that is start's, stop's and destroy's.
                manifest["spec"]["replicas"] = replicas
                manifest["metadata"].setdefault("annotations", {})[KEY_ANNOTATION] = key
        return manifests

    # ----- the interface ------------------------------------------------------------------------------

    def bind_cluster(self, group: str, root_password: str) -> None:
        self._root_passwords[group] = root_password

    def create(self, spec: ServerSpec) -> Placement:
        key, sts, ordinal = self.locate(spec.instance)
        if not self._root_passwords.get(key):
            raise ProviderError(
                f"no root password bound for cluster {key}: the job must bind its cluster first"
            )
        current = self._statefulset(sts)
        servers = self._servers(current)
        replicas = int(current["spec"].get("replicas") or 0) if current else 0
        apply(self.client, self._manifests(key, sts, spec, replicas))
        if ordinal not in servers:
            servers[ordinal] = {"state": "running", "created_at": time.time()}
        servers[ordinal]["state"] = "running"
        self._save_servers(sts, servers)
        self._scale(sts, self._replicas_for(servers))
        return Placement(spec.instance, self.address(sts, ordinal), MYSQL_PORT)

    def clone(
        self, source: str, spec: ServerSpec, root_password: str, progress: Progress | None = None
    ) -> CloneResult:
        raise ProviderError(
            "the kubernetes provider cannot clone a server: the new pod's init container would have to pull "
            "a mariadb-backup stream from a source pod, and the mariadb image runs nothing that serves one. "
            "Provision the cluster with the replicas it needs instead (they start empty and replicate)."
        )

    def _wait(self, pod: str, ready: bool, timeout: float, old_uid: str | None = None) -> None:
        """Until the pod is Ready (a new one when `old_uid` is given) or gone; ProviderError saying what it
        still waits for."""
        deadline = time.monotonic() + timeout
        while True:
            found = self._pod(pod)
            if ready:
                if found is None:
                    waiting = "it does not exist yet (the StatefulSet controller has not created it)"
                elif old_uid and found["metadata"].get("uid") == old_uid:
                    waiting = "the old pod is still terminating"
                else:
                    status = found.get("status") or {}
                    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
                    if conditions.get("Ready") == "True":
                        return
                    reasons = [
                        (c.get("state") or {}).get("waiting", {}).get("reason", "")
                        for c in status.get("containerStatuses") or []
                    ]
                    waiting = f"phase {status.get('phase', 'unknown')}, not Ready" + (
                        f" ({', '.join(r for r in reasons if r)})" if any(reasons) else ""
                    )
            else:
                if found is None:
                    return
                waiting = "it is still terminating"
            if time.monotonic() >= deadline:
                raise ProviderError(
                    f"pod {pod} in namespace {self.namespace} is not {'ready' if ready else 'gone'} after "
                    f"{timeout:g} s: {waiting}",
                    permanent=False,
                )
            time.sleep(POLL_SECONDS)

    def start(self, instance: str, root_password: str | None, timeout: float = 60) -> None:
        _, sts, ordinal = self.locate(instance)
        servers = self._servers(self._statefulset(sts))
        if ordinal not in servers:
            raise ProviderError(f"server {instance} does not exist")
        if servers[ordinal]["state"] != "running":
            servers[ordinal]["state"] = "running"
            self._save_servers(sts, servers)
        self._scale(sts, self._replicas_for(servers))
        # Pulling the image and binding the volume take longer than a local start: the provider's own wait.
        self._wait(f"{sts}-{ordinal}", True, self.ready_seconds)

    def _refuse_below_running(self, what: str, instance: str, ordinal: int, servers: dict[int, dict]) -> None:
        above = sorted(o for o, info in servers.items() if o > ordinal and info["state"] == "running")
        if above:
            _, sts, _ = self.locate(instance)
            raise ProviderError(
                f"cannot {what} {instance} (pod {sts}-{ordinal}) while {', '.join(f'{sts}-{o}' for o in above)} "
                "run: a StatefulSet runs its ordinals from 0 up, so servers stop and go from the highest down"
            )

    def stop(self, instance: str, timeout: float = 60) -> None:
        _, sts, ordinal = self.locate(instance)
        servers = self._servers(self._statefulset(sts))
        if ordinal not in servers:
            return
        self._refuse_below_running("stop", instance, ordinal, servers)
        servers[ordinal]["state"] = "stopped"
        self._save_servers(sts, servers)
        self._scale(sts, self._replicas_for(servers))
        self._wait(f"{sts}-{ordinal}", False, self.ready_seconds)

    def reconfigure(self, spec: ServerSpec) -> bool:
        key, sts, _ = self.locate(spec.instance)
        name = f"{sts}-config"
        found = self._call(
            f"reading ConfigMap/{name}",
            self.core.read_namespaced_config_map,
            name,
            self.namespace,
            missing_ok=True,
        )
        if found is None:
            raise ProviderError(f"server {spec.instance} does not exist (no ConfigMap/{name})")
        wanted = my_cnf(self._manifest_spec(sts, spec))
        if (found.data or {}).get("dbpilot.cnf") == wanted:
            return False
        self._call(
            f"patching ConfigMap/{name}",
            self.core.patch_namespaced_config_map,
            name,
            self.namespace,
            {"data": {"dbpilot.cnf": wanted}},
        )
        return True

    def _manifest_spec(self, sts: str, spec: ServerSpec) -> KubernetesSpec:
        try:
            return KubernetesSpec(
                name=sts,
                namespace=self.namespace,
                replicas=0,
                memory_mb=spec.memory_mb,
                semi_sync=spec.semi_sync,
                parameters=dict(spec.parameters),
                storage_gb=self.storage_gb,
                binlog_expire_seconds=spec.binlog_expire_seconds,
            )
        except ValueError as exc:  # a namespace Kubernetes would refuse (DBPILOT_KUBERNETES_NAMESPACE)
            raise ProviderError(f"DBPILOT_KUBERNETES_NAMESPACE or the cluster's name: {exc}") from None

    def restart(self, spec: ServerSpec, root_password: str, timeout: float = 60) -> None:
        """The new configuration in the ConfigMap, then the pod deleted: the StatefulSet creates it again
        (a mounted ConfigMap file reaches a running container only through a new pod)."""
        _, sts, ordinal = self.locate(spec.instance)
        pod = f"{sts}-{ordinal}"
        self.reconfigure(spec)
        found = self._pod(pod)
        old_uid = found["metadata"].get("uid") if found else None
        self._call(
            f"deleting Pod/{pod}", self.core.delete_namespaced_pod, pod, self.namespace, missing_ok=True
        )
        self._wait(pod, True, self.ready_seconds, old_uid=old_uid)

    def destroy(self, instance: str) -> bool:
        key, sts, ordinal = self.locate(instance)
        current = self._statefulset(sts)
        servers = self._servers(current)
        claim = f"data-{sts}-{ordinal}"
        existed = current is not None and ordinal in servers
        if existed:
            self._refuse_below_running("remove", instance, ordinal, servers)
            del servers[ordinal]
            self._save_servers(sts, servers)
            self._scale(sts, self._replicas_for(servers))
            self._wait(f"{sts}-{ordinal}", False, self.ready_seconds)
        deleted = self._call(
            f"deleting PersistentVolumeClaim/{claim}",
            self.core.delete_namespaced_persistent_volume_claim,
            claim,
            self.namespace,
            missing_ok=True,
        )
        if current is not None and not servers:  # the last server: the cluster's objects go too
            remove(self.client, self._manifests(key, sts, None, 0))
        return existed or deleted is not None

    def running(self, instance: str) -> bool:
        found = self._pod(self.pod_name(instance))
        if found is None:
            return False
        conditions = {
            c.get("type"): c.get("status") for c in (found.get("status") or {}).get("conditions") or []
        }
        return conditions.get("Ready") == "True"

    def placement(self, instance: str) -> Placement | None:
        _, sts, ordinal = self.locate(instance)
        if ordinal not in self._servers(self._statefulset(sts)):
            return None
        return Placement(instance, self.address(sts, ordinal), MYSQL_PORT)

    def _statefulsets(self) -> list[dict]:
        found = self._call(
            "listing StatefulSets",
            self.apps.list_namespaced_stateful_set,
            self.namespace,
            label_selector=MANAGED,
        )
        return [self.client.sanitize_for_serialization(item) for item in found.items]

    def list_instances(self) -> list[InstanceInfo]:
        listed = []
        for statefulset in self._statefulsets():
            key = (statefulset["metadata"].get("annotations") or {}).get(KEY_ANNOTATION)
            if not key:
                continue
            for ordinal, info in sorted(self._servers(statefulset).items()):
                listed.append(InstanceInfo(f"{key}-s{ordinal + 1}", info.get("created_at")))
        return listed

    def instances(self) -> list[str]:
        return sorted(i.name for i in self.list_instances())

    def roles_changed(self, primary: str | None, instances: Sequence[str]) -> list[str]:
        """Label each existing pod `dbpilot.io/role`: primary for `primary`, replica for the others (all
        replicas while there is no primary: a switchover's freeze). Only pods whose label differs are
        patched; a pod that does not exist (stopped, being created) is labelled when it comes back."""
        changed = []
        for instance in instances:
            pod = self.pod_name(instance)
            found = self._pod(pod)
            if found is None:
                continue
            role = "primary" if instance == primary else "replica"
            if (found["metadata"].get("labels") or {}).get(ROLE_LABEL) == role:
                continue
            self._call(
                f"labelling Pod/{pod}",
                self.core.patch_namespaced_pod,
                pod,
                self.namespace,
                {"metadata": {"labels": {ROLE_LABEL: role}}},
            )
            changed.append(f"{pod} {role}")
        return changed

    def root_connection(self, instance: str, password: str | None, timeout: float = 5):
        """root over TCP to the pod's stable address (the image's root account accepts any host; its
        password is the cluster's, from the Secret)."""
        placement = self.placement(instance)
        if placement is None:
            raise ProviderError(f"server {instance} does not exist")
        try:
            host = self._pin(placement.host) if self._pin else placement.host
        except ValueError as exc:  # does not resolve (yet), or outside DBPILOT_ALLOWED_NETWORKS
            raise ProviderError(
                f"cannot reach {instance} at {placement.host}: {exc}", permanent=False
            ) from None
        return pymysql.connect(
            host=host,
            port=placement.port,
            user="root",
            password=password or "",
            autocommit=True,
            connect_timeout=timeout,
            read_timeout=max(timeout, 30),
            cursorclass=pymysql.cursors.DictCursor,
        )
