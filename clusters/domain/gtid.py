"""GTID arithmetic for MariaDB and MySQL: parse, format, compare, union, subtract, errant transactions.

MariaDB numbers transactions per replication domain: a GTID is `domain-server_id-seq`, and a position
(`gtid_current_pos`, `gtid_slave_pos`, `gtid_io_pos`, the GTID list at the start of a binlog) keeps the
last GTID of each domain. A position therefore stands for "sequence numbers 1..seq of every domain", so
positions compare, unite and subtract per domain by sequence number (`MariadbGtidPos`; the difference of
two positions is a `MariadbSeqSet`, written `domain:first-last`). `gtid_binlog_state` keeps one entry
per (domain, server_id) instead (`MariadbBinlogState`): it is what reveals errant transactions, since a
position hides a stray `0-2-101` once `0-1-101` arrives from the primary.

MySQL names transactions `source_uuid:n` and keeps real sets (`gtid_executed`, written
`uuid:1-5:7-9,uuid2:3`, with optional 8.4 tags `uuid:tag:1-3`): `MysqlGtidSet`.

`MariadbGtidPos` and `MysqlGtidSet` share one small protocol (`GtidPosition`): `contains`, `union`,
`subtract`, `transactions_behind`, canonical `str`. For MySQL the "received" position of a replica is
gtid_executed plus the channel's Retrieved_Gtid_Set (which the probe stores in `gtid_io_pos`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from clusters.domain.probe import ProbeResult

MAX_UINT32 = 2**32 - 1
MAX_UINT64 = 2**64 - 1
MAX_MYSQL_TRX = 2**63 - 1

Interval = tuple[int, int]  # inclusive (first, last), first <= last
K = TypeVar("K")
S = TypeVar("S", bound="_IntervalSets[Any]")


class GtidError(ValueError):
    """A GTID string that cannot be parsed; the message says which part is wrong."""


# --- integer interval sets (sorted, disjoint, non-adjacent) --------------------------------------------


def _normalize(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    merged: list[list[int]] = []
    for first, last in sorted(intervals):
        if first > last:
            continue
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return tuple((a, b) for a, b in merged)


def _subtract(have: tuple[Interval, ...], remove: tuple[Interval, ...]) -> tuple[Interval, ...]:
    out: list[Interval] = []
    for first, last in have:
        cursor = first
        for r_first, r_last in remove:
            if r_last < cursor:
                continue
            if r_first > last:
                break
            if r_first > cursor:
                out.append((cursor, r_first - 1))
            cursor = r_last + 1
            if cursor > last:
                break
        if cursor <= last:
            out.append((cursor, last))
    return tuple(out)


def _count(intervals: tuple[Interval, ...]) -> int:
    return sum(last - first + 1 for first, last in intervals)


def _format_intervals(intervals: tuple[Interval, ...]) -> str:
    return ":".join(str(a) if a == b else f"{a}-{b}" for a, b in intervals)


def _parse_interval(text: str, what: str, maximum: int, minimum: int = 1) -> Interval:
    match = re.fullmatch(r"(\d+)(?:-(\d+))?", text)
    if not match:
        raise GtidError(f"{what}: {text!r} is not a number or a range like 1-5")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    if not minimum <= first <= last <= maximum:
        raise GtidError(f"{what}: range {text!r} must satisfy {minimum} <= first <= last <= {maximum}")
    return first, last


class _IntervalSets(Mapping[K, tuple[Interval, ...]]):
    """An immutable map key -> set of integers (as intervals), with the set algebra shared by both flavours."""

    __slots__ = ("_sets",)

    def __init__(self, sets: Mapping[K, Iterable[Interval]] | Iterable[tuple[K, Iterable[Interval]]] = ()):
        items = sets.items() if isinstance(sets, Mapping) else sets
        merged: dict[K, list[Interval]] = {}
        for key, intervals in items:
            merged.setdefault(key, []).extend(intervals)
        self._sets: dict[K, tuple[Interval, ...]] = {}
        for key in sorted(merged):  # type: ignore[type-var]
            normalized = _normalize(merged[key])
            if normalized:
                self._sets[key] = normalized

    def __getitem__(self, key: K) -> tuple[Interval, ...]:
        return self._sets[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._sets)

    def __len__(self) -> int:
        """The number of keys (uuids or domains) that have transactions; see `count` for transactions."""
        return len(self._sets)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._sets == other._sets

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(self._sets.items())))

    def __bool__(self) -> bool:
        return bool(self._sets)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    @property
    def is_empty(self) -> bool:
        return not self._sets

    def count(self) -> int:
        """How many transactions the set holds."""
        return sum(_count(intervals) for intervals in self._sets.values())

    def union(self: S, other: S) -> S:
        return type(self)(list(self._sets.items()) + list(other._sets.items()))

    def subtract(self: S, other: S) -> S:
        return type(self)({key: _subtract(ivs, other._sets.get(key, ())) for key, ivs in self._sets.items()})

    def intersection(self: S, other: S) -> S:
        return self.subtract(self.subtract(other))

    def contains(self: S, other: S) -> bool:
        """True when every transaction of `other` is in this set."""
        return other.subtract(self).is_empty

    def transactions_behind(self: S, other: S) -> int:
        """How many transactions `other` has that this set lacks."""
        return other.subtract(self).count()

    __or__ = union
    __sub__ = subtract
    __and__ = intersection


# --- MySQL ------------------------------------------------------------------------------------------------

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TAG = re.compile(r"[a-z_][a-z0-9_]{0,31}")


class MysqlGtidSet(_IntervalSets[tuple[str, str]]):
    """A MySQL GTID set. Keys are (source uuid, tag), the tag "" when untagged (MySQL 8.4 adds tags)."""

    @classmethod
    def parse(cls, text: str | None) -> MysqlGtidSet:
        """Parse `uuid:1-5:7-9,uuid2:3` (whitespace and newlines allowed around elements)."""
        if text is None:
            return cls()
        sets: list[tuple[tuple[str, str], list[Interval]]] = []
        for element in text.split(","):
            element = element.strip()
            if not element:
                continue
            parts = [p.strip() for p in element.split(":")]
            uuid = parts[0].lower()
            if not _UUID.fullmatch(uuid):
                raise GtidError(f"{element!r}: {parts[0]!r} is not a server uuid")
            if len(parts) < 2:
                raise GtidError(f"{element!r}: a uuid needs at least one transaction range, as uuid:1-5")
            tag = ""
            pending_tag = False
            for part in parts[1:]:
                if part and not part[0].isdigit():
                    tag = part.lower()
                    if not _TAG.fullmatch(tag):
                        raise GtidError(f"{element!r}: {part!r} is not a valid GTID tag")
                    pending_tag = True
                    continue
                sets.append(((uuid, tag), [_parse_interval(part, element, MAX_MYSQL_TRX)]))
                pending_tag = False
            if pending_tag:
                raise GtidError(f"{element!r}: tag {tag!r} has no transaction range")
        return cls(sets)

    def __str__(self) -> str:
        by_uuid: dict[str, list[str]] = {}
        for (uuid, tag), intervals in self._sets.items():  # keys are sorted: untagged ("") first
            chunk = _format_intervals(intervals)
            by_uuid.setdefault(uuid, []).append(f"{tag}:{chunk}" if tag else chunk)
        return ",".join(f"{uuid}:{':'.join(chunks)}" for uuid, chunks in by_uuid.items())

    def without_source(self, uuid: str) -> MysqlGtidSet:
        """The set minus every transaction of one source uuid (all tags)."""
        uuid = uuid.lower()
        return MysqlGtidSet({key: ivs for key, ivs in self._sets.items() if key[0] != uuid})

    def gtids(self) -> list[str]:
        """One string per (uuid, tag) entry: `uuid:1-5:7`."""
        return [str(MysqlGtidSet({key: ivs})) for key, ivs in self._sets.items()]


# --- MariaDB ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Gtid:
    """One MariaDB GTID: domain_id-server_id-seq_no."""

    domain: int
    server_id: int
    seq: int

    @classmethod
    def parse(cls, text: str) -> Gtid:
        match = re.fullmatch(r"\s*(\d+)-(\d+)-(\d+)\s*", text)
        if not match:
            raise GtidError(f"{text!r} is not a MariaDB GTID (domain-server_id-sequence, e.g. 0-1-100)")
        domain, server_id, seq = (int(g) for g in match.groups())
        if domain > MAX_UINT32 or server_id > MAX_UINT32 or seq > MAX_UINT64:
            raise GtidError(f"{text!r}: domain and server_id must fit 32 bits, the sequence 64 bits")
        return cls(domain, server_id, seq)

    def __str__(self) -> str:
        return f"{self.domain}-{self.server_id}-{self.seq}"


def _parse_gtid_list(text: str | None) -> list[Gtid]:
    if not text:
        return []
    return [Gtid.parse(part) for part in text.replace("\n", "").split(",") if part.strip()]


class MariadbSeqSet(_IntervalSets[int]):
    """Sequence numbers per MariaDB domain, written `domain:first-last` (e.g. `0:101-105,1:7`).

    This is what a difference of two positions is: "domain 0, transactions 101 to 105".
    """

    @classmethod
    def parse(cls, text: str | None) -> MariadbSeqSet:
        sets: list[tuple[int, list[Interval]]] = []
        for element in (text or "").split(","):
            element = element.strip()
            if not element:
                continue
            domain_text, _, ranges = element.partition(":")
            if not domain_text.isdigit() or not ranges or int(domain_text) > MAX_UINT32:
                raise GtidError(f"{element!r} is not written domain:first-last")
            intervals = [_parse_interval(part, element, MAX_UINT64) for part in ranges.split(":")]
            sets.append((int(domain_text), intervals))
        return cls(sets)

    def __str__(self) -> str:
        return ",".join(f"{domain}:{_format_intervals(ivs)}" for domain, ivs in self._sets.items())


class MariadbGtidPos:
    """A MariaDB GTID position: the last GTID of each domain (at most one per domain)."""

    __slots__ = ("_by_domain",)

    def __init__(self, gtids: Iterable[Gtid] = ()):
        by_domain: dict[int, Gtid] = {}
        for gtid in gtids:
            if gtid.domain in by_domain:
                raise GtidError(f"a position has one GTID per domain; domain {gtid.domain} appears twice")
            by_domain[gtid.domain] = gtid
        self._by_domain = dict(sorted(by_domain.items()))

    @classmethod
    def parse(cls, text: str | None) -> MariadbGtidPos:
        return cls(_parse_gtid_list(text))

    def __str__(self) -> str:
        return ",".join(str(g) for g in self._by_domain.values())

    def __repr__(self) -> str:
        return f"MariadbGtidPos({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MariadbGtidPos) and self._by_domain == other._by_domain

    def __hash__(self) -> int:
        return hash(tuple(self._by_domain.values()))

    def __bool__(self) -> bool:
        return bool(self._by_domain)

    @property
    def is_empty(self) -> bool:
        return not self._by_domain

    @property
    def gtids(self) -> tuple[Gtid, ...]:
        return tuple(self._by_domain.values())

    @property
    def domains(self) -> tuple[int, ...]:
        return tuple(self._by_domain)

    def get(self, domain: int) -> Gtid | None:
        return self._by_domain.get(domain)

    def seq(self, domain: int) -> int:
        """The last sequence number of `domain` (0 when the position has no GTID there)."""
        gtid = self._by_domain.get(domain)
        return gtid.seq if gtid else 0

    def as_seq_set(self) -> MariadbSeqSet:
        return MariadbSeqSet({d: [(1, g.seq)] for d, g in self._by_domain.items() if g.seq > 0})

    def count(self) -> int:
        return sum(g.seq for g in self._by_domain.values())

    def contains(self, other: MariadbGtidPos) -> bool:
        """True when this position is at or past `other` in every domain `other` has."""
        return all(self.seq(d) >= g.seq for d, g in other._by_domain.items())

    def union(self, other: MariadbGtidPos) -> MariadbGtidPos:
        """Per domain the later GTID (a tie on sequence keeps the higher server_id, so union commutes)."""
        merged = dict(self._by_domain)
        for domain, gtid in other._by_domain.items():
            mine = merged.get(domain)
            if mine is None or (gtid.seq, gtid.server_id) > (mine.seq, mine.server_id):
                merged[domain] = gtid
        return MariadbGtidPos(merged.values())

    def subtract(self, other: MariadbGtidPos) -> MariadbSeqSet:
        """The transactions this position has beyond `other`, per domain (`0:101-105`)."""
        return self.as_seq_set().subtract(other.as_seq_set())

    def behind(self, other: MariadbGtidPos) -> dict[int, int]:
        """Per domain, how many transactions `other` has that this position lacks (only domains behind)."""
        gaps = {d: g.seq - self.seq(d) for d, g in other._by_domain.items()}
        return {d: gap for d, gap in gaps.items() if gap > 0}

    def transactions_behind(self, other: MariadbGtidPos) -> int:
        return sum(self.behind(other).values())

    __or__ = union
    __sub__ = subtract


class MariadbBinlogState:
    """`gtid_binlog_state`: the last sequence number per (domain, server_id) ever binlogged by a server."""

    __slots__ = ("_entries",)

    def __init__(self, gtids: Iterable[Gtid] = ()):
        entries: dict[tuple[int, int], int] = {}
        for gtid in gtids:
            key = (gtid.domain, gtid.server_id)
            if key in entries:
                raise GtidError(f"a binlog state has one GTID per (domain, server_id); {key} appears twice")
            entries[key] = gtid.seq
        self._entries = dict(sorted(entries.items()))

    @classmethod
    def parse(cls, text: str | None) -> MariadbBinlogState:
        return cls(_parse_gtid_list(text))

    @property
    def gtids(self) -> tuple[Gtid, ...]:
        return tuple(Gtid(d, s, n) for (d, s), n in self._entries.items())

    def __str__(self) -> str:
        return ",".join(str(g) for g in self.gtids)

    def __repr__(self) -> str:
        return f"MariadbBinlogState({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MariadbBinlogState) and self._entries == other._entries

    def __hash__(self) -> int:
        return hash(tuple(self._entries.items()))

    def __bool__(self) -> bool:
        return bool(self._entries)

    def seq(self, domain: int, server_id: int) -> int:
        return self._entries.get((domain, server_id), 0)

    def union(self, other: MariadbBinlogState) -> MariadbBinlogState:
        merged = dict(self._entries)
        for key, seq in other._entries.items():
            merged[key] = max(seq, merged.get(key, 0))
        return MariadbBinlogState(Gtid(d, s, n) for (d, s), n in merged.items())

    def contains(self, other: MariadbBinlogState) -> bool:
        return all(self.seq(d, s) >= n for (d, s), n in other._entries.items())

    def position(self) -> MariadbGtidPos:
        """The latest GTID of each domain (highest sequence; a tie keeps the higher server_id)."""
        best: dict[int, Gtid] = {}
        for gtid in self.gtids:
            mine = best.get(gtid.domain)
            if mine is None or (gtid.seq, gtid.server_id) > (mine.seq, mine.server_id):
                best[gtid.domain] = gtid
        return MariadbGtidPos(best.values())

    def without(self, gtids: Iterable[Gtid]) -> MariadbBinlogState:
        drop = set(gtids)
        return MariadbBinlogState(g for g in self.gtids if g not in drop)

    def errant_relative_to(
        self, primary: MariadbBinlogState, *, primary_server_id: int | None = None
    ) -> tuple[Gtid, ...]:
        """Entries of this (replica's) state that the primary never binlogged.

        An entry (d, s, n) is errant when the primary's state has no entry for (d, s) with seq >= n.
        Transactions the replica received from the primary, or from earlier primaries, carry those
        servers' ids and appear in the primary's state too, so they pass. Entries carrying the primary's
        own server_id are never errant: only the primary writes them, and a replica probed a moment after
        the primary may simply have received a newer one. Each errant entry is the *last* errant
        transaction of its (domain, server_id); earlier ones in the same stream are implied.
        """
        return tuple(
            Gtid(d, s, n)
            for (d, s), n in self._entries.items()
            if s != primary_server_id and primary.seq(d, s) < n
        )


class GtidPosition(Protocol):
    """What election and analysis need of a position, whichever the flavour."""

    def contains(self, other: Any) -> bool: ...

    def union(self, other: Any) -> Any: ...

    def subtract(self, other: Any) -> Any: ...

    def transactions_behind(self, other: Any) -> int: ...


# --- reading positions out of probe results ---------------------------------------------------------------


def is_mysql(probe: ProbeResult) -> bool:
    return probe.flavour == "mysql"


def applied_position(probe: ProbeResult) -> MariadbGtidPos | MysqlGtidSet | None:
    """What the server has applied: gtid_current_pos (MariaDB) or gtid_executed (MySQL); None if unknown."""
    if is_mysql(probe):
        return None if probe.gtid_executed is None else MysqlGtidSet.parse(probe.gtid_executed)
    return None if probe.gtid_current_pos is None else MariadbGtidPos.parse(probe.gtid_current_pos)


def received_position(probe: ProbeResult) -> MariadbGtidPos | MysqlGtidSet | None:
    """What the server holds once its relay log is applied: applied position plus what the IO thread got."""
    applied = applied_position(probe)
    channel = probe.channel
    if applied is None or channel is None or not channel.gtid_io_pos:
        return applied
    if isinstance(applied, MysqlGtidSet):
        return applied.union(MysqlGtidSet.parse(channel.gtid_io_pos))
    return applied.union(MariadbGtidPos.parse(channel.gtid_io_pos))


def errant_gtids(replica: ProbeResult, primary: ProbeResult) -> list[str] | None:
    """Transactions on `replica` that `primary` never had, as strings; None when the probes cannot tell.

    MariaDB: from both servers' gtid_binlog_state (see MariadbBinlogState.errant_relative_to).
    MySQL: replica gtid_executed minus primary gtid_executed, ignoring the primary's own uuid (a replica
    probed just after the primary may hold a newer transaction of it).
    """
    if is_mysql(replica) or is_mysql(primary):
        if replica.gtid_executed is None or primary.gtid_executed is None:
            return None
        extra = MysqlGtidSet.parse(replica.gtid_executed).subtract(MysqlGtidSet.parse(primary.gtid_executed))
        if primary.server_uuid:
            extra = extra.without_source(primary.server_uuid)
        return extra.gtids()
    if replica.gtid_binlog_state is None or primary.gtid_binlog_state is None:
        return None
    errant = MariadbBinlogState.parse(replica.gtid_binlog_state).errant_relative_to(
        MariadbBinlogState.parse(primary.gtid_binlog_state), primary_server_id=primary.server_id
    )
    return [str(g) for g in errant]


def purged_transactions_needed(replica: ProbeResult, primary: ProbeResult) -> str | None:
    """Transactions the replica still needs that the primary has purged from its binlogs ("" when none).

    MariaDB: the GTID list at the start of the primary's oldest binlog says what came before it; the
    replica resumes from gtid_slave_pos (Using_Gtid Slave_Pos) or gtid_current_pos. MySQL: the primary's
    gtid_purged minus the replica's gtid_executed. None when the probes do not tell.
    """
    if is_mysql(replica) or is_mysql(primary):
        if primary.gtid_purged is None or replica.gtid_executed is None:
            return None
        return str(
            MysqlGtidSet.parse(primary.gtid_purged).subtract(MysqlGtidSet.parse(replica.gtid_executed))
        )
    if primary.gtid_list_of_oldest_binlog is None:
        return None
    channel = replica.channel
    resume_from = replica.gtid_current_pos
    if (
        channel is not None
        and channel.using_gtid.lower() == "slave_pos"
        and replica.gtid_slave_pos is not None
    ):
        resume_from = replica.gtid_slave_pos
    if resume_from is None:
        return None
    purged = MariadbGtidPos.parse(primary.gtid_list_of_oldest_binlog)
    return str(purged.subtract(MariadbGtidPos.parse(resume_from)))


def errant_among_survivors(
    candidate: ProbeResult,
    survivors: Iterable[ProbeResult],
    *,
    primary_server_id: int | None = None,
    primary_uuid: str | None = None,
    last_primary_state: str | None = None,
) -> list[str] | None:
    """Errant transactions of `candidate` when the primary cannot be asked (it is down).

    Errant means "a transaction no primary of the cluster ever had". With `last_primary_state` (the union
    of the primaries' `gtid_binlog_state` as the monitoring ticks saw them, or gtid_executed on MySQL) a
    transaction is errant when it did not come from the old primary (`primary_server_id` /
    `primary_uuid`: the dead primary's last writes may postdate the last tick) and neither that history
    nor a position the servers recorded (every survivor's `gtid_slave_pos`: what it received from a
    primary, or was given when it was rebuilt from a backup) has it. Other replicas' binlog states are
    never the reference then: a rebuilt replica's `gtid_binlog_state` is empty, which would make the
    earlier primaries' transactions look errant on the others.

    Without that history (monitoring never saw a healthy primary, the hot state was lost) the survivors'
    binlog states are the only reference left: earlier primaries' transactions were replicated to every
    survivor, so they pass unless a survivor was rebuilt. None when nothing can be compared.
    """
    others = [p for p in survivors if p.address != candidate.address and p.reachable]
    if is_mysql(candidate):
        if candidate.gtid_executed is None:
            return None
        known = MysqlGtidSet.parse(last_primary_state)
        references = [p.gtid_executed for p in others if p.gtid_executed is not None]
        if not references and last_primary_state is None:
            return None
        if last_primary_state is None:
            for text in references:
                known = known.union(MysqlGtidSet.parse(text))
        extra = MysqlGtidSet.parse(candidate.gtid_executed).subtract(known)
        return (extra.without_source(primary_uuid) if primary_uuid else extra).gtids()
    if candidate.gtid_binlog_state is None:
        return None
    if last_primary_state is not None:
        known_state = MariadbBinlogState.parse(last_primary_state)
    else:
        states = [p.gtid_binlog_state for p in others if p.gtid_binlog_state is not None]
        if not states:
            return None
        known_state = MariadbBinlogState()
        for text in states:
            known_state = known_state.union(MariadbBinlogState.parse(text))
    for probe in [candidate, *others]:
        known_state = known_state.union(state_of_position(probe.gtid_slave_pos))
    errant = MariadbBinlogState.parse(candidate.gtid_binlog_state).errant_relative_to(
        known_state, primary_server_id=primary_server_id
    )
    return [str(g) for g in errant]


def state_of_position(text: str | None) -> MariadbBinlogState:
    """A GTID position read as binlog-state entries: each of its GTIDs was a primary's transaction (a
    `gtid_slave_pos` names the last one received per domain). Unreadable text gives nothing."""
    try:
        return MariadbBinlogState(MariadbGtidPos.parse(text).gtids)
    except GtidError:
        return MariadbBinlogState()


def history_with(history: str | None, primary: ProbeResult | None) -> str | None:
    """The cluster's GTID history (union of every primary's `gtid_binlog_state` and positions seen
    healthy, or gtid_executed on MySQL) extended with this probe of the primary; the history unchanged when the
    probe says nothing new or cannot be read."""
    if primary is None or not primary.reachable:
        return history
    try:
        if is_mysql(primary):
            if primary.gtid_executed is None:
                return history
            return str(MysqlGtidSet.parse(history).union(MysqlGtidSet.parse(primary.gtid_executed)))
        if primary.gtid_binlog_state is None:
            return history
        known = MariadbBinlogState.parse(history).union(MariadbBinlogState.parse(primary.gtid_binlog_state))
        # A primary rebuilt from a backup has an empty binlog state: what it holds shows in its positions.
        for position in (primary.gtid_slave_pos, primary.gtid_current_pos):
            known = known.union(state_of_position(position))
        return str(known)
    except GtidError:
        return history
