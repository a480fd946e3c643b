"""Benchmark: what the per-server history costs.

Run: .venv/bin/python bench/history.py [--clusters 334] [--rounds 20]
Prints:
  - memory per server for a full history (1 hour at a 1 s tick, 24 hours a point a minute): a 3-server
    cluster's two Redis lists filled to their length with realistic values, measured with MEMORY USAGE,
    plus the history part of the cluster's hot state (rate memory, running minute, primary checkpoints);
  - the cost per tick of recording it for N clusters of 3 servers (1,002 by default), as a shard tick does:
    the CPU to build and pack the samples (history.record into a Batch), and the extra wall time of the
    shard's hot-state pipeline with the history commands in it versus without (same round trips).
The samples come from synthetic topologies and probes (no servers needed): recording does not depend on
what the servers answer, only on how many there are.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
os.environ["REDIS_URL"] = os.environ.get(
    "BENCH_REDIS_URL", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
)


def topology(cid: int, t: float, seq: int):
    base = cid * 10
    primary = f"10.0.{cid % 250}.1:3306"
    servers = [
        SimpleNamespace(
            id=base + 1,
            address=primary,
            role="primary",
            state="up",
            lag=None,
            replication=None,
            gtid_current_pos=f"0-1-{seq}",
        )
    ]
    for n in (2, 3):
        servers.append(
            SimpleNamespace(
                id=base + n,
                address=f"10.0.{cid % 250}.{n}:3306",
                role="replica",
                state="up",
                lag=0.0,
                replication={"io_running": "Yes", "sql_running": "Yes", "seconds_behind": 0},
                gtid_current_pos=f"0-1-{seq - n}",
            )
        )
    return SimpleNamespace(primary=primary, servers=servers)


def probes(topo, t: float):
    from clusters.domain.probe import ProbeResult

    n = int(t)
    return {
        s.address: ProbeResult(
            address=s.address,
            outcome="ok",
            threads_connected=40 + s.id % 7,
            semi_sync_master_status=True,
            semi_sync_slave_status=True,
            reads_total=1000 * n,
            writes_total=300 * n,
        )
        for s in topo.servers
    }


def memory(client, hotstate, history) -> None:
    from clusters.domain.history import DAY_SAMPLES, HOUR_SAMPLES

    cid = 999_999
    client.delete(hotstate.history_key(cid, "1h"), hotstate.history_key(cid, "24h"))
    state: dict = {}
    t0 = time.time() - HOUR_SAMPLES
    batch = hotstate.Batch()
    for i in range(HOUR_SAMPLES):  # an hour of ticks, which also makes 60 minute entries
        t = t0 + i
        topo = topology(cid, t, 1000 + 5 * i)
        history.record(batch, cid, topo, probes(topo, t), state, t)
        if i % 500 == 499:
            batch.execute()
            batch = hotstate.Batch()
    batch.execute()
    day_key = hotstate.history_key(cid, "24h")
    one_minute = client.lindex(day_key, -1)
    pipe = client.pipeline(transaction=False)
    for _ in range(DAY_SAMPLES - client.llen(day_key)):  # the rest of the day, a minute entry at a time
        pipe.rpush(day_key, one_minute)
    pipe.execute()
    hour = client.memory_usage(hotstate.history_key(cid, "1h"), samples=0)
    day = client.memory_usage(day_key, samples=0)
    hot = len(json.dumps(state["history"]))
    print(
        f"entries: 1h list {client.llen(hotstate.history_key(cid, '1h'))}, 24h list {client.llen(day_key)} "
        f"(3 servers; an entry is {len(client.lindex(day_key, -1))} bytes)"
    )
    print(
        f"memory per server: 1h {hour / 3 / 1024:.1f} KiB + 24h {day / 3 / 1024:.1f} KiB "
        f"+ hot state {hot / 3:.0f} B = {(hour + day + hot) / 3 / 1024:.1f} KiB; "
        f"1,000 servers: {(hour + day + hot) / 3 * 1000 / 2**20:.0f} MiB"
    )
    client.delete(hotstate.history_key(cid, "1h"), day_key)


def tick_cost(client, hotstate, history, clusters: int, rounds: int) -> None:
    cids = list(range(1, clusters + 1))
    states = {cid: {} for cid in cids}
    snapshot = {
        "primary": "x",
        "servers": [
            {
                "id": i,
                "address": f"10.0.0.{i}:3306",
                "role": "replica",
                "state": "up",
                "read_only": True,
                "gtid_current_pos": "0-1-1000",
                "replication": {"source": "x", "io_running": "Yes"},
            }
            for i in range(3)
        ],
        "updated_at": "now",
    }
    cpu, with_history, without = [], [], []
    t = time.time()
    for r in range(rounds + 2):
        t += 1.0
        batch = hotstate.Batch()
        started = time.process_time()
        for cid in cids:
            topo = topology(cid, t, 1000 + 5 * r)
            history.record(batch, cid, topo, probes(topo, t), states[cid], t)
        spent = time.process_time() - started
        for cid in cids:
            batch.write_topology(cid, snapshot)
            batch.write_state(cid, states[cid])
        w0 = time.perf_counter()
        batch.execute()
        w1 = time.perf_counter()
        plain = hotstate.Batch()
        for cid in cids:
            plain.write_topology(cid, snapshot)
            plain.write_state(cid, states[cid])
        w2 = time.perf_counter()
        plain.execute()
        w3 = time.perf_counter()
        if r >= 2:
            cpu.append(spent)
            with_history.append(w1 - w0)
            without.append(w3 - w2)
    servers = clusters * 3
    print(
        f"recording, {clusters} clusters / {servers} servers per tick (median of {rounds}): "
        f"CPU {statistics.median(cpu) * 1000:.1f} ms ({statistics.median(cpu) / servers * 1e6:.0f} us per server); "
        f"hot-state pipeline {statistics.median(with_history) * 1000:.1f} ms with history vs "
        f"{statistics.median(without) * 1000:.1f} ms without (one round trip either way)"
    )
    pipe = client.pipeline(transaction=False)
    for cid in cids:
        pipe.delete(
            hotstate.history_key(cid, "1h"),
            hotstate.history_key(cid, "24h"),
            f"dbpilot:cluster:{cid}:state",
            f"dbpilot:cluster:{cid}:topology",
        )
    pipe.execute()


def main() -> int:
    parser = argparse.ArgumentParser(description="per-server history: memory and cost per tick")
    parser.add_argument("--clusters", type=int, default=334)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    import django

    django.setup()
    from clusters import hotstate
    from clusters.services import history

    client = hotstate.client()
    memory(client, hotstate, history)
    tick_cost(client, hotstate, history, args.clusters, args.rounds)
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
