"""Benchmark: seconds to bring up 3 replicating MariaDB nodes with the local provider, and idle RSS per node.

Run: .venv/bin/python bench/sandbox.py [--nodes 3] [--runs 5] [--netns] [--semi-sync]
Prints the median of the runs (targets: under 10 s, under 120 MB per node). "Up" is measured from the
call to LocalSandbox.up() until every replica replicates and has applied the primary's position; RSS is
read from /proc after the cluster has sat idle for a few seconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from clusters.providers import LocalSandbox
from clusters.providers.local import DEFAULT_ROOT, unprivileged_user
from clusters.providers.mariadb_config import datadir_template, mariadb_version

MIB = 1024 * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=3.0)
    parser.add_argument("--netns", action="store_true")
    parser.add_argument("--semi-sync", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    datadir_template(DEFAULT_ROOT, unprivileged_user())  # one-time cost, cached for every later sandbox
    template_seconds = time.perf_counter() - started

    up_seconds: list[float] = []
    rss_per_node: list[float] = []
    for run in range(args.runs):
        sandbox = LocalSandbox(
            f"bench-{run}", args.nodes, netns=args.netns, semi_sync=args.semi_sync, temporary=True
        )
        try:
            started = time.perf_counter()
            sandbox.up()
            up_seconds.append(time.perf_counter() - started)
            time.sleep(args.idle_seconds)
            rss_per_node += [sandbox.rss_bytes(node) / MIB for node in sandbox.nodes]
        finally:
            sandbox.destroy()
        print(f"run {run + 1}: up and replicating in {up_seconds[-1]:.2f} s", file=sys.stderr)

    mode = (
        ", ".join(m for m, on in (("netns", args.netns), ("semi-sync", args.semi_sync)) if on) or "loopback"
    )
    print(f"sandbox: {args.nodes} nodes ({mode}), MariaDB {mariadb_version()}, {args.runs} runs")
    print(f"  template data directory (first use only, then cached): {template_seconds:.2f} s")
    print(
        f"  up and replicating: median {statistics.median(up_seconds):.2f} s "
        f"(min {min(up_seconds):.2f}, max {max(up_seconds):.2f}; target < 10 s)"
    )
    print(
        f"  idle RSS per node: median {statistics.median(rss_per_node):.1f} MiB "
        f"(max {max(rss_per_node):.1f} MiB; target < 120 MB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
