"""Property tests of the GTID set algebra: round trips, union/subtract/intersection/contains laws."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clusters.domain.gtid import Gtid, MariadbBinlogState, MariadbGtidPos, MariadbSeqSet, MysqlGtidSet

pytestmark = pytest.mark.unit
LEAN = settings(max_examples=100, deadline=None)  # the whole suite must stay fast

UUIDS = [
    "3e11fa47-71ca-11e1-9e33-c80aa9429562",
    "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    "00000000-0000-0000-0000-000000000001",
]
TAGS = ["", "", "blue", "x_1"]

intervals = st.lists(
    st.tuples(st.integers(1, 60), st.integers(0, 8)).map(lambda t: (t[0], t[0] + t[1])),
    min_size=1,
    max_size=4,
)
mysql_sets = st.lists(st.tuples(st.sampled_from(UUIDS), st.sampled_from(TAGS), intervals), max_size=4).map(
    lambda items: MysqlGtidSet([((uuid, tag), ivs) for uuid, tag, ivs in items])
)
positions = st.dictionaries(
    st.integers(0, 3), st.tuples(st.integers(1, 4), st.integers(0, 40)), max_size=4
).map(lambda d: MariadbGtidPos(Gtid(dom, sid, seq) for dom, (sid, seq) in d.items()))
binlog_states = st.dictionaries(
    st.tuples(st.integers(0, 2), st.integers(1, 4)), st.integers(1, 40), max_size=6
).map(lambda d: MariadbBinlogState(Gtid(dom, sid, seq) for (dom, sid), seq in d.items()))
seq_sets = st.lists(st.tuples(st.integers(0, 3), intervals), max_size=4).map(MariadbSeqSet)


def members(gtid_set):
    return {(key, n) for key, ivs in gtid_set.items() for first, last in ivs for n in range(first, last + 1)}


# --- MySQL sets behave exactly like sets of (uuid, tag, n) ---


@LEAN
@given(mysql_sets)
def test_mysql_format_parse_round_trip(a):
    assert MysqlGtidSet.parse(str(a)) == a
    assert str(MysqlGtidSet.parse(str(a))) == str(a)


@LEAN
@given(mysql_sets, mysql_sets)
def test_mysql_operations_match_python_sets(a, b):
    assert members(a | b) == members(a) | members(b)
    assert members(a - b) == members(a) - members(b)
    assert members(a & b) == members(a) & members(b)
    assert a.contains(b) == (members(b) <= members(a))
    assert a.count() == len(members(a))


@LEAN
@given(mysql_sets, mysql_sets, mysql_sets)
def test_mysql_union_is_commutative_associative_idempotent(a, b, c):
    assert a | b == b | a
    assert (a | b) | c == a | (b | c)
    assert a | a == a


@LEAN
@given(mysql_sets, mysql_sets)
def test_mysql_subtract_laws(a, b):
    assert ((a - b) & b).is_empty
    assert (a - b) | (a & b) == a
    assert (a | b).contains(a) and (a | b).contains(b)
    assert a.contains(b) == (b - a).is_empty
    assert a.transactions_behind(b) == (b - a).count()
    assert (a | b).count() == a.count() + b.count() - (a & b).count()


# --- MariaDB positions: per-domain prefixes 1..seq ---


@LEAN
@given(positions)
def test_mariadb_position_round_trip(a):
    assert MariadbGtidPos.parse(str(a)) == a


@LEAN
@given(positions, positions, positions)
def test_mariadb_union_laws(a, b, c):
    assert a | b == b | a
    assert (a | b) | c == a | (b | c)
    assert a | a == a
    assert (a | b).contains(a) and (a | b).contains(b)


@LEAN
@given(positions, positions)
def test_mariadb_contains_behind_subtract_agree(a, b):
    assert a.contains(b) == (not a.behind(b)) == (b - a).is_empty
    assert a.transactions_behind(b) == (b - a).count() == sum(a.behind(b).values())
    assert members(a - b) == members(a.as_seq_set()) - members(b.as_seq_set())
    assert members((a | b).as_seq_set()) == members(a.as_seq_set()) | members(b.as_seq_set())


@LEAN
@given(seq_sets)
def test_mariadb_seq_set_round_trip(a):
    assert MariadbSeqSet.parse(str(a)) == a


# --- MariaDB binlog states ---


@LEAN
@given(binlog_states)
def test_binlog_state_round_trip(a):
    assert MariadbBinlogState.parse(str(a)) == a


@LEAN
@given(binlog_states, binlog_states)
def test_binlog_state_errant_laws(replica, primary):
    assert replica.errant_relative_to(replica) == ()
    assert replica.errant_relative_to(primary.union(replica)) == ()
    errant = replica.errant_relative_to(primary)
    # removing the errant entries leaves a state the primary contains
    assert primary.contains(replica.without(errant))
    assert all(primary.seq(g.domain, g.server_id) < g.seq for g in errant)


@LEAN
@given(binlog_states, st.integers(1, 4))
def test_the_primary_own_server_id_is_never_errant(replica, primary_server_id):
    errant = replica.errant_relative_to(MariadbBinlogState(), primary_server_id=primary_server_id)
    assert all(g.server_id != primary_server_id for g in errant)
    assert len(errant) == sum(1 for g in replica.gtids if g.server_id != primary_server_id)
