"""Alert subscriptions, the pure part: which alerts a subscription wants, bursts into digests, payloads,
the webhook signature and the retry backoff. No Django: clusters/services/alerts.py does the rest.

An alert comes from an event: a finding opened or resolved, or a job that finished. A subscription's
lists (`clusters`, `severities`, `codes`, `jobs`) each narrow their own kind of alert, an empty list
meaning every one: `severities` and `codes` narrow findings, `jobs` narrows job outcomes. A `jobs` entry is
a kind (`failover`: every outcome) or `<kind>_<outcome>` (`switchover_failed`, `backup_failed`). With no
`jobs` given, the job alerts are every failover and every job that did not succeed.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

FINDING_OPENED = "finding_opened"
FINDING_RESOLVED = "finding_resolved"
JOB = "job"
BURST_WINDOW_SECONDS = 60
BURST_LIMIT = 10  # alerts a subscription gets in a window before the rest wait for one digest
MAX_ATTEMPTS = 6
SEVERITIES = ("info", "warning", "error", "critical")


@dataclass(frozen=True)
class Alert:
    kind: str  # finding_opened, finding_resolved, job
    cluster_id: int
    cluster: str  # tenant/name
    message: str
    at: float
    severity: str = "info"
    code: str = ""
    server: str | None = None
    job_kind: str = ""
    job_outcome: str = ""  # succeeded, failed, refused
    event_id: int | None = None

    @property
    def job_key(self) -> str:
        return f"{self.job_kind}_{self.job_outcome}"


@dataclass(frozen=True)
class Rule:
    clusters: tuple[int, ...] = ()
    severities: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ()


def alert_from_event(
    kind: str,
    cluster_id: int,
    cluster: str,
    message: str,
    severity: str,
    data: dict,
    at: float,
    event_id: int | None = None,
) -> Alert | None:
    """The alert an event makes, or None for events that alert nobody."""
    data = data or {}
    if kind in (FINDING_OPENED, FINDING_RESOLVED):
        return Alert(
            kind,
            cluster_id,
            cluster,
            message,
            at,
            severity=severity,
            code=data.get("code", ""),
            server=data.get("server"),
            event_id=event_id,
        )
    if kind == "job_finished" and data.get("kind"):
        return Alert(
            JOB,
            cluster_id,
            cluster,
            message,
            at,
            severity=severity,
            job_kind=data["kind"],
            job_outcome=data.get("state", ""),
            event_id=event_id,
        )
    return None


def matches(rule: Rule, alert: Alert, opened_severity: str | None = None) -> bool:
    """Whether a subscription with this rule wants the alert. A resolution is matched on the severity
    the finding had when it opened (`opened_severity`; its own event says "info")."""
    if rule.clusters and alert.cluster_id not in rule.clusters:
        return False
    if alert.kind in (FINDING_OPENED, FINDING_RESOLVED):
        severity = opened_severity or alert.severity if alert.kind == FINDING_RESOLVED else alert.severity
        return (not rule.severities or severity in rule.severities) and (
            not rule.codes or alert.code in rule.codes
        )
    if alert.kind == JOB:
        if not rule.jobs:
            return alert.job_kind == "failover" or alert.job_outcome != "succeeded"
        return alert.job_kind in rule.jobs or alert.job_key in rule.jobs
    return False


def burst(recent: int, limit: int = BURST_LIMIT) -> bool:
    """Whether an alert joins the digest: the subscription already had `limit` alerts in the window."""
    return recent >= limit


def backoff_seconds(attempt: int) -> float:
    """Delay before retry number `attempt` (1, 2, ...): 5 s, 10 s, 20 s... at most 10 minutes."""
    return min(5.0 * 2 ** max(0, attempt - 1), 600.0)


def signature(secret: str, t: int, body: bytes) -> str:
    """`X-Dbpilot-Signature`: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: float = 300) -> bool:
    """What a receiver does (and the tests): the signature matches and is recent."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    expected = signature(secret, t, body).split("v1=")[1]
    return abs(now - t) <= tolerance and hmac.compare_digest(expected, parts.get("v1", ""))


def _title(alert: Alert) -> str:
    if alert.kind == FINDING_OPENED:
        return f"[{alert.severity}] {alert.cluster}: {alert.code} opened"
    if alert.kind == FINDING_RESOLVED:
        return f"[resolved] {alert.cluster}: {alert.code}"
    return f"[{alert.severity}] {alert.cluster}: {alert.job_kind} {alert.job_outcome}"


def alert_body(alert: Alert) -> dict:
    return {
        "type": alert.kind,
        "cluster": {"id": alert.cluster_id, "name": alert.cluster},
        "severity": alert.severity,
        "code": alert.code or None,
        "server": alert.server,
        "job": {"kind": alert.job_kind, "outcome": alert.job_outcome} if alert.kind == JOB else None,
        "message": alert.message,
        "title": _title(alert),
        "at": alert.at,
        "event_id": alert.event_id,
    }


def payload(body: dict, fmt: str) -> dict:
    """The JSON sent: dbpilot's own shape, or Slack's incoming-webhook shape (`text`, plus ours under
    `dbpilot` for anything that reads more)."""
    if fmt == "slack":
        return {
            "text": f"{body['title']}\n{body['message']}" if body.get("message") else body["title"],
            "dbpilot": body,
        }
    return body


def digest_body(alerts: list[dict], window_seconds: int = BURST_WINDOW_SECONDS) -> dict:
    lines = [a.get("title", "") for a in alerts[:50]]
    more = len(alerts) - len(lines)
    title = f"{len(alerts)} alerts in the last {window_seconds // 60 or 1} minute(s)"
    message = "\n".join(lines) + (f"\n... and {more} more" if more > 0 else "")
    return {
        "type": "digest",
        "title": title,
        "message": message,
        "count": len(alerts),
        "alerts": alerts[:200],
    }


def email_subject_and_text(body: dict) -> tuple[str, str]:
    return f"dbpilot: {body['title']}", f"{body.get('message', '')}\n"
