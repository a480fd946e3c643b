"""Examples of GTID parsing, formatting, comparison and errant/purged detection (MariaDB and MySQL)."""

import pytest

from clusters.domain.gtid import (
    Gtid,
    GtidError,
    MariadbBinlogState,
    MariadbGtidPos,
    MariadbSeqSet,
    MysqlGtidSet,
    errant_among_survivors,
    errant_gtids,
    purged_transactions_needed,
    received_position,
)
from clusters.domain.probe import ProbeResult, ReplicationChannel

pytestmark = pytest.mark.unit

U1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
U2 = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def mariadb(address="r:3306", **fields):
    return ProbeResult(address=address, outcome="ok", flavour="mariadb", **fields)


def mysql(address="r:3306", **fields):
    return ProbeResult(address=address, outcome="ok", flavour="mysql", **fields)


# --- MariaDB positions ---


def test_mariadb_position_formats_sorted_by_domain():
    assert str(MariadbGtidPos.parse(" 1-1-5,0-1-100 ")) == "0-1-100,1-1-5"
    assert str(MariadbGtidPos.parse("")) == ""
    assert MariadbGtidPos.parse(None).is_empty


@pytest.mark.parametrize(
    "text", ["0-1", "a-1-2", "0-1-2-3", "0--1-2", "4294967296-1-1", "0-1-18446744073709551616"]
)
def test_mariadb_gtid_rejects_malformed_text(text):
    with pytest.raises(GtidError):
        MariadbGtidPos.parse(text)


def test_mariadb_position_rejects_two_gtids_in_one_domain():
    with pytest.raises(GtidError, match="domain 0 appears twice"):
        MariadbGtidPos.parse("0-1-5,0-2-6")


def test_mariadb_behind_counts_per_domain():
    replica = MariadbGtidPos.parse("0-1-95,1-2-10")
    primary = MariadbGtidPos.parse("0-1-100,1-2-10,2-3-4")
    assert replica.behind(primary) == {0: 5, 2: 4}
    assert replica.transactions_behind(primary) == 9
    assert primary.behind(replica) == {}
    assert primary.contains(replica) and not replica.contains(primary)


def test_mariadb_subtract_names_the_missing_sequence_numbers():
    primary = MariadbGtidPos.parse("0-1-100,1-2-10")
    replica = MariadbGtidPos.parse("0-1-95")
    assert str(primary.subtract(replica)) == "0:96-100,1:1-10"
    assert primary.subtract(replica).count() == 15
    assert replica.subtract(primary).is_empty


def test_mariadb_union_takes_the_later_gtid_of_each_domain():
    a = MariadbGtidPos.parse("0-1-100,1-1-5")
    b = MariadbGtidPos.parse("0-2-101,2-3-1")
    assert str(a.union(b)) == "0-2-101,1-1-5,2-3-1"


def test_mariadb_union_breaks_sequence_ties_by_server_id_so_it_commutes():
    a, b = MariadbGtidPos.parse("0-1-100"), MariadbGtidPos.parse("0-2-100")
    assert a.union(b) == b.union(a) == b


def test_mariadb_seq_set_round_trip_and_errors():
    assert str(MariadbSeqSet.parse("1:3,0:5-7:1-2")) == "0:1-2:5-7,1:3"
    with pytest.raises(GtidError):
        MariadbSeqSet.parse("x:1")
    with pytest.raises(GtidError):
        MariadbSeqSet.parse("0:5-3")


# --- MariaDB binlog state and errant transactions ---


def test_binlog_state_keeps_one_entry_per_domain_and_server():
    state = MariadbBinlogState.parse("0-2-101,0-1-100,1-1-3")
    assert str(state) == "0-1-100,0-2-101,1-1-3"
    assert str(state.position()) == "0-2-101,1-1-3"
    with pytest.raises(GtidError):
        MariadbBinlogState.parse("0-1-1,0-1-2")


def test_errant_transaction_hidden_in_current_pos_is_found_in_binlog_state():
    # Without strict mode, a stray 0-2-101 on the replica is hidden once 0-1-101 arrives from the primary.
    primary = MariadbBinlogState.parse("0-1-101")
    replica = MariadbBinlogState.parse("0-1-101,0-2-101")
    assert replica.errant_relative_to(primary, primary_server_id=1) == (Gtid(0, 2, 101),)


def test_transactions_from_earlier_primaries_are_not_errant():
    # server 3 was primary once; both servers have its transactions, the replica lags on server 1's.
    primary = MariadbBinlogState.parse("0-1-200,0-3-50")
    replica = MariadbBinlogState.parse("0-1-150,0-3-50")
    assert replica.errant_relative_to(primary, primary_server_id=1) == ()


def test_newer_transaction_of_the_primary_seen_first_on_the_replica_is_not_errant():
    # probes run in parallel: the replica may be probed after the primary committed one more transaction
    primary = MariadbBinlogState.parse("0-1-100")
    replica = MariadbBinlogState.parse("0-1-101")
    assert replica.errant_relative_to(primary, primary_server_id=1) == ()
    assert replica.errant_relative_to(primary) == (Gtid(0, 1, 101),)


