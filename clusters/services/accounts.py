"""dbpilot's own accounts on provisioned servers, checked every few seconds and repaired.

A tenant's master user holds CREATE USER and GRANT OPTION (like RDS's), and MariaDB cannot stop it from
dropping, altering, locking or revoking dbpilot's admin and replication accounts. Beat runs
`check_all_accounts` (DBPILOT_ACCOUNT_CHECK_SECONDS): on every server of every provisioned cluster
without an active job, as the server's local root (its socket, through the host's agent for `hosts`),
dbpilot checks that each account exists for its client host, with its password, unlocked and with its
privileges. A difference opens a finding `DBPILOT_ACCOUNT_CHANGED` on that server (with an event saying
what changed), and the accounts are recreated there (with sql_log_bin=0: nothing replicates, no errant
transaction). The finding is resolved once a check finds them right again. A server that does not answer
is monitoring's business: it is skipped.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from clusters.credentials import admin_credentials, replication_credentials
from clusters.domain import constants as c
from clusters.events import record_event
from clusters.jobs.provision_steps import own_account_statements
from clusters.models import ACTIVE_JOB_STATES, Cluster, Finding, Job, Server
from clusters.providers.accounts import ADMIN_PRIVILEGES
from clusters.providers.base import Provider, ProviderError
from clusters.providers.registry import get_provider
from controlplane.crypto import decrypt_json

log = logging.getLogger(__name__)
FINDING = c.DBPILOT_ACCOUNT_CHANGED


def account_problems(provider: Provider, instance: str, root_password: str, admin, repl) -> list[str]:
    """What is wrong with dbpilot's accounts on the server (empty: nothing)."""
    host = provider.client_host
    rows = provider.execute(
        instance,
        root_password,
        [
            (
                "SELECT User AS user, "
                "JSON_VALUE(Priv, '$.authentication_string') = PASSWORD(IF(User = %s, %s, %s)) AS password_ok, "
                "IFNULL(JSON_VALUE(Priv, '$.account_locked'), 'false') AS locked "
                "FROM mysql.global_priv WHERE Host = %s AND User IN (%s, %s)",
                (admin.user, admin.password, repl.password, host, admin.user, repl.user),
            )
        ],
    )
    grants = provider.execute(
        instance,
        root_password,
        [
            (
                "SELECT GRANTEE AS grantee, PRIVILEGE_TYPE AS privilege FROM information_schema.USER_PRIVILEGES "
                "WHERE GRANTEE IN (%s, %s)",
                (f"'{admin.user}'@'{host}'", f"'{repl.user}'@'{host}'"),
            )
        ],
    )
    problems = []
    for user, wanted in ((admin.user, ADMIN_PRIVILEGES), (repl.user, ("REPLICATION SLAVE",))):
        row = next((r for r in rows if r["user"] == user), None)
        if row is None:
            problems.append(f"{user}@{host} is missing")
            continue
        if str(row["password_ok"]) not in ("1", "True"):
            problems.append(f"{user}@{host} has another password")
        if str(row["locked"]).lower() in ("true", "1"):
            problems.append(f"{user}@{host} is locked")
        held = {g["privilege"] for g in grants if g["grantee"] == f"'{user}'@'{host}'"}
        lacking = [p for p in wanted if p not in held]
        if lacking:
            problems.append(f"{user}@{host} lacks {', '.join(lacking)}")
    return problems


def check_cluster_accounts(cluster: Cluster) -> dict[str, list[str]]:
    """Check (and repair) dbpilot's accounts on each server of a provisioned cluster; {address: problems
    found} for the servers where something was wrong."""
    spec = cluster.provision or {}
    provider = get_provider(spec.get("provider", "local"))
    root_password = (decrypt_json(cluster.provision_secrets_encrypted) or {}).get("root", "")
    admin, repl = admin_credentials(cluster), replication_credentials(cluster)
    found: dict[str, list[str]] = {}
    for server in Server.objects.filter(cluster=cluster).exclude(instance=""):
        open_finding = Finding.objects.filter(
            cluster=cluster, server=server, code=FINDING, resolved_at__isnull=True
        ).first()
        try:
            problems = account_problems(provider, server.instance, root_password, admin, repl)
        except Exception as exc:  # noqa: BLE001 - an unreachable server: monitoring's business
            log.info("cannot check dbpilot's accounts on %s: %s", server.address, exc)
            continue
        now = timezone.now()
        if not problems:
            if open_finding is not None:
                open_finding.resolved_at = now
                open_finding.save(update_fields=["resolved_at"])
                record_event(
                    cluster.pk,
                    "finding_resolved",
                    f"Resolved: {open_finding.message}",
                    data={"code": FINDING, "server": server.address, "server_id": server.pk},
                )
            continue
        found[server.address] = problems
        message = f"dbpilot's accounts on {server.address} were changed: {'; '.join(problems)}"
        if open_finding is None:
            Finding.objects.create(
                cluster=cluster,
                server=server,
                code=FINDING,
                severity=c.FINDING_SEVERITY[FINDING],
                message=message,
                details={"problems": problems},
                opened_at=now,
            )
            record_event(
                cluster.pk,
                "finding_opened",
                message,
                severity="error",
                data={
                    "code": FINDING,
                    "server": server.address,
                    "server_id": server.pk,
                    "problems": problems,
                },
            )
        try:
            provider.execute(
                server.instance, root_password, own_account_statements(admin, repl, provider.client_host)
            )
        except Exception as exc:  # noqa: BLE001 - said in the event; the next check tries again
            record_event(
                cluster.pk,
                "accounts_repair_failed",
                f"Recreating dbpilot's accounts on {server.address} failed: {exc}",
                severity="error",
                data={"server": server.address},
            )
            continue
        record_event(
            cluster.pk,
            "accounts_repaired",
            f"dbpilot's accounts recreated on {server.address} ({'; '.join(problems)})",
            severity="warning",
            data={"server": server.address, "problems": problems},
        )
    return found


def check_all_accounts() -> int:
    """Every provisioned cluster without an active job (a job sets accounts up itself); servers repaired."""
    busy = set(Job.objects.filter(state__in=ACTIVE_JOB_STATES).values_list("cluster_id", flat=True))
    repaired = 0
    for cluster in Cluster.objects.filter(origin=Cluster.Origin.PROVISIONED).exclude(pk__in=busy):
        if cluster.primary_id is None or not cluster.provision_secrets_encrypted:
            continue
        try:
            repaired += len(check_cluster_accounts(cluster))
        except ProviderError as exc:
            log.warning("cannot check the accounts of cluster %s: %s", cluster.pk, exc)
    return repaired
