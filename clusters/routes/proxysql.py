"""The ProxySQL driver: writer and reader hostgroups in `mysql_servers`, through ProxySQL's admin interface.

ProxySQL's admin interface speaks the MySQL protocol (port 6032 by default). One sync reads the rows of
the two hostgroups, then, touching only rows whose hostname and port are servers of this cluster:

- primary leaving: the old primary's writer row goes `OFFLINE_SOFT` (no new connection; those open finish);
- new primary: the writer hostgroup holds the primary alone (`ONLINE`; other cluster servers' writer rows
  deleted); in the reader hostgroup the readers are `ONLINE` and the other cluster servers `OFFLINE_SOFT`
  (rows added when missing);

then `LOAD MYSQL SERVERS TO RUNTIME` and, with `save_to_disk`, `SAVE MYSQL SERVERS TO DISK`. If
`mysql_replication_hostgroups` is configured for these hostgroups, ProxySQL's own monitor also moves
servers by `read_only`; both agree once the switch is done.

NOT verified against a live ProxySQL (none can be installed here): the statements follow ProxySQL's
documented admin interface and are tested against a MariaDB server holding a table shaped like
`mysql_servers` (tests/integration/test_routing_doubles.py explains the shim).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from clusters.adapters.mysql import ConnectOptions, Credentials, ServerError, connect
from clusters.domain.addresses import AddressError, format_address, parse_address
from clusters.routes.base import PRIMARY_CHANGED, RouteDriver, RouteError, RoutePlan, RouteResult
from clusters.routes.bound import BoundRoute, canonical
from clusters.routes.registry import register_driver
from controlplane.netpolicy import NotAllowed

ONLINE, OFFLINE_SOFT = "ONLINE", "OFFLINE_SOFT"
LOAD = "LOAD MYSQL SERVERS TO RUNTIME"
SAVE = "SAVE MYSQL SERVERS TO DISK"
OPTIONS = ConnectOptions(connect_timeout=1.0, read_timeout=3.0)


def connect_admin(address: str, user: str, password: str):
    """A PyMySQL connection to the admin interface (pinned, allowlisted). Tests replace this function."""
    return connect(address, Credentials(user, password), OPTIONS)


@dataclass(frozen=True)
class Row:
    hostgroup: int
    address: str  # canonical host:port
    status: str


def plan_statements(
    bound: BoundRoute, plan: RoutePlan, rows: list[Row], writer: int, reader: int | None
) -> tuple[list[tuple[str, tuple]], list[str]]:
    """The statements (with parameters) that bring the hostgroups to the plan; and a summary."""
    cluster = {canonical(s.address) for s in bound.servers}
    have = {(r.hostgroup, r.address): r.status for r in rows if r.address in cluster}
    statements: list[tuple[str, tuple]] = []
    summary: list[str] = []

    def hostport(address: str) -> tuple[str, int]:
        parsed = parse_address(address)
        return parsed.host, parsed.port

    def set_status(hostgroup: int, address: str, status: str) -> None:
        current = have.get((hostgroup, address))
        if current == status:
            return
        if current is None:
            statements.append(
                (
                    "INSERT INTO mysql_servers (hostgroup_id, hostname, port, status, comment) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (hostgroup, *hostport(address), status, "dbpilot"),
                )
            )
        else:
            statements.append(
                (
                    "UPDATE mysql_servers SET status = %s WHERE hostgroup_id = %s AND hostname = %s "
                    "AND port = %s",
                    (status, hostgroup, *hostport(address)),
                )
            )
        summary.append(f"hostgroup {hostgroup}: {address} {status}")

    if plan.phase != PRIMARY_CHANGED or not plan.primary:
        old = canonical(plan.old_primary) if plan.old_primary else None
        if old and (writer, old) in have:
            set_status(writer, old, OFFLINE_SOFT)
        return statements, summary
    primary = canonical(plan.primary)
    set_status(writer, primary, ONLINE)
    for hostgroup, address in sorted(have):
        if hostgroup == writer and address != primary:
            statements.append(
                (
                    "DELETE FROM mysql_servers WHERE hostgroup_id = %s AND hostname = %s AND port = %s",
                    (writer, *hostport(address)),
                )
            )
            summary.append(f"hostgroup {writer}: {address} removed")
    if reader is not None:
        readers = {canonical(a) for a in bound.read_members(plan)}
        for address in sorted(cluster):
            if address in readers:
                set_status(reader, address, ONLINE)
            elif (reader, address) in have:
                set_status(reader, address, OFFLINE_SOFT)
    return statements, summary


@register_driver("proxysql")
class ProxysqlDriver(RouteDriver):
    """`admin_address`, `admin_user`, `admin_password` (secret), `writer_hostgroup`, optional
    `reader_hostgroup`, `save_to_disk`."""

    route: BoundRoute

    def apply(self, plan: RoutePlan) -> RouteResult:
        started = time.monotonic()
        settings = self.route.settings
        writer, reader = int(settings["writer_hostgroup"]), settings.get("reader_hostgroup")
        reader = int(reader) if reader is not None else None
        address = settings["admin_address"]
        try:
            connection = connect_admin(
                address, settings["admin_user"], self.route.secrets.get("admin_password", "")
            )
        except NotAllowed as exc:
            raise RouteError(f"ProxySQL admin {address}: {exc}", permanent=True) from None
        except ServerError as exc:
            raise RouteError(
                f"ProxySQL admin interface at {address}: {exc}",
                permanent=exc.outcome == "auth_failed",
                public=exc.outcome == "auth_failed",
            ) from None
        try:
            with connection.cursor() as cursor:
                groups = (writer,) if reader is None else (writer, reader)
                cursor.execute(
                    "SELECT hostgroup_id, hostname, port, status FROM mysql_servers WHERE hostgroup_id IN "
                    f"({', '.join(['%s'] * len(groups))})",
                    groups,
                )
                rows = []
                for row in cursor.fetchall():
                    values = list(row.values()) if isinstance(row, dict) else list(row)
                    try:
                        spelled = canonical(format_address(str(values[1]), int(values[2])))
                    except (ValueError, AddressError):
                        continue  # a row for something that is not host:port: not this cluster's
                    rows.append(Row(int(values[0]), spelled, str(values[3]).upper()))
                statements, summary = plan_statements(self.route, plan, rows, writer, reader)
                if statements:
                    for sql, params in statements:
                        cursor.execute(sql, params)
                    cursor.execute(LOAD)
                    if settings.get("save_to_disk", True):
                        cursor.execute(SAVE)
        except Exception as exc:  # noqa: BLE001 - PyMySQL errors of every kind become a clear route error
            raise RouteError(f"ProxySQL admin at {address} refused: {exc}") from None
        finally:
            connection.close()
        detail = "; ".join(summary) if summary else "already as wanted"
        return RouteResult(
            self.name,
            True,
            detail,
            duration_ms=(time.monotonic() - started) * 1000,
            extra={"statements": [sql for sql, _ in statements]},
        )
