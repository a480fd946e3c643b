"""`manage.py sandbox up|down|status NAME`: local MariaDB clusters for the demo and for development.

`up` prints the cluster's description as one line of JSON (addresses, pids, credentials) and leaves the
servers running; the state lives in <root>/<NAME>/sandbox.json, so `status` and `down` find it again.
Running `up` again while the same sandbox runs prints the same description and changes nothing.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from clusters.providers import LocalSandbox, SandboxError
from clusters.providers.local import DEFAULT_ROOT


class Command(BaseCommand):
    help = "Start (up), inspect (status) or remove (down) a local replicating MariaDB sandbox."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="up|down|status")
        up = actions.add_parser("up", help="start a cluster and print its description as one line of JSON")
        up.add_argument("name")
        up.add_argument("--nodes", type=int, default=3)
        up.add_argument(
            "--semi-sync",
            action="store_true",
            help="semi-sync: master side on node 1, slave side on replicas",
        )
        up.add_argument(
            "--netns", action="store_true", help="each node in its own network namespace (root only)"
        )
        up.add_argument(
            "--base-port", type=int, default=None, help="ports base..base+N-1 (default: free ports)"
        )
        up.add_argument("--max-connections", type=int, default=400)
        for name, help_text in (
            ("down", "stop the servers and remove all their files"),
            ("status", "show the nodes' state"),
        ):
            sub = actions.add_parser(name, help=help_text)
            sub.add_argument("name")
        for sub in actions.choices.values():
            sub.add_argument(
                "--root", default=str(DEFAULT_ROOT), help=f"where sandboxes live (default {DEFAULT_ROOT})"
            )

    def handle(self, *args, action, name, root, **options):
        try:
            result = getattr(self, f"_{action}")(name, root, **options)
        except SandboxError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(result))

    def _up(self, name, root, *, nodes, semi_sync, netns, base_port, max_connections, **_):
        sandbox = LocalSandbox(
            name,
            nodes,
            semi_sync=semi_sync,
            netns=netns,
            base_port=base_port,
            max_connections=max_connections,
            root=root,
        )
        try:
            existing = LocalSandbox.load(name, root)
        except SandboxError:
            existing = None
        if existing is not None and all(existing.running(n) for n in existing.nodes):
            shape = (existing.node_count, existing.netns, existing.semi_sync)
            if shape != (nodes, netns, semi_sync) or base_port not in (None, existing.base_port):
                raise CommandError(
                    f"sandbox {name!r} already runs with {existing.node_count} nodes (netns {existing.netns}, "
                    f"semi-sync {existing.semi_sync}); run `manage.py sandbox down {name}` first"
                )
            return existing.describe()
        if existing is not None:
            self.stderr.write(f"sandbox {name!r}: some servers are gone; starting it afresh")
        return sandbox.up()

    def _down(self, name, root, **_):
        return {"name": name, "removed": LocalSandbox.remove_leftovers(name, root)}

    def _status(self, name, root, **_):
        sandbox = LocalSandbox.load(name, root)
        description = sandbox.describe()
        for node in description["nodes"]:
            node.update(self._node_state(sandbox, node["node"]) if node["running"] else {"state": "stopped"})
        del description["credentials"]  # status is for looking, `up` already printed the passwords
        return description

    @staticmethod
    def _node_state(sandbox, node):
        try:
            variables = sandbox.sql(
                node, "SELECT @@read_only AS read_only, @@gtid_current_pos AS gtid_current_pos"
            )[0]
            replication = sandbox.replication_status(node)
        except Exception as exc:  # noqa: BLE001 - any failure to ask is reported as the node's state
            return {"state": "unreachable", "error": str(exc)}
        return {
            "state": "running",
            "read_only": bool(variables["read_only"]),
            "gtid_current_pos": variables["gtid_current_pos"],
            "replication": None
            if replication is None
            else {
                "source": f"{replication['Master_Host']}:{replication['Master_Port']}",
                "io_running": replication["Slave_IO_Running"],
                "sql_running": replication["Slave_SQL_Running"],
                "seconds_behind": replication["Seconds_Behind_Master"],
            },
        }
