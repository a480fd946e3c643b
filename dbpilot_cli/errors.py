"""Exit codes and the one error type the commands raise (main turns it into one line and the code)."""

from __future__ import annotations

OK = 0
REFUSED = 1  # a refused request (409, its checks printed) or a job that failed or was refused
USAGE = 2  # bad arguments, a spec or file that does not parse, a request the API found invalid (400)
NOT_FOUND = 3  # not found, or not allowed (401, 403, 404)
UNREACHABLE = 4  # the API cannot be reached, or answered with a server error


class CliError(Exception):
    """An error to print as one line; `checks` (a refusal's) are printed under it; `api_code` is the API's
    machine-readable code (e.g. `deletion_protected`) when the API gave one."""

    def __init__(
        self, message: str, code: int, checks: list[dict] | None = None, api_code: str | None = None
    ):
        super().__init__(message)
        self.message, self.code, self.checks, self.api_code = message, code, checks or [], api_code
