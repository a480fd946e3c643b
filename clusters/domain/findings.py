"""Finding severities and their order."""
from __future__ import annotations

SEVERITIES = ("ok", "info", "warning", "error", "critical")


def worst_severity(severities) -> str:
    worst = "ok"
    for severity in severities:
        if SEVERITIES.index(severity) > SEVERITIES.index(worst):
            worst = severity
    return worst
