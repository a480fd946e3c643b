"""What an HA request raises when it is refused at once: the API turns it into a 409 with the checks."""
from __future__ import annotations

from clusters.models import Job


class HaRequestRefused(Exception):
    """Refused before any job exists; `checks` are dicts {"name", "ok", "detail"}."""

    default_code = "refused"

    def __init__(self, detail: str, checks: list[dict], *, code: str | None = None, active_job: Job | None = None):
        super().__init__(detail)
        self.detail = detail
        self.checks = checks
        self.code = code or self.default_code
        self.active_job = active_job
