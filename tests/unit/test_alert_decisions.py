"""Alert subscriptions, the pure part: matching, bursts, backoff, payloads and the webhook signature."""

import hashlib
import hmac

import pytest

from clusters.domain.alerts import (
    BURST_LIMIT,
    FINDING_OPENED,
    FINDING_RESOLVED,
    JOB,
    Alert,
    Rule,
    alert_body,
    alert_from_event,
    backoff_seconds,
    burst,
    digest_body,
    matches,
    payload,
    signature,
    verify,
)

pytestmark = pytest.mark.unit


def finding(kind=FINDING_OPENED, severity="error", code="replication_stopped", cluster_id=1):
    return Alert(kind, cluster_id, "acme/main", "Replica stopped", 100.0, severity=severity, code=code)


def job(kind="switchover", outcome="failed"):
    return Alert(
        JOB, 1, "acme/main", f"{kind} {outcome}", 100.0, severity="error", job_kind=kind, job_outcome=outcome
    )


def test_events_that_alert_and_those_that_do_not():
    a = alert_from_event(
        "finding_opened", 1, "acme/main", "m", "error", {"code": "x", "server": "h:1"}, 5.0, 9
    )
    assert a.kind == FINDING_OPENED and a.code == "x" and a.server == "h:1" and a.event_id == 9
    j = alert_from_event(
        "job_finished", 1, "acme/main", "m", "error", {"kind": "backup", "state": "failed"}, 5.0
    )
    assert j.kind == JOB and j.job_key == "backup_failed"
    assert alert_from_event("route_synced", 1, "acme/main", "m", "info", {}, 5.0) is None


def test_empty_lists_mean_every_one_and_each_list_narrows_its_own_kind():
    assert matches(Rule(), finding())
    assert matches(Rule(clusters=(1,)), finding()) and not matches(Rule(clusters=(2,)), finding())
    assert matches(Rule(severities=("error", "critical")), finding())
    assert not matches(Rule(severities=("critical",)), finding())
    assert not matches(Rule(codes=("lag",)), finding()) and matches(
        Rule(codes=("replication_stopped",)), finding()
    )
    assert matches(Rule(codes=("lag",)), job())  # codes narrow findings, not jobs


def test_a_resolution_matches_on_the_severity_the_finding_opened_with():
    resolved = finding(FINDING_RESOLVED, severity="info")
    assert matches(Rule(severities=("error",)), resolved, opened_severity="error")
    assert not matches(Rule(severities=("critical",)), resolved, opened_severity="error")


def test_job_outcomes():
    assert matches(Rule(), job("failover", "succeeded"))  # every failover by default
    assert not matches(Rule(), job("switchover", "succeeded"))
    assert matches(Rule(), job("switchover", "failed")) and matches(Rule(), job("backup", "failed"))
    assert matches(Rule(jobs=("switchover_failed",)), job("switchover", "failed"))
    assert not matches(Rule(jobs=("switchover_failed",)), job("switchover", "refused"))
    assert matches(Rule(jobs=("failover",)), job("failover", "failed"))
    assert not matches(Rule(jobs=("failover",)), job("backup", "failed"))


def test_burst_backoff_and_digest():
    assert not burst(BURST_LIMIT - 1) and burst(BURST_LIMIT)
    assert [backoff_seconds(n) for n in (1, 2, 3)] == [5.0, 10.0, 20.0] and backoff_seconds(30) == 600.0
    bodies = [alert_body(finding(code=f"c{i}")) for i in range(60)]
    digest = digest_body(bodies)
    assert digest["count"] == 60 and digest["message"].endswith("... and 10 more")
    assert digest["message"].splitlines()[0] == "[error] acme/main: c0 opened"


def test_signature_is_hmac_of_time_dot_body_and_verifies_only_fresh_and_intact():
    body = b'{"a":1}'
    header = signature("s3cret", 1700000000, body)
    mac = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={mac}"
    assert verify("s3cret", header, body, now=1700000010)
    assert not verify("s3cret", header, body + b" ", now=1700000010)
    assert not verify("other", header, body, now=1700000010)
    assert not verify("s3cret", header, body, now=1700000000 + 3600)  # a replay an hour later
    assert not verify("s3cret", "garbage", body, now=1700000000)


def test_slack_payload_has_text_and_keeps_ours():
    body = alert_body(finding())
    slack = payload(body, "slack")
    assert (
        slack["text"].startswith("[error] acme/main: replication_stopped opened") and slack["dbpilot"] == body
    )
    assert payload(body, "json") == body
