"""Import from replication-manager: the sample configuration (two clusters, an include directory) mapped
to dbpilot specs, every unmapped key reported, always manual first."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbpilot_cli.rmimport import import_config, read_config, report_lines
from dbpilot_cli.spec import SpecError, parse_spec

pytestmark = pytest.mark.unit

SAMPLE = Path(__file__).parents[1] / "cli" / "samples" / "replication-manager" / "config.toml"


@pytest.fixture
def report():
    sections, files = read_config(SAMPLE)
    return import_config(sections, files, hooks_available={"pre-failover.sh"})


def test_both_clusters_are_read_through_the_include(report):
    assert sorted(c.name for c in report.clusters) == ["billing", "orders"]
    assert len(report.files) == 3


def test_the_listed_keys_are_mapped(report):
    orders = next(c for c in report.clusters if c.name == "orders").spec
    assert orders["servers"] == ["10.0.0.11:3306", "10.0.0.12:3306", "10.0.0.13:3306"]
    assert orders["credentials"] == {"user": "repman", "password": "orders-db-secret"}
    assert orders["replication_credentials"]["user"] == "repl"
    assert orders["settings"] == {
        "failover_limit": 3,
        "failover_min_interval_seconds": 3600,
        "failcount": 5,
        "max_replica_delay_seconds": 30,
        "switchover_wait_kill_ms": 5000,
        "switchover_wait_trx_seconds": 10,
        "candidate_requires_semi_sync": True,
        "autorejoin": True,
        "replicas_read_only": True,
        "preferred_servers": ["10.0.0.11:3306"],
        "ignored_servers": ["10.0.0.13:3306"],
        "pre_failover": "pre-failover.sh",
    }
    assert orders["routes"] == [
        {
            "name": "haproxy",
            "kind": "haproxy",
            "runtime_api": "tcp://127.0.0.1:1999",
            "write_backend": "orders_write",
            "read_backend": "orders_read",
        }
    ]
    billing = next(c for c in report.clusters if c.name == "billing").spec
    assert billing["settings"]["failover_limit"] == 1  # the cluster's own value over [Default]'s
    assert billing["routes"][0]["kind"] == "proxysql" and billing["routes"][0]["writer_hostgroup"] == 10
    for imported in report.clusters:
        assert "failover_mode" not in imported.spec  # registered manual; an existing cluster's mode is kept
        parse_spec(imported.spec)  # a valid dbpilot spec


def test_every_unmapped_key_is_listed_and_secrets_are_not_shown(report):
    text = "\n".join(report_lines(report))
    for key in (
        "title",
        "db-servers-connect-timeout",
        "haproxy-write-port",
        "haproxy-read-port",
        "proxysql-copy-grants",
        "backup-physical-type",
        "http-port",
        "log-level",
        "monitoring-datadir",
        "autorejoin-semisync",
        "api-credentials",
    ):
        assert f"not mapped: {key}" in text or f"not mapped ([Default]): {key}" in text, key
    assert "repman-api-secret" not in text and "orders-db-secret" not in text
    assert "asked for automatic failover: orders" in text
    printable = next(c for c in report.clusters if c.name == "billing").printable_spec()
    assert "billing-proxysql-secret" not in str(printable) and "billing-db-secret" not in str(printable)


def test_a_script_missing_from_the_hooks_directory_is_reported_not_mapped():
    sections, files = read_config(SAMPLE)
    report = import_config(sections, files, hooks_available=set())
    orders = next(c for c in report.clusters if c.name == "orders")
    assert "pre_failover" not in orders.spec["settings"]
    assert any(
        line.startswith("failover-pre-script") and "hooks directory" in line for line in orders.unmapped
    )


def test_a_cluster_without_servers_is_an_error(tmp_path):
    (tmp_path / "c.toml").write_text('[Default]\nfailcount = 3\n[lonely]\ndb-servers-credential = "a:b"\n')
    sections, files = read_config(tmp_path / "c.toml")
    with pytest.raises(SpecError, match="db-servers-hosts is missing"):
        import_config(sections, files)
