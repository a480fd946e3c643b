"""Topology analysis: roles, states, the primary in inconsistent pictures, and every finding code."""

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from clusters.domain import constants as c
from clusters.domain.settings import ClusterSettings
from clusters.domain.topology import analyze
from tests.unit.domain_builders import R1, R2, P, failed, healthy, inventory, primary, replica, with_channel

pytestmark = pytest.mark.unit
DEFAULTS = ClusterSettings()


def run(probes, failures=None, settings=DEFAULTS, servers=(P, R1, R2), known_primary=None, **flags):
    return analyze(
        inventory(*servers, **flags), probes, settings, failures or {}, 1000.0, known_primary=known_primary
    )


def found(topology):
    return {(f.code, f.server) for f in topology.findings}


def finding(topology, code, server=None):
    return next(f for f in topology.findings if f.code == code and f.server == server)


def test_healthy_cluster_has_roles_edges_and_no_findings():
    topology = run(healthy())
    assert topology.primary == P
    assert [(s.address, s.role, s.state) for s in topology.servers] == [
        (P, "primary", "up"),
        (R1, "replica", "up"),
        (R2, "replica", "up"),
    ]
    assert topology.replication_edges == ((R1, P), (R2, P))
    assert topology.findings == ()
    assert topology.server(R1).replication == {
        "source": P,
        "io_running": "Yes",
        "sql_running": "Yes",
        "seconds_behind": 0,
        "sql_delay": 0,
    }
    assert topology.primary_server_id == 1
    json.dumps(topology.as_dict())  # the hot store keeps it as JSON


def test_stopped_sql_thread_is_reported_with_its_error():
    probes = healthy(
        r1=replica(
            R1,
            channel_fields=dict(
                sql_running=False, last_sql_errno=1062, last_sql_error="Duplicate entry '1' for key 'PRIMARY'"
            ),
        )
    )
    topology = run(probes)
    result = finding(topology, c.REPLICA_SQL_STOPPED, R1)
    assert result.severity == "error"
    assert "1062" in result.message and result.details["last_sql_errno"] == 1062
    assert found(topology) == {(c.REPLICA_SQL_STOPPED, R1)}


def test_stopped_io_thread_is_reported_with_its_error():
    probes = healthy(
        r2=replica(
            R2,
            channel_fields=dict(
                io_running="No", last_io_errno=1236, last_io_error="Got fatal error 1236 from master"
            ),
        )
    )
    topology = run(probes)
    assert found(topology) == {(c.REPLICA_IO_STOPPED, R2)}
    assert "1236" in finding(topology, c.REPLICA_IO_STOPPED, R2).message


@pytest.mark.parametrize(
    ("seconds_behind", "sql_delay", "lagging"),
    [(10, 0, False), (31, 0, True), (3600, 3600, False), (3620, 3600, False), (3700, 3600, True)],
)
def test_lag_excludes_the_intended_master_delay(seconds_behind, sql_delay, lagging):
    probes = healthy(r1=replica(R1, channel_fields=dict(seconds_behind=seconds_behind, sql_delay=sql_delay)))
    topology = run(probes)
    assert ((c.REPLICA_LAGGING, R1) in found(topology)) is lagging
    assert topology.server(R1).lag == max(0, seconds_behind - sql_delay)


def test_writable_replica_is_reported_only_when_replicas_must_be_read_only():
    probes = healthy(r1=replica(R1, read_only=False))
    assert (c.REPLICA_NOT_READ_ONLY, R1) in found(run(probes))
    assert found(run(probes, settings=ClusterSettings(replicas_read_only=False))) == set()


def test_two_writable_servers_pick_the_one_the_replicas_follow():
    probes = healthy(r2=primary(R2))  # R2 writable, replicates from nothing
    topology = run(probes, servers=(R2, P, R1))  # inventory order must not decide
    assert topology.primary == P
    two = finding(topology, c.TWO_WRITABLE_PRIMARIES)
    assert two.severity == "critical" and set(two.details["servers"]) == {P, R2}
    assert topology.server(R2).role == "orphan"
    assert (c.SERVER_NOT_REPLICATING, R2) in found(topology)
    assert (c.REPLICA_NOT_READ_ONLY, R2) not in found(topology)  # said once, by TWO_WRITABLE_PRIMARIES


