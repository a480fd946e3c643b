"""Following things as they happen over the API's websockets: a job's steps, a cluster's topology, events.

On a terminal the display redraws in place (rich Live); anywhere else (a pipe, a log, CI) each change is
printed once, in order, so the output reads as a transcript. `--output json` prints one JSON object a line.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime

import typer
from rich.console import Group
from rich.live import Live
from rich.text import Text

from dbpilot_cli import errors
from dbpilot_cli.client import Api
from dbpilot_cli.errors import CliError
from dbpilot_cli.output import Output, console, report
from dbpilot_cli.views import event_line, job_view, topology_view

TERMINAL_STATES = ("succeeded", "failed", "refused")
QUIET_RECHECK_SECONDS = (
    5.0  # no message for this long: read the job over HTTP (a missed message costs nothing)
)


def _now() -> str:
    return datetime.now().strftime("%H:%M:%S")


def _interactive(output: Output) -> bool:
    return output == Output.table and sys.stdout.isatty()


def _json_line(data) -> None:
    print(json.dumps(data, ensure_ascii=False), flush=True)


class _StepPrinter:
    """Prints each step's changes once: `12:00:01  step 3/7 fence_old_primary: ok  (detail)`."""

    def __init__(self):
        self.seen: dict[int, tuple] = {}
        self.state = None

    def show(self, job: dict) -> None:
        steps = job.get("steps") or []
        for number, step in enumerate(steps, 1):
            key = (step.get("state"), step.get("detail"))
            if self.seen.get(number) != key:
                self.seen[number] = key
                if step.get("state") == "pending":
                    continue  # a step is shown once it starts (or is skipped)
                detail = f"  ({step['detail']})" if step.get("detail") else ""
                console.print(
                    Text(
                        f"{_now()}  step {number}/{len(steps)} {step.get('name')}: {step.get('state')}{detail}"
                    ),
                    soft_wrap=True,
                    crop=False,
                )
        if job["state"] != self.state:
            self.state = job["state"]
            detail = (job.get("result") or {}).get("detail")
            suffix = f": {detail}" if detail and job["state"] in TERMINAL_STATES else ""
            console.print(
                Text(f"{_now()}  job #{job['id']} {job['kind']} {job['state']}{suffix}"),
                soft_wrap=True,
                crop=False,
            )


def follow_job(api: Api, job_id: int, output: Output, timeout: float | None = None) -> dict:
    """Show the job's progress until it ends (or `timeout` seconds); return the last state seen."""
    job = api.get(f"jobs/{job_id}/")
    deadline = time.monotonic() + timeout if timeout else None
    printer = _StepPrinter()
    live = Live(job_view(job), console=console, refresh_per_second=8) if _interactive(output) else None

    def show(current: dict) -> None:
        if live is not None:
            live.update(job_view(current))
        elif output == Output.json:
            _json_line(current)
        elif output == Output.table:
            printer.show(current)

    if live is not None:
        live.start()
    try:
        show(job)
        if job["state"] in TERMINAL_STATES:
            return job
        with api.websocket(f"/ws/jobs/{job_id}/") as socket:
            while job["state"] not in TERMINAL_STATES:
                if deadline and time.monotonic() > deadline:
                    break
                message = socket.receive(timeout=QUIET_RECHECK_SECONDS)
                if message is None:
                    fresh = api.get(f"jobs/{job_id}/")
                    if fresh != job:
                        job = fresh
                        show(job)
                    continue
                if (
                    message.get("type") == "job"
                    and message["job"].get("id") == job_id
                    and message["job"].get("cluster") in (None, job.get("cluster"))
                ):
                    job = {**job, **message["job"]}
                    show(job)
        # The socket's messages carry steps; the final row has everything (result, finished_at).
        final = api.get(f"jobs/{job_id}/")
        if final != job:
            job = final
            show(job)
    except CliError as exc:
        # A deprovision job is removed with its cluster as soon as it succeeded: its last message stands.
        if exc.code != errors.NOT_FOUND or job["state"] not in TERMINAL_STATES:
            raise
    except KeyboardInterrupt:
        pass
    finally:
        if live is not None:
            live.stop()
    if output == Output.yaml:
        from dbpilot_cli.output import dump

        print(dump(job, output))
    return job


