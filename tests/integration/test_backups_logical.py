"""A registered cluster (no provider of dbpilot owns its servers) gets logical backups: mariadb-dump
--single-transaction --gtid from a replica, with the GTID position it is consistent at."""

from __future__ import annotations

import pytest

from clusters.backup_models import Backup
from clusters.models import Job
from tests.integration.backup_helpers import use_directory
from tests.integration.failover_helpers import register_cluster

pytestmark = pytest.mark.django_db(transaction=True)
DUMP_GRANTS = "SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, RELOAD"


def test_registered_cluster_logical_backup(sandbox_factory, settings, tmp_path):
    settings.DBPILOT_FAILOVER_RUNNER = "inline"
    use_directory(settings, tmp_path / "backups")
    sandbox = sandbox_factory(2)
    cluster = register_cluster(sandbox, "reg")
    sandbox.sql(1, "CREATE TABLE app.things (id INT PRIMARY KEY)")
    sandbox.sql(1, "INSERT INTO app.things VALUES (1), (2), (3)")
    url = f"/api/v1/clusters/{cluster.id}/backups/"
    assert cluster.client.get(url).json()["method"] == "logical"

    # dbpilot's monitoring grants do not let it read the data: the job says what is missing.
    denied = Job.objects.get(pk=cluster.client.post(url, {}, format="json").json()["id"])
    assert denied.state == "failed" and "lacks SELECT, SHOW VIEW" in denied.result["detail"], denied.result
    assert Backup.objects.get(pk=denied.result["backup_id"]).status == "failed"

    (account,) = sandbox.sql(1, "SELECT user AS u, host AS h FROM mysql.user WHERE user = 'dbpilot'")
    for node in sandbox.nodes:
        with sandbox.connect(node, "root", None, 5) as conn, conn.cursor() as cursor:
            cursor.execute("SET SESSION sql_log_bin=0")
            cursor.execute(f"GRANT {DUMP_GRANTS} ON *.* TO %s@%s", (account["u"], account["h"]))
    job = Job.objects.get(pk=cluster.client.post(url, {}, format="json").json()["id"])
    assert job.state == "succeeded", job.result
    backup = Backup.objects.get(pk=job.result["backup_id"])
    assert backup.kind == "logical" and backup.source == f"{sandbox.host(2)}:{sandbox.port(2)}"
    assert backup.gtid_position == sandbox.sql(1, "SELECT @@gtid_binlog_pos AS p")[0]["p"]
    assert backup.verified is True and "logical dump is not test-restored" in backup.verified_reason
    restore = cluster.client.post(
        f"/api/v1/backups/{backup.pk}/restore/", {"name": "copy", "provision": {"replicas": 0}}, format="json"
    )
    assert restore.status_code == 400 and "logical dump" in str(restore.json())
