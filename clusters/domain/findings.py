"""Findings: what analysis reports about a cluster (code, severity, message), and severity order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("ok", "info", "warning", "error", "critical")


def worst_severity(severities: Iterable[str]) -> str:
    worst = "ok"
    for severity in severities:
        if SEVERITIES.index(severity) > SEVERITIES.index(worst):
            worst = severity
    return worst


def finding_key(code: str, server: str | None) -> str:
    """The identity of a finding across ticks: one per code and server (`CODE|host:port`, `CODE|`)."""
    return f"{code}|{server or ''}"


@dataclass(frozen=True)
class FindingData:
    """One condition found in one tick. `message` tells a person what is wrong and what to do about it."""

    code: str
    severity: str
    message: str
    server: str | None = None  # host:port, None for a cluster-wide finding
    details: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)

    @property
    def key(self) -> str:
        return finding_key(self.code, self.server)

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "server": self.server,
            "details": self.details,
        }