def test_primary_failing_once_is_suspect_and_replica_io_noise_is_suppressed():
    lost = dict(io_running="Connecting", last_io_errno=2003, last_io_error="Can't connect")
    probes = healthy(p=failed(P), r1=replica(R1, channel_fields=lost), r2=replica(R2, channel_fields=lost))
    topology = run(probes, failures={P: 1})
    assert topology.primary == P and topology.server(P).state == "suspect"
    assert found(topology) == {(c.PRIMARY_SUSPECT, P)}


def test_primary_down_after_failcount_is_still_the_server_replicas_point_at():
    lost = dict(io_running="Connecting", last_io_errno=2003)
    probes = healthy(p=failed(P), r1=replica(R1, channel_fields=lost), r2=replica(R2, channel_fields=lost))
    topology = run(probes, failures={P: 3})
    assert topology.primary == P
    assert topology.server(P).state == "down" and topology.server(P).role == "primary"
    assert found(topology) == {(c.PRIMARY_DOWN, P)}
    assert finding(topology, c.PRIMARY_DOWN, P).severity == "critical"


def test_primary_unreachable_from_dbpilot_only_while_replicas_still_receive():
    probes = healthy(p=failed(P, "timeout"))
    topology = run(probes, failures={P: 3})
    assert topology.server(P).state == "unreachable"
    result = finding(topology, c.PRIMARY_UNREACHABLE, P)
    assert result.details["receiving"] == [R1, R2]
    assert "no failover" in result.message


def test_sigstopped_primary_with_stale_heartbeats_is_down_not_unreachable():
    stale = dict(io_running="Yes", last_heartbeat_age_seconds=6.0, heartbeat_period=1.0)
    probes = healthy(
        p=failed(P, "timeout"), r1=replica(R1, channel_fields=stale), r2=replica(R2, channel_fields=stale)
    )
    topology = run(probes, failures={P: 3})
    assert topology.server(P).state == "down"
    assert found(topology) == {(c.PRIMARY_DOWN, P)}


def test_replica_not_receiving_while_primary_is_up():
    probes = healthy(r1=replica(R1, channel_fields=dict(last_heartbeat_age_seconds=9.0)))
    assert found(run(probes)) == {(c.REPLICA_NOT_RECEIVING, R1)}


def test_no_primary_when_nothing_is_writable_and_nothing_replicates():
    probes = {a: primary(a, read_only=True) for a in (P, R1, R2)}
    topology = run(probes)
    assert topology.primary is None
    assert (c.NO_PRIMARY, None) in found(topology)
    assert {s.role for s in topology.servers} == {"orphan"}


def test_read_only_primary_is_still_the_primary_the_replicas_follow():
    topology = run(healthy(p=primary(P, read_only=True)))
    assert topology.primary == P
    assert found(topology) == {(c.PRIMARY_READ_ONLY, P)}


def test_known_primary_decides_when_every_server_is_down():
    probes = {a: failed(a) for a in (P, R1, R2)}
    topology = run(probes, failures={P: 5, R1: 5, R2: 5}, known_primary=R1)
    assert topology.primary == R1
    assert (c.PRIMARY_DOWN, R1) in found(topology)
    assert {(c.REPLICA_UNREACHABLE, P), (c.REPLICA_UNREACHABLE, R2)} <= found(topology)


def test_replica_of_a_replica_points_at_the_wrong_source():
    topology = run(healthy(r2=replica(R2, source=R1)))
    assert topology.server(R1).role == "relay"
    assert topology.server(R2).role == "replica"
    result = finding(topology, c.REPLICA_WRONG_SOURCE, R2)
    assert result.details == {"source": R1, "primary": P}


def test_source_outside_the_cluster_is_a_wrong_source():
    topology = run(healthy(r2=replica(R2, source="127.0.0.9:3306")))
    assert "outside this cluster" in finding(topology, c.REPLICA_WRONG_SOURCE, R2).message
    assert (R2, "127.0.0.9:3306") in topology.replication_edges


def test_source_named_differently_is_matched_by_server_id_or_localhost():
    by_name = replica(R1, channel_fields=dict(source_host="db-primary", source_port=3306, source_server_id=1))
    by_localhost = replica(R2, channel_fields=dict(source_host="localhost"))
    topology = run(healthy(r1=by_name, r2=by_localhost))
    assert topology.replication_edges == ((R1, P), (R2, P))
    assert topology.findings == ()