def _topology_key(topology: dict) -> tuple:
    servers = tuple(
        (
            s.get("id"),
            s.get("role"),
            s.get("state"),
            s.get("read_only"),
            s.get("maintenance"),
            (s.get("replication") or {}).get("source"),
            (s.get("replication") or {}).get("io_running"),
            (s.get("replication") or {}).get("sql_running"),
        )
        for s in topology.get("servers") or []
    )
    findings = tuple(sorted((f.get("code"), f.get("server")) for f in topology.get("findings") or []))
    return topology.get("primary"), topology.get("epoch"), servers, findings


def watch_topology(api: Api, cluster: dict, output: Output, seconds: float | None) -> None:
    """Redraw the cluster's topology as the websocket reports changes; events and jobs as lines."""
    deadline = time.monotonic() + seconds if seconds else None
    events: list[str] = []
    last_key = None
    last_job_line = ""
    topology: dict = {}
    live = (
        Live(Text("connecting..."), console=console, refresh_per_second=8) if _interactive(output) else None
    )

    def redraw() -> None:
        live.update(
            Group(topology_view(topology, f"{cluster['name']} · "), Text(""), *[Text(e) for e in events[-8:]])
        )

    if live is not None:
        live.start()
    try:
        with api.websocket(f"/ws/clusters/{cluster['id']}/") as socket:
            while not deadline or time.monotonic() < deadline:
                wait = min(1.0, max(0.0, deadline - time.monotonic())) if deadline else 1.0
                message = socket.receive(timeout=wait)
                if message is None:
                    continue
                kind = message.get("type")
                if output == Output.json:
                    _json_line(message)
                    continue
                if kind == "topology":
                    topology = message.get("topology") or {}
                    if live is not None:
                        redraw()
                    elif _topology_key(topology) != last_key:
                        last_key = _topology_key(topology)
                        console.print(Text(f"--- {_now()} topology of {cluster['name']}"))
                        console.print(topology_view(topology))
                elif kind == "event":
                    line = event_line(message.get("event") or {})
                    events.append(line)
                    if live is not None:
                        redraw()
                    else:
                        console.print(Text(f"{_now()}  event  {line}"), soft_wrap=True, crop=False)
                elif kind == "job":
                    job = message.get("job") or {}
                    running = [s.get("name") for s in job.get("steps") or [] if s.get("state") == "running"]
                    line = f"job #{job.get('id')} {job.get('kind')} {job.get('state')}" + (
                        f" · {running[0]}" if running else ""
                    )
                    if line == last_job_line or (
                        not running and job.get("state") == "running" and last_job_line.startswith(line)
                    ):
                        continue  # a step finished: the next message names the next one
                    last_job_line = line
                    if live is not None:
                        events.append(line)
                        redraw()
                    else:
                        console.print(Text(f"{_now()}  {line}"), soft_wrap=True, crop=False)
    except KeyboardInterrupt:
        pass
    finally:
        if live is not None:
            live.stop()


def follow_events(api: Api, cluster: dict, output: Output, seconds: float | None) -> None:
    deadline = time.monotonic() + seconds if seconds else None
    try:
        with api.websocket(f"/ws/clusters/{cluster['id']}/") as socket:
            while not deadline or time.monotonic() < deadline:
                wait = min(1.0, max(0.0, deadline - time.monotonic())) if deadline else 1.0
                message = socket.receive(timeout=wait)
                if not message or message.get("type") != "event":
                    continue
                if output == Output.table:
                    console.print(Text(event_line(message.get("event") or {})), soft_wrap=True, crop=False)
                else:
                    _json_line(message.get("event"))
    except KeyboardInterrupt:
        pass


def finish_job(job: dict) -> None:
    """Exit 1 when a job the command waited for did not succeed."""
    if job["state"] != "succeeded":
        raise typer.Exit(errors.REFUSED)


def job_started(api: Api, job: dict, wait: bool, output: Output) -> dict:
    """A job a command started: followed to its end with --wait (exit 1 unless it succeeds), else one
    line saying how to follow it (or the job, for --output json|yaml). Returns the last state seen."""
    if wait:
        job = follow_job(api, job["id"], output)
        finish_job(job)
        return job
    report(
        job,
        output,
        f"job #{job['id']} {job['kind']} {job['state']}: follow it with `dbpilot jobs show {job['id']} --follow`",
    )
    if job["state"] in ("failed", "refused"):
        raise typer.Exit(errors.REFUSED)
    return job
