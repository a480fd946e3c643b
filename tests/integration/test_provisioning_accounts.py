"""dbpilot's own accounts on a provisioned cluster: the tenant's master user can change them (CREATE USER,
GRANT OPTION); the periodic check opens a finding saying what changed, recreates them on every server,
and resolves the finding once they are right again."""

from __future__ import annotations

import pymysql
import pytest

from clusters.credentials import admin_credentials, replication_credentials
from clusters.models import Event, Finding
from clusters.services.accounts import FINDING, check_all_accounts
from tests.integration.provisioning_helpers import (
    connect,
    job_of,
    provision,
    root_connection,
    tenant_client,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_changed_accounts_are_found_and_recreated_on_every_server(local_servers):
    client, _ = tenant_client()
    body, cluster = provision(client, "shop", replicas=1)
    job = job_of(body)
    assert job.state == "succeeded", (job.result.get("detail"), job.steps)
    cluster.refresh_from_db()
    admin, repl = admin_credentials(cluster), replication_credentials(cluster)
    assert check_all_accounts() == 0  # right after provisioning: nothing to repair

    # The master user changes dbpilot's admin password and revokes replication (it replicates).
    with connect(cluster.primary.address, "owner", "a-long-password-1") as conn, conn.cursor() as cursor:
        cursor.execute("ALTER USER %s@'127.0.0.1' IDENTIFIED BY 'stolen-by-tenant'", (admin.user,))
        cursor.execute("REVOKE REPLICATION SLAVE ON *.* FROM %s@'127.0.0.1'", (repl.user,))
    with pytest.raises(pymysql.err.OperationalError):
        connect(cluster.primary.address, admin.user, admin.password).close()

    assert check_all_accounts() == 2  # both servers repaired
    findings = Finding.objects.filter(cluster=cluster, code=FINDING)
    assert findings.count() == 2
    problems = " ".join(str(f.details["problems"]) for f in findings)
    assert "another password" in problems and "lacks REPLICATION SLAVE" in problems
    assert Event.objects.filter(cluster=cluster, kind="accounts_repaired").count() == 2
    connect(cluster.primary.address, admin.user, admin.password).close()  # the password is dbpilot's again
    with root_connection(local_servers, cluster, cluster.primary.instance) as conn, conn.cursor() as cursor:
        cursor.execute("SHOW GRANTS FOR %s@'127.0.0.1'", (repl.user,))
        assert "REPLICATION SLAVE" in str(cursor.fetchall())
        cursor.execute("SELECT @@gtid_binlog_state AS state")
        state = cursor.fetchone()["state"]

    assert check_all_accounts() == 0  # right again: the findings resolve
    assert not Finding.objects.filter(cluster=cluster, code=FINDING, resolved_at__isnull=True).exists()
    # The repair wrote no binlog event of its own: the only GTIDs are the tenant's two statements.
    assert len(state.split(",")) == 1 and state.endswith("-2")

    # A dropped account is recreated too.
    with connect(cluster.primary.address, "owner", "a-long-password-1") as conn, conn.cursor() as cursor:
        cursor.execute("DROP USER %s@'127.0.0.1'", (admin.user,))
    assert check_all_accounts() == 2
    assert "is missing" in str(Finding.objects.filter(cluster=cluster, code=FINDING).first().details)
    connect(cluster.primary.address, admin.user, admin.password).close()
