"""The options and arguments many commands share (typer's Annotated types), so each reads the same way."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from dbpilot_cli import errors
from dbpilot_cli.errors import CliError
from dbpilot_cli.output import Output

OutputOpt = Annotated[
    Output, typer.Option("--output", "-o", help="table (default), json or yaml", envvar="DBPILOT_OUTPUT")
]
ClusterArg = Annotated[str, typer.Argument(help="the cluster: its name (or TENANT/NAME) or its id")]
ForOpt = Annotated[
    float | None, typer.Option("--for", help="stop after this many seconds (default: until Ctrl-C)")
]
WaitOpt = Annotated[
    bool, typer.Option("--wait", help="follow the job to its end (exit 1 unless it succeeds)")
]
CandidateOpt = Annotated[str | None, typer.Option("--candidate", help="the replica to promote, host:port")]
ServerArg = Annotated[str, typer.Argument(help="the server: host:port or its id")]


class OnOff(StrEnum):
    on = "on"
    off = "off"


def parse_assignments(pairs: list[str]) -> dict:
    """KEY=VALUE arguments; numbers and true/false become JSON values, `env:NAME`/`file:PATH` are read."""
    from dbpilot_cli.spec import SpecError, coerce_scalar, resolve_secret

    values: dict = {}
    for pair in pairs:
        if "=" not in pair:
            raise CliError(f"{pair!r}: write KEY=VALUE", errors.USAGE)
        key, value = pair.split("=", 1)
        try:
            values[key.strip()] = (
                resolve_secret(value) if value.startswith(("env:", "file:")) else coerce_scalar(value)
            )
        except SpecError as exc:
            raise CliError(str(exc), errors.USAGE) from None
    return values
