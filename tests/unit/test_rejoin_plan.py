"""The rejoin decisions: the rejoin_method setting, the fallback chain, when quarantine ends, and the
flashback plan (discarded transactions, fork point, refusals) from binlog events."""

from __future__ import annotations

import pytest

from clusters.domain import rejoin_plan as rp
from clusters.domain.rejoin_plan import BinlogEvent


def ev(log: str, pos: int, kind: str, info: str = "") -> BinlogEvent:
    return BinlogEvent(log, pos, kind, pos + 10, info)


def trx(log: str, pos: int, gtid: str, rows: int = 1, kind: str = "Write_rows_v1") -> list[BinlogEvent]:
    out = [ev(log, pos, "Gtid", f"BEGIN GTID {gtid}"), ev(log, pos + 1, "Annotate_rows")]
    out += [ev(log, pos + 2 + i, kind) for i in range(rows)]
    return out + [ev(log, pos + 9, "Xid", "COMMIT /* xid=1 */")]


def plan(events, mine, theirs, **kw):
    kw.setdefault("binlog_format", "ROW")
    kw.setdefault("binlog_row_image", "FULL")
    return rp.flashback_plan(events, mine, theirs, **kw)


BASE = [ev("b.1", 4, "Format_desc"), ev("b.1", 256, "Gtid_list", "[0-1-10]")]


def test_parse_rejoin_method_accepts_one_or_an_ordered_list():
    assert rp.parse_rejoin_method("gtid") == ("gtid",)
    assert rp.parse_rejoin_method(["flashback", "reseed"]) == ("flashback", "reseed")


@pytest.mark.parametrize(
    "value, message",
    [
        ("rebuild", "unknown method"),
        ([], "must be"),
        (["flashback", "flashback"], "twice"),
        (["none", "reseed"], "cannot be combined"),
        (3, "must be"),
    ],
)
def test_parse_rejoin_method_says_what_is_wrong(value, message):
    with pytest.raises(rp.RejoinMethodError, match=message):
        rp.parse_rejoin_method(value)


def test_defaults_and_fallbacks():
    assert rp.default_rejoin_method(provisioned=False) == ("gtid",)
    assert rp.default_rejoin_method(provisioned=True) == ("flashback", "reseed")
    assert rp.fallbacks(("gtid",)) == ()
    assert rp.fallbacks(("none",)) == ()
    assert rp.next_method(("flashback", "reseed"), []) == "flashback"
    assert rp.next_method(("flashback", "reseed"), ["flashback"]) == "reseed"
    assert rp.next_method(("flashback", "reseed"), ["flashback", "reseed"]) is None


def test_quarantine_ends_only_for_a_read_only_replica_of_the_primary_with_nothing_extra():
    assert rp.quarantine_can_end(extra_gtids=[], replicates_from_primary=True, writable=False)[0]
    assert not rp.quarantine_can_end(extra_gtids=["0-1-5"], replicates_from_primary=True, writable=False)[0]
    assert not rp.quarantine_can_end(extra_gtids=None, replicates_from_primary=True, writable=False)[0]
    assert not rp.quarantine_can_end(extra_gtids=[], replicates_from_primary=False, writable=False)[0]
    assert not rp.quarantine_can_end(extra_gtids=[], replicates_from_primary=True, writable=True)[0]


def test_flashback_discards_the_tail_and_rejoins_at_the_fork_point_not_the_binlog_position():
    events = BASE + trx("b.1", 300, "0-1-11") + trx("b.1", 400, "0-1-12") + trx("b.1", 500, "0-1-13", rows=3)
    # The new primary (server 2) got 0-1-11 and wrote 0-2-12, 0-2-13 since.
    p = plan(events, "0-1-13", "0-1-11,0-2-13")
    assert p.possible, p.refusals
    assert p.discarded == ("0-1-12", "0-1-13")
    assert (p.start_log, p.start_pos) == ("b.1", 400)
    assert p.row_events == 4
    assert p.fork_point == "0-1-11"
    assert p.binlog_state == "0-1-11"


def test_flashback_fork_point_from_the_gtid_list_when_the_first_discarded_opens_the_file():
    events = [ev("b.2", 4, "Format_desc"), ev("b.2", 256, "Gtid_list", "[0-1-10]")] + trx(
        "b.2", 300, "0-1-11"
    )
    p = plan(events, "0-1-11", "0-1-10,0-2-12")
    assert p.possible, p.refusals
    assert p.fork_point == "0-1-10" and p.discarded == ("0-1-11",)