def test_ipv6_addresses_are_compared_in_canonical_form():
    v6p, v6r = "[::1]:3306", "[::1]:3307"
    probes = {v6p: primary(v6p), v6r: replica(v6r, source=v6p, channel_fields=dict(source_host="0:0::1"))}
    topology = run(probes, servers=(v6p, v6r))
    assert topology.primary == v6p and topology.replication_edges == ((v6r, v6p),)


def test_errant_transactions_are_listed():
    probes = healthy(r1=replica(R1, gtid_binlog_state="0-1-100,0-2-5", gtid_current_pos="0-1-100"))
    result = finding(run(probes), c.ERRANT_GTID, R1)
    assert result.details["gtids"] == ["0-2-5"] and "0-2-5" in result.message


def test_unreadable_gtids_say_so_instead_of_failing():
    topology = run(healthy(r1=replica(R1, gtid_binlog_state="garbage")))
    assert (c.GTID_UNREADABLE, R1) in found(topology)


def test_replica_needing_purged_binlogs():
    probes = healthy(
        p=primary(P, gtid_list_of_oldest_binlog="0-1-90"),
        r1=replica(
            R1,
            gtid_current_pos="0-1-50",
            gtid_slave_pos="0-1-50",
            gtid_binlog_state="0-1-50",
            channel_fields=dict(io_running="No", last_io_errno=1236),
        ),
    )
    topology = run(probes)
    assert finding(topology, c.BINLOG_PURGED_NEEDED, R1).details["missing"] == "0:51-90"
    assert (c.BINLOG_PURGED_NEEDED, R2) not in found(topology)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        (dict(gtid_strict_mode=False), c.GTID_STRICT_MODE_OFF),
        (dict(log_bin=False), c.LOG_BIN_OFF),
        (dict(log_slave_updates=False), c.LOG_SLAVE_UPDATES_OFF),
        (dict(binlog_format="MIXED"), c.BINLOG_FORMAT_NOT_ROW),
    ],
)
def test_server_settings_findings(fields, code):
    topology = run(healthy(r2=replica(R2, **fields)))
    assert found(topology) == {(code, R2)}


def test_replication_by_file_and_position_is_gtid_not_used():
    topology = run(healthy(r1=replica(R1, channel_fields=dict(using_gtid="No"))))
    assert found(topology) == {(c.GTID_NOT_USED, R1)}


def test_semi_sync_expected_but_off_on_primary_and_replica():
    settings = ClusterSettings(semi_sync=True)
    probes = healthy(
        r1=replica(R1, semi_sync_slave_enabled=True), r2=replica(R2, semi_sync_slave_enabled=False)
    )
    topology = run(probes, settings=settings)
    assert found(topology) == {(c.SEMI_SYNC_OFF, P), (c.SEMI_SYNC_OFF, R2)}


def test_semi_sync_fallen_back_to_async_and_wrong_wait_point():
    semi = dict(semi_sync_slave_enabled=True)
    probes = healthy(
        p=primary(
            P,
            semi_sync_master_enabled=True,
            semi_sync_master_status=False,
            semi_sync_wait_point="AFTER_COMMIT",
        ),
        r1=replica(R1, **semi),
        r2=replica(R2, **semi),
    )
    topology = run(probes, settings=ClusterSettings(semi_sync=True))
    assert found(topology) == {(c.SEMI_SYNC_INACTIVE, P), (c.SEMI_SYNC_WAIT_POINT, P)}


def test_auth_failure_is_its_own_state_and_finding():
    topology = run(healthy(r1=failed(R1, "auth_failed")), failures={R1: 0})
    assert topology.server(R1).state == "auth_failed"
    assert found(topology) == {(c.AUTH_FAILED, R1)}


def test_replica_failing_once_is_suspect_then_down_after_failcount():
    suspect = run(healthy(r1=failed(R1, "timeout")))
    assert suspect.server(R1).state == "suspect" and suspect.server(R1).failures == 1
    down = run(healthy(r1=failed(R1, "timeout")), failures={R1: 3})
    assert down.server(R1).state == "down" and down.server(R1).role == "unknown"
    assert finding(down, c.REPLICA_UNREACHABLE, R1).details["state"] == "down"
    assert down.unobserved == {R1}


