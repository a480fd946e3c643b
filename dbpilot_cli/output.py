"""Printing: rich tables for people, `--output json|yaml` for scripts (the API's objects as they are)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from enum import StrEnum

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table


class Output(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


# Not a terminal (a pipe, a test, CI): a fixed width so tables are not squeezed into 80 columns.
console = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 150)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 150)


def dump(data, output: Output) -> str:
    if output == Output.yaml:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip(
            "\n"
        )
    return json.dumps(data, indent=2, ensure_ascii=False)


def emit(data, output: Output, table: Callable[[object], object] | None = None) -> None:
    """Print `data` in the chosen format; `table(data)` builds what rich prints for people."""
    if output == Output.table and table is not None:
        rendered = table(data)
        for part in rendered if isinstance(rendered, list | tuple) else [rendered]:
            console.print(part)
    else:
        print(dump(data, output if output != Output.table else Output.yaml), flush=True)


def report(data, output: Output, line: str) -> None:
    """What a command did: one line for people, the API's object for scripts (--output json|yaml)."""
    if output == Output.table:
        console.print(line, markup=False, soft_wrap=True)
    else:
        emit(data, output)


def one_row(table: Callable[[list], object]) -> Callable[[object], object]:
    """A list's table builder used for the one object a create or change answered with."""
    return lambda item: table([item])


def new_table(*columns: str, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold", box=None, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def cell(value) -> str:
    if value is None or value == "":
        return "-"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value) or "-"
    return escape(str(value))


def short_time(iso: str | None) -> str:
    """2026-12-05T23:20:01.123456+00:00 -> 2026-12-05 23:20:01"""
    if not iso:
        return "-"
    return iso.replace("T", " ")[:19]


SEVERITY_STYLE = {"critical": "bold red", "error": "red", "warning": "yellow", "info": "", "ok": "green"}
STATE_STYLE = {
    "ok": "green",
    "succeeded": "green",
    "running": "cyan",
    "pending": "dim",
    "failed": "red",
    "refused": "red",
    "skipped": "dim",
}


def styled(text: str, styles: dict[str, str]) -> str:
    style = styles.get(text, "")
    return f"[{style}]{escape(text)}[/]" if style else escape(text)