def test_errant_gtids_from_probes_uses_binlog_state():
    primary = mariadb("p:3306", server_id=1, gtid_binlog_state="0-1-101")
    replica = mariadb("r:3306", server_id=2, gtid_binlog_state="0-1-101,0-2-101,5-2-1")
    assert errant_gtids(replica, primary) == ["0-2-101", "5-2-1"]
    assert errant_gtids(mariadb(), primary) is None


def test_errant_among_survivors_when_the_primary_is_gone():
    candidate = mariadb("b:3306", server_id=2, gtid_binlog_state="0-1-100,0-2-7")
    other = mariadb("c:3306", server_id=3, gtid_binlog_state="0-1-98")
    assert errant_among_survivors(candidate, [candidate, other], primary_server_id=1) == ["0-2-7"]
    # the old primary's last known state had 0-2-7 (server 2 was primary before): not errant
    assert (
        errant_among_survivors(candidate, [other], primary_server_id=1, last_primary_state="0-1-90,0-2-7")
        == []
    )
    assert errant_among_survivors(candidate, [], primary_server_id=1) is None


# --- MySQL sets ---


def test_mysql_set_parses_and_formats_canonically():
    text = f"{U2}:4,\n{U1.upper()}:7-9:1-5:6"
    assert str(MysqlGtidSet.parse(text)) == f"{U1}:1-9,{U2}:4"
    assert MysqlGtidSet.parse(text).count() == 10


def test_mysql_set_with_tags():
    gtid_set = MysqlGtidSet.parse(f"{U1}:1-3:blue:5:1,{U1}:red:2")
    assert str(gtid_set) == f"{U1}:1-3:blue:1:5:red:2"
    assert gtid_set.count() == 6


@pytest.mark.parametrize(
    "text", [f"{U1}", "nope:1", f"{U1}:0", f"{U1}:5-3", f"{U1}:1:tag", f"{U1}:1:Bad-Tag:1"]
)
def test_mysql_set_rejects_malformed_text(text):
    with pytest.raises(GtidError):
        MysqlGtidSet.parse(text)


def test_mysql_set_algebra_examples():
    a = MysqlGtidSet.parse(f"{U1}:1-10,{U2}:1-3")
    b = MysqlGtidSet.parse(f"{U1}:4-5")
    assert str(a - b) == f"{U1}:1-3:6-10,{U2}:1-3"
    assert str(a & b) == f"{U1}:4-5"
    assert a.contains(b) and not b.contains(a)
    assert b.transactions_behind(a) == 11


def test_mysql_errant_ignores_the_primary_uuid():
    primary = mysql("p:3306", gtid_executed=f"{U1}:1-100", server_uuid=U1)
    replica = mysql("r:3306", gtid_executed=f"{U1}:1-101,{U2}:1-2")
    assert errant_gtids(replica, primary) == [f"{U2}:1-2"]


# --- purged binlogs and received positions ---


def test_replica_needing_purged_binlogs_is_detected_from_the_oldest_binlog_gtid_list():
    primary = mariadb("p:3306", gtid_list_of_oldest_binlog="0-1-500")
    behind = mariadb(gtid_current_pos="0-1-400", replication=(ReplicationChannel(using_gtid="Current_Pos"),))
    caught_up = mariadb(gtid_current_pos="0-1-600")
    assert purged_transactions_needed(behind, primary) == "0:401-500"
    assert purged_transactions_needed(caught_up, primary) == ""
    assert purged_transactions_needed(caught_up, mariadb("p:3306")) is None


def test_purged_check_uses_slave_pos_for_slave_pos_replicas():
    primary = mariadb("p:3306", gtid_list_of_oldest_binlog="0-1-500")
    replica = mariadb(
        gtid_current_pos="0-1-600",
        gtid_slave_pos="0-1-450",
        replication=(ReplicationChannel(using_gtid="Slave_Pos"),),
    )
    assert purged_transactions_needed(replica, primary) == "0:451-500"


def test_mysql_purged_needed_is_purged_minus_executed():
    primary = mysql("p:3306", gtid_purged=f"{U1}:1-50")
    replica = mysql(gtid_executed=f"{U1}:1-40")
    assert purged_transactions_needed(replica, primary) == f"{U1}:41-50"


def test_received_position_adds_the_io_thread_position():
    probe = mariadb(gtid_current_pos="0-1-90", replication=(ReplicationChannel(gtid_io_pos="0-1-100"),))
    assert str(received_position(probe)) == "0-1-100"
    probe = mysql(gtid_executed=f"{U1}:1-90", replication=(ReplicationChannel(gtid_io_pos=f"{U1}:1-100"),))
    assert str(received_position(probe)) == f"{U1}:1-100"
