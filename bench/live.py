"""Benchmark: delay from a topology change to the websocket message reaching a client.

Run: .venv/bin/python bench/live.py [--changes 50]
Starts a real stack on loopback (a 3-node sandbox, Redis from REDIS_URL, daphne, a ticks worker, beat),
registers the cluster through the API, opens `ws /ws/clusters/{id}/` with a team token, then makes a
replica writable and read-only again, over and over: each flip opens or resolves a finding
(REPLICA_NOT_READ_ONLY). The delay is measured from the event's `created_at` (written by the worker
when it records the change) to the message's arrival. Prints median and p99 (target: p99 <= 300 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(tempfile.gettempdir()) / "dbpilot-bench-live"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description="live websocket delay")
    parser.add_argument("--changes", type=int, default=50)
    args = parser.parse_args()

    import websockets

    from clusters.providers import LocalSandbox

    env = dict(
        os.environ,
        DEBUG="1",
        DJANGO_SETTINGS_MODULE="controlplane.settings",
        DBPILOT_DATA_ROOT=str(DATA),
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12"),
        LOG_LEVEL="WARNING",
    )
    env.pop("DATABASE_URL", None)
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "dbpilot.sqlite3").unlink(missing_ok=True)
    py = sys.executable
    bindir = Path(py).parent
    subprocess.run([py, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    token = (
        subprocess.run(
            [
                py,
                "manage.py",
                "create_tenant",
                "bench",
                "--team",
                "ops",
                "--user",
                "b@bench.example",
                "--password",
                "bench-password-1",
                "--token-scope",
                "admin",
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    sandbox = LocalSandbox("bench-live", 3, temporary=True)
    processes = []
    try:
        described = sandbox.up()
        port = 18765
        logs = open(DATA / "processes.log", "w")
        processes.append(
            subprocess.Popen(
                [str(bindir / "daphne"), "-b", "127.0.0.1", "-p", str(port), "controlplane.asgi:application"],
                cwd=ROOT,
                env=env,
                stdout=logs,
                stderr=logs,
            )
        )
        processes.append(
            subprocess.Popen(
                [
                    str(bindir / "celery"),
                    "-A",
                    "controlplane",
                    "worker",
                    "-Q",
                    "ticks",
                    "--concurrency",
                    "2",
                    "-n",
                    "live@%h",
                    "--without-gossip",
                    "--without-mingle",
                ],
                cwd=ROOT,
                env=env,
                stdout=logs,
                stderr=logs,
            )
        )
        processes.append(
            subprocess.Popen(
                [str(bindir / "celery"), "-A", "controlplane", "beat", "-s", str(DATA / "beat-schedule")],
                cwd=ROOT,
                env=env,
                stdout=logs,
                stderr=logs,
            )
        )
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/api/schema/", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        body = json.dumps(
            {
                "name": "live",
                "servers": [{"host": n["host"], "port": n["port"]} for n in described["nodes"]],
                "credentials": described["credentials"]["admin"],
            }
        ).encode()
        request = urllib.request.Request(
            f"{base}/api/v1/clusters/", data=body, headers=headers, method="POST"
        )
        cluster_id = json.load(urllib.request.urlopen(request, timeout=30))["id"]
        delays = asyncio.run(measure(websockets, port, cluster_id, token, sandbox, args.changes))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        sandbox.destroy()
    ms = [d * 1000 for d in delays]
    print(f"live: {len(ms)} topology changes (finding opened/resolved) -> websocket message")
    print(
        f"  delay median {statistics.median(ms):.1f} ms, p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms "
        f"(target p99 <= 300 ms)"
    )
    return 0


async def measure(websockets, port: int, cluster_id: int, token: str, sandbox, changes: int) -> list[float]:
    delays: list[float] = []
    url = f"ws://127.0.0.1:{port}/ws/clusters/{cluster_id}/"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as socket:
        await socket.recv()  # the initial topology
        writable = False
        while len(delays) < changes:
            writable = not writable
            await asyncio.to_thread(sandbox.sql, 2, f"SET GLOBAL read_only = {0 if writable else 1}")
            wanted = "finding_opened" if writable else "finding_resolved"
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                message = json.loads(await asyncio.wait_for(socket.recv(), timeout=15))
                arrived = time.time()
                event = message.get("event") if message.get("type") == "event" else None
                if event and event["kind"] == wanted and event["data"].get("code") == "REPLICA_NOT_READ_ONLY":
                    delays.append(arrived - datetime.fromisoformat(event["created_at"]).timestamp())
                    print(f"  change {len(delays)}: {delays[-1] * 1000:.1f} ms", file=sys.stderr)
                    break
            else:
                raise SystemExit(f"no {wanted} event within 15 s")
    return delays


if __name__ == "__main__":
    sys.exit(main())
