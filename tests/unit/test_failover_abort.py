"""What an aborted failover undoes (clusters.domain.failover_abort.decide), from the job's saved state and
what fresh probes of the servers found: the saved flags may be a step behind the servers."""

import pytest

from clusters.domain.failover_abort import (
    LEFT_FENCED_SOURCE,
    LEFT_NO_SOURCE,
    LEFT_UNREACHABLE,
    NOT_PROMOTED,
    PROMOTED,
    WRITES_OPEN,
    Observed,
    Saved,
    decide,
    promoted_seen,
)

pytestmark = pytest.mark.unit

OLD, B, C = "10.0.0.1:3306", "10.0.0.2:3306", "10.0.0.3:3306"


def dead(address: str = OLD) -> Observed:
    return Observed(address, reachable=False)


def replica(address: str, source: str = OLD, io: bool = False) -> Observed:
    return Observed(address, reachable=True, read_only=True, source=source, io_running=io)


def saved(**changes) -> Saved:
    base = dict(
        old_primary=OLD,
        candidate=B,
        io_stopped=(B, C),
        sources={B: OLD, C: OLD},
        old_primary_was_fenced=False,
    )
    return Saved(**{**base, **changes})


def test_before_promotion_the_stopped_replicas_replicate_again_and_the_old_primary_gets_its_flag_back():
    decision = decide(saved(), [dead(), replica(B), replica(C)])
    assert decision.phase == NOT_PROMOTED
    assert decision.restart == {B: None, C: None}  # they still point at their source: only started
    assert decision.unflag_old_primary and decision.reopen_old_primary
    assert decision.left_alone == {}


def test_a_replica_the_catch_up_moved_is_pointed_back_at_its_original_source():
    decision = decide(saved(), [dead(), replica(B, source=C), replica(C)])
    assert decision.restart == {B: OLD, C: None}


def test_a_flag_set_before_the_job_is_not_given_back_and_the_old_primary_is_not_reopened():
    decision = decide(saved(old_primary_was_fenced=True), [dead(), replica(B), replica(C)])
    assert not decision.unflag_old_primary and not decision.reopen_old_primary


def test_after_the_fence_hook_ran_nothing_is_pointed_back_at_the_fenced_server_nor_reopened():
    decision = decide(saved(fence_ran=True), [dead(), replica(B, source=C), replica(C)])
    assert decision.phase == NOT_PROMOTED
    assert decision.restart == {}
    assert decision.left_alone == {
        B: LEFT_FENCED_SOURCE.format(old=OLD),
        C: LEFT_FENCED_SOURCE.format(old=OLD),
    }
    assert not decision.unflag_old_primary and not decision.reopen_old_primary
    assert "stays fenced" in decision.reason


def test_a_replica_of_another_survivor_is_still_restarted_after_a_fence():
    decision = decide(
        saved(fence_ran=True, sources={B: OLD, C: B}), [dead(), replica(B), replica(C, source=B)]
    )
    assert decision.restart == {C: None}
    assert B in decision.left_alone


def test_unreachable_replicas_and_replicas_of_nothing_are_left_alone_with_why():
    other = Observed(C, reachable=True, read_only=True, source=None)
    decision = decide(saved(candidate=None), [dead(), dead(B), other])
    assert decision.left_alone == {B: LEFT_UNREACHABLE, C: LEFT_NO_SOURCE}
    assert decision.restart == {}


def test_a_replica_still_replicating_from_its_source_is_not_touched():
    # the abort came before stop_replication: its IO thread still runs (or connects to the dead primary)
    decision = decide(saved(), [dead(), replica(B, io=True), replica(C)])
    assert decision.restart == {C: None}
    assert decision.left_alone == {}


def test_only_replicas_the_job_stopped_are_touched():
    decision = decide(saved(io_stopped=(B,)), [dead(), replica(B), replica(C)])
    assert decision.restart == {B: None}


@pytest.mark.parametrize(
    "candidate, why",
    [
        (Observed(B, reachable=True, read_only=True, source=None), "it replicates from nothing"),
        (Observed(B, reachable=True, read_only=True, source=OLD, semi_sync_master=True), "semi-sync master"),
    ],
)
def test_a_promotion_the_saved_state_missed_is_seen_on_the_candidate(candidate, why):
    decision = decide(
        saved(promotion_started=True, promoted=False), [dead(), candidate, replica(C, source=B, io=True)]
    )
    assert decision.phase == PROMOTED
    assert why in decision.reason and "stays read-only" in decision.reason
    assert decision.restart == {} and not decision.reopen_old_primary and not decision.unflag_old_primary


def test_a_candidate_that_looks_promoted_before_the_promotion_started_is_not_this_jobs_doing():
    # e.g. the semi-sync master side configured on every server: the stopped replicas start again
    looks = Observed(B, reachable=True, read_only=True, source=OLD, semi_sync_master=True)
    decision = decide(saved(promotion_started=False), [dead(), looks, replica(C)])
    assert decision.phase == NOT_PROMOTED
    assert decision.restart == {B: None, C: None}


def test_a_saved_promotion_counts_even_when_the_candidate_cannot_be_seen():
    decision = decide(saved(promoted=True), [dead(), dead(B), replica(C)])
    assert decision.phase == PROMOTED and decision.restart == {}


def test_writes_opened_on_the_candidate_but_not_saved_leaves_everything_as_it_is():
    writable = Observed(B, reachable=True, read_only=False, source=None, semi_sync_master=True)
    decision = decide(saved(), [dead(), writable, replica(C, source=B, io=True)])
    assert decision.phase == WRITES_OPEN
    assert decision.writable == (B,)
    assert decision.restart == {} and not decision.reopen_old_primary


def test_a_writable_server_other_than_the_candidate_is_named_and_nothing_is_reopened():
    decision = decide(
        saved(), [dead(), replica(B), Observed(C, reachable=True, read_only=False, source=None)]
    )
    assert decision.phase == WRITES_OPEN
    assert "not the candidate" in decision.reason and C in decision.reason
    assert not decision.reopen_old_primary


def test_a_writable_old_primary_alone_is_not_a_taken_effect_failover():
    alive = Observed(OLD, reachable=True, read_only=False, source=None)
    decision = decide(saved(), [alive, replica(B), replica(C)])
    assert decision.phase == NOT_PROMOTED and decision.writable == (OLD,)
    assert decision.restart == {B: None, C: None}


def test_the_saved_writes_opened_flag_alone_ends_it():
    assert decide(saved(writes_opened=True), [dead(), dead(B), dead(C)]).phase == WRITES_OPEN


def test_promoted_seen_needs_a_reachable_candidate():
    assert promoted_seen(None) is None
    assert promoted_seen(dead(B)) is None
    assert promoted_seen(replica(B)) is None
    assert promoted_seen(Observed(B, reachable=True, read_only=False, source=OLD)) == "it is writable"


def test_addresses_are_compared_normalized():
    decision = decide(
        saved(
            fence_ran=True, old_primary="db1.example:3306", sources={B: "DB1.Example:3306"}, io_stopped=(B,)
        ),
        [dead("db1.example:3306"), replica(B, source="db1.EXAMPLE:3306")],
    )
    assert B in decision.left_alone  # still its fenced source, whatever the spelling