def test_flashback_keeps_other_domains_position():
    events = BASE + trx("b.1", 300, "1-1-5") + trx("b.1", 400, "0-1-11")
    p = plan(events, "0-1-11,1-1-5", "0-1-10,1-1-5,0-2-11")
    assert p.possible, p.refusals
    assert p.discarded == ("0-1-11",)
    assert p.fork_point == "0-1-10,1-1-5"


@pytest.mark.parametrize(
    "events, check",
    [
        (
            BASE
            + [ev("b.1", 300, "Gtid", "GTID 0-1-11"), ev("b.1", 301, "Query", "ALTER TABLE t ADD c INT")],
            "no_ddl",
        ),
        (
            BASE
            + [
                ev("b.1", 300, "Gtid", "BEGIN GTID 0-1-11"),
                ev("b.1", 301, "Query", "INSERT INTO t VALUES (1)"),
            ]
            + [ev("b.1", 302, "Xid", "COMMIT")],
            "row_events_only",
        ),
        (BASE + trx("b.1", 300, "0-1-11", rows=20), "not_too_many_events"),
    ],
)
def test_flashback_refuses_what_it_cannot_undo(events, check):
    p = plan(events, "0-1-11", "0-1-10,0-2-11", max_row_events=10)
    assert not p.possible
    assert check in {r["name"] for r in p.refusals}


def test_flashback_refuses_without_row_format_and_full_images():
    p = plan(
        BASE + trx("b.1", 300, "0-1-11"),
        "0-1-11",
        "0-1-10",
        binlog_format="MIXED",
        binlog_row_image="MINIMAL",
    )
    assert {r["name"] for r in p.refusals} == {"binlog_format_row", "binlog_row_image_full"}


def test_flashback_refuses_when_the_discarded_transactions_were_purged():
    # The server's only binlog starts after its errant 0-1-11: the list says so, the primary lacks it.
    events = [ev("b.3", 4, "Format_desc"), ev("b.3", 256, "Gtid_list", "[0-1-11]")] + trx(
        "b.3", 300, "0-1-12"
    )
    p = plan(events, "0-1-12", "0-1-10,0-2-12")
    assert not p.possible
    assert "fork_point_found" in {r["name"] for r in p.refusals}
    only_purged = rp.flashback_plan(
        [ev("b.4", 256, "Gtid_list", "[0-1-12]")],
        "0-1-12",
        "0-1-10",
        binlog_format="ROW",
        binlog_row_image="FULL",
    )
    assert [r["name"] for r in only_purged.refusals] == ["discarded_in_binlogs"]


def test_flashback_refuses_when_shared_transactions_follow_the_discarded_ones():
    events = BASE + trx("b.1", 300, "0-1-11") + trx("b.1", 400, "1-2-7")
    p = plan(events, "0-1-11,1-2-7", "0-1-10,1-2-7")
    assert "discarded_are_the_tail" in {r["name"] for r in p.refusals}


def test_transactions_groups_events_and_reads_gtid_lists():
    trxs, lists = rp.transactions(BASE + trx("b.1", 300, "0-1-11", rows=2))
    assert lists == {"b.1": "0-1-10"}
    assert [(str(t.gtid), t.row_events, t.ddl) for t in trxs] == [("0-1-11", 2, False)]


def test_rejoin_chain_prefers_the_request_then_the_setting_then_the_origin():
    assert rp.rejoin_chain(None, provisioned=True) == ("flashback", "reseed")
    assert rp.rejoin_chain(None, provisioned=False) == ("gtid",)
    assert rp.rejoin_chain(["reseed"], provisioned=False) == ("reseed",)
    assert rp.rejoin_chain(["reseed"], provisioned=False, requested="flashback") == ("flashback",)
    assert rp.rejoin_chain("bogus", provisioned=True) == ("flashback", "reseed")
    with pytest.raises(rp.RejoinMethodError):
        rp.rejoin_chain(None, provisioned=True, requested="bogus")


def test_the_rejoin_method_setting_is_validated_and_empty_means_the_default():
    from clusters.domain.settings import SettingsError, merge_settings

    assert merge_settings({}, {"rejoin_method": "flashback"}).rejoin_method == ["flashback"]
    assert merge_settings({}, {"rejoin_method": ["flashback", "reseed"]}).rejoin_method == [
        "flashback",
        "reseed",
    ]
    assert merge_settings({"rejoin_method": ["reseed"]}, {"rejoin_method": []}).rejoin_method is None
    with pytest.raises(SettingsError) as refused:
        merge_settings({}, {"rejoin_method": ["flashback", "rebuild"]})
    assert "unknown method 'rebuild'" in refused.value.errors["rejoin_method"]
    with pytest.raises(SettingsError) as too_short:
        merge_settings({}, {"replace_after_seconds": -1})
    assert "replace_after_seconds" in too_short.value.errors