def test_version_mismatch_is_reported_once_for_the_cluster():
    topology = run(healthy(r2=replica(R2, version="10.6.16-MariaDB")))
    result = finding(topology, c.VERSION_MISMATCH)
    assert result.details["versions"][R2] == "10.6.16-MariaDB"


def test_one_server_cluster_has_no_replica_to_fail_over_to():
    topology = run({P: primary(P)}, servers=(P,))
    assert topology.primary == P
    assert "one-server cluster" in finding(topology, c.NO_REPLICA).message
    down = run({P: failed(P)}, servers=(P,), failures={P: 3})
    assert down.primary == P and (c.PRIMARY_DOWN, P) in found(down)


def test_maintenance_hides_replication_health_but_not_safety():
    probes = healthy(r1=replica(R1, read_only=False, channel_fields=dict(sql_running=False)))
    topology = run(probes, maintenance={R1})
    assert found(topology) == {(c.SERVER_MAINTENANCE, R1), (c.REPLICA_NOT_READ_ONLY, R1)}
    assert topology.server(R1).maintenance


def test_fenced_server_that_comes_back_writable_is_critical_and_never_primary():
    # After a failover from P to R1: P returns writable with no replica; R1 took over with no replica left.
    probes = {P: primary(P), R1: primary(R1)}
    topology = run(probes, servers=(P, R1), fenced={P}, known_primary=R1)
    assert topology.primary == R1
    assert finding(topology, c.FENCED_SERVER_WRITABLE, P).severity == "critical"
    assert (c.TWO_WRITABLE_PRIMARIES, None) in found(topology)


def test_quarantined_server_is_reported_and_not_asked_to_replicate():
    probes = healthy(r2=primary(R2, read_only=True, gtid_binlog_state="0-1-100"))
    topology = run(probes, quarantined={R2})
    assert found(topology) == {(c.SERVER_QUARANTINED, R2)}


def test_primary_with_a_leftover_replication_channel():
    probes = healthy(p=replica(P, source=R2, read_only=False, channel_fields=dict(io_running="No")))
    topology = run(probes)
    assert topology.primary == P
    assert (c.PRIMARY_HAS_SOURCE, P) in found(topology)


def test_mysql_gtid_mode_and_errant_transactions():
    uuid_p, uuid_r = "3e11fa47-71ca-11e1-9e33-c80aa9429562", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    mysql = dict(flavour="mysql", version="8.0.36", gtid_current_pos=None, gtid_binlog_state=None)
    probes = healthy(
        p=primary(P, gtid_executed=f"{uuid_p}:1-100", server_uuid=uuid_p, gtid_mode="ON", **mysql),
        r1=replica(R1, gtid_executed=f"{uuid_p}:1-100,{uuid_r}:1", gtid_mode="ON", **mysql),
        r2=replica(R2, gtid_executed=f"{uuid_p}:1-100", gtid_mode="OFF_PERMISSIVE", **mysql),
    )
    topology = run(probes)
    assert finding(topology, c.ERRANT_GTID, R1).details["gtids"] == [f"{uuid_r}:1"]
    assert (c.GTID_NOT_USED, R2) in found(topology)
    assert topology.server(R1).gtid_current_pos == f"{uuid_p}:1-100,{uuid_r}:1"


def test_unprobed_servers_are_unknown():
    topology = run({P: primary(P)})
    assert topology.server(R1).state == "unknown" and topology.server(R1).role == "unknown"
    assert (c.NO_REPLICA, None) in found(topology)


def test_every_finding_has_a_message_and_a_known_severity():
    probes = healthy(
        r1=with_channel(replica(R1, read_only=False, log_bin=False), sql_running=False, using_gtid="No")
    )
    topology = run(probes, settings=replace(DEFAULTS, semi_sync=True))
    assert topology.findings
    for result in topology.findings:
        assert result.severity == c.FINDING_SEVERITY[result.code]
        assert len(result.message) > 30


def test_every_finding_code_is_documented():
    text = (Path(__file__).resolve().parents[2] / "docs" / "findings.md").read_text()
    documented = set(re.findall(r"^### `([A-Z_]+)`", text, flags=re.M))
    assert documented == set(c.FINDING_CODES)
    for code, severity in c.FINDING_SEVERITY.items():
        section = text.split(f"### `{code}`", 1)[1].split("###", 1)[0]
        assert f"Severity: **{severity}**" in section, code
