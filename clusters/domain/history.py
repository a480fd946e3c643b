"""Per-server history: what one tick records of each server, packed small, and how it is downsampled.

A tick turns each server's probe and analysed view into a `Sample` (lag, IO/SQL threads running, semi-sync
on, connections, read/write/GTID rates). Rates come from counters: the status counters (`Com_select` for
reads, `Com_insert/update/delete/replace` for writes) are re-read about every 10 s, so a rate is the
counter's change over the time between two different readings, carried forward until the next one; the
GTID sequence (the sum of the sequence numbers over the domains of the server's position) is read every
tick. The previous readings live in the cluster's hot state (`RateMemory`, plain JSON).

A tick's samples of one cluster pack into one binary entry (`pack_entry`: an 8-byte time, then 23 bytes per
server), pushed onto the cluster's 1-hour list at tick resolution. A `MinuteAggregate`, also in the hot
state, folds the ticks of the current minute (worst lag, a thread stopped at any tick, the mean rates,
the latest of the rest) and yields one entry per minute for the 24-hour list.

No Django here: the service (clusters/services/history.py) does the Redis part.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass

SERIES = (
    "lag",
    "io_running",
    "sql_running",
    "semi_sync",
    "connections",
    "reads_per_s",
    "writes_per_s",
    "gtid_per_s",
)
RANGES = {"1h": 3600, "24h": 86400}
MINUTE = 60
HOUR_SAMPLES = 3600  # at tick_seconds 1; a slower tick fills the hour with fewer
DAY_SAMPLES = 24 * 60

_HEADER = struct.Struct("<d")  # the tick's time, unix seconds
# server id, lag (NaN: none), flags, connections (0xFFFF: unknown), reads/s, writes/s, GTIDs/s (NaN: unknown)
_SERVER = struct.Struct("<IfBHfff")
_UNKNOWN_CONNECTIONS = 0xFFFF
_IO, _SQL, _SEMI, _REPLICATING, _REACHABLE, _SEMI_KNOWN = 1, 2, 4, 8, 16, 32


@dataclass(frozen=True)
class Sample:
    server_id: int
    lag: float | None = None
    io_running: bool | None = None  # None: not a replica
    sql_running: bool | None = None
    semi_sync: bool | None = None  # the primary's master status or a replica's slave status
    connections: int | None = None
    reads_per_s: float | None = None
    writes_per_s: float | None = None
    gtid_per_s: float | None = None
    reachable: bool = True

    def value(self, series: str) -> float | None:
        v = getattr(self, series)
        if isinstance(v, bool):
            return 1.0 if v else 0.0
        return None if v is None else float(v)


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


def _none(v: float) -> float | None:
    return None if math.isnan(v) else round(v, 3)


def pack_entry(t: float, samples: list[Sample]) -> bytes:
    parts = [_HEADER.pack(round(float(t), 3))]
    for s in samples:
        flags = (
            (_IO if s.io_running else 0)
            | (_SQL if s.sql_running else 0)
            | (_SEMI if s.semi_sync else 0)
            | (_REPLICATING if s.io_running is not None else 0)
            | (_REACHABLE if s.reachable else 0)
            | (_SEMI_KNOWN if s.semi_sync is not None else 0)
        )
        conns = _UNKNOWN_CONNECTIONS if s.connections is None else min(int(s.connections), 0xFFFE)
        parts.append(
            _SERVER.pack(
                s.server_id & 0xFFFFFFFF,
                _nan(s.lag),
                flags,
                conns,
                _nan(s.reads_per_s),
                _nan(s.writes_per_s),
                _nan(s.gtid_per_s),
            )
        )
    return b"".join(parts)


def unpack_entry(raw: bytes) -> tuple[float, list[Sample]]:
    (t,) = _HEADER.unpack_from(raw, 0)
    samples = []
    for offset in range(_HEADER.size, len(raw) - _SERVER.size + 1, _SERVER.size):
        sid, lag, flags, conns, rd, wr, gt = _SERVER.unpack_from(raw, offset)
        replicating = bool(flags & _REPLICATING)
        samples.append(
            Sample(
                server_id=sid,
                lag=_none(lag),
                io_running=bool(flags & _IO) if replicating else None,
                sql_running=bool(flags & _SQL) if replicating else None,
                semi_sync=bool(flags & _SEMI) if flags & _SEMI_KNOWN else None,
                connections=None if conns == _UNKNOWN_CONNECTIONS else conns,
                reads_per_s=_none(rd),
                writes_per_s=_none(wr),
                gtid_per_s=_none(gt),
                reachable=bool(flags & _REACHABLE),
            )
        )
    return t, samples


_MARIADB_GTID = re.compile(r"^\s*(\d+)-(\d+)-(\d+)\s*$")


def gtid_sequence(position: str | None) -> dict[str, int]:
    """Sequence per domain of a position: MariaDB `domain-server-seq` items, or a MySQL set's last number
    per source uuid. Unparseable items are left out."""
    out: dict[str, int] = {}
    for item in (position or "").replace("\n", "").split(","):
        m = _MARIADB_GTID.match(item)
        if m:
            out[m.group(1)] = int(m.group(3))
            continue
        parts = item.strip().split(":")
        if len(parts) >= 2:
            last = parts[-1].split("-")[-1]
            if last.isdigit():
                out[parts[0]] = out.get(parts[0], 0) + int(last)
    return out


class RateMemory:
    """Previous counter readings per server, to turn counters into rates. JSON-able via to_state()."""

    def __init__(self, state: dict | None = None):
        self.state: dict[str, list] = dict(state or {})

    def to_state(self) -> dict:
        return self.state

    def rate(self, key: str, value: int | None, now: float) -> float | None:
        """The counter's rate: change over the time since the previous different reading; carried forward
        while the reading does not change (a counter re-read every ~10 s). A counter that went backwards
        (a restart) starts again."""
        if value is None:
            return None
        previous = self.state.get(key)
        if previous is None or value < previous[1]:
            self.state[key] = [now, value, None]
            return None
        t0, v0, last_rate = previous
        if value == v0:
            # Unchanged: carry the last rate, but not forever (a counter not read for 30 s is stale).
            return last_rate if now - t0 <= 30 else 0.0
        rate = (value - v0) / max(now - t0, 1e-3)
        self.state[key] = [now, value, rate]
        return rate

    def forget_missing(self, keys: set[str]) -> None:
        for key in list(self.state):
            if key not in keys:
                del self.state[key]


def make_sample(
    server_id: int,
    *,
    reachable: bool,
    lag: float | None,
    replication: dict | None,
    semi_sync: bool | None,
    connections: int | None,
    reads_total: int | None,
    writes_total: int | None,
    gtid_position: str | None,
    now: float,
    memory: RateMemory,
) -> Sample:
    seq = None if gtid_position is None else sum(gtid_sequence(gtid_position).values())
    reads = memory.rate(f"{server_id}:r", reads_total, now) if reachable else None
    writes = memory.rate(f"{server_id}:w", writes_total, now) if reachable else None
    gtid_rate = memory.rate(f"{server_id}:g", seq, now) if reachable else None
    io = sql = None
    if replication:
        io = replication.get("io_running") == "Yes"
        sql = replication.get("sql_running") == "Yes"
    return Sample(
        server_id=server_id,
        lag=lag if reachable else None,
        io_running=io,
        sql_running=sql,
        semi_sync=semi_sync,
        connections=connections if reachable else None,
        reads_per_s=reads,
        writes_per_s=writes,
        gtid_per_s=gtid_rate,
        reachable=reachable,
    )


class MinuteAggregate:
    """Folds a minute of ticks into one sample per server (worst lag, any stop, mean rates, latest rest)."""

    def __init__(self, state: dict | None = None):
        state = state or {}
        self.minute: int | None = state.get("m")
        self.servers: dict[str, list] = state.get("s", {})

    def to_state(self) -> dict:
        return {"m": self.minute, "s": self.servers}

    def add(self, t: float, samples: list[Sample]) -> bytes | None:
        """Fold one tick in; returns the packed entry of the previous minute when this tick starts a new one."""
        minute = int(t // MINUTE) * MINUTE
        done = None
        if self.minute is not None and minute != self.minute and self.servers:
            done = pack_entry(self.minute, self.result())
            self.servers = {}
        self.minute = minute
        for s in samples:
            acc = self.servers.get(str(s.server_id))
            # [n, max lag, io all, sql all, semi latest, conns max, reads sum, reads n, writes sum, writes n,
            #  gtid sum, gtid n, replicating, reachable any]
            if acc is None:
                acc = [0, None, True, True, None, None, 0.0, 0, 0.0, 0, 0.0, 0, False, False]
                self.servers[str(s.server_id)] = acc
            acc[0] += 1
            if s.lag is not None:
                acc[1] = s.lag if acc[1] is None else max(acc[1], s.lag)
            if s.io_running is not None:
                acc[12] = True
                acc[2] = acc[2] and s.io_running
                acc[3] = acc[3] and bool(s.sql_running)
            if s.semi_sync is not None:
                acc[4] = s.semi_sync
            if s.connections is not None:
                acc[5] = s.connections if acc[5] is None else max(acc[5], s.connections)
            for i, v in ((6, s.reads_per_s), (8, s.writes_per_s), (10, s.gtid_per_s)):
                if v is not None:
                    acc[i] += v
                    acc[i + 1] += 1
            acc[13] = acc[13] or s.reachable
        return done

    def result(self) -> list[Sample]:
        out = []
        for sid, a in self.servers.items():
            out.append(
                Sample(
                    server_id=int(sid),
                    lag=a[1],
                    io_running=a[2] if a[12] else None,
                    sql_running=a[3] if a[12] else None,
                    semi_sync=a[4],
                    connections=a[5],
                    reads_per_s=a[6] / a[7] if a[7] else None,
                    writes_per_s=a[8] / a[9] if a[9] else None,
                    gtid_per_s=a[10] / a[11] if a[11] else None,
                    reachable=a[13],
                )
            )
        return out


def series_points(entries: list[tuple[int, list[Sample]]], series: list[str]) -> dict[int, dict[str, list]]:
    """Per server: {"t": [times], "<series>": [values]} from unpacked entries (oldest first)."""
    out: dict[int, dict[str, list]] = {}
    for t, samples in entries:
        for s in samples:
            row = out.setdefault(s.server_id, {"t": [], **{name: [] for name in series}})
            row["t"].append(t)
            for name in series:
                row[name].append(s.value(name))
    return out


def parse_series(raw: str | None) -> list[str]:
    """`series=lag,connections` → the names, in order; empty or omitted: every series. ValueError names the
    unknown one."""
    if not raw:
        return list(SERIES)
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERIES]
    if unknown:
        raise ValueError(f"Unknown series {', '.join(unknown)}: choose among {', '.join(SERIES)}.")
    return list(dict.fromkeys(names))


class PrimaryCheckpoints:
    """When the primary reached which GTID sequence: a short list of (time, sequence), thinned as it ages
    (at most MAX entries, recent ones denser). It turns a replica's position into a lag in seconds when the
    server reports none (Seconds_Behind_Master is NULL while the SQL thread is stopped)."""

    MAX = 48

    def __init__(self, state: list | None = None):
        self.points: list[list[float]] = [list(p) for p in (state or [])]

    def to_state(self) -> list:
        return self.points

    def add(self, t: float, seq: int | None) -> None:
        if seq is None:
            return
        if self.points and seq < self.points[-1][1]:
            self.points = []  # the sequence went back: a new primary or a reset
        if self.points and seq == self.points[-1][1]:
            return
        self.points.append([t, seq])
        if len(self.points) > self.MAX:
            half = len(self.points) // 2
            self.points = self.points[:half:2] + self.points[half:]

    def lag(self, replica_seq: int | None, now: float) -> float | None:
        """Seconds since the primary first had a transaction the replica lacks (a lower bound: the
        checkpoint that first shows it); 0 when the replica has everything; None when unknown."""
        if replica_seq is None or not self.points:
            return None
        if replica_seq >= self.points[-1][1]:
            return 0.0
        for t, seq in self.points:
            if seq > replica_seq:
                return max(0.0, now - t)
        return None
