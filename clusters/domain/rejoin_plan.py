"""How a returning server rejoins the cluster: the `rejoin_method` setting, which method to try next, and
the flashback plan (what to roll back, the fork point, why flashback is refused) computed from the server's
binary log events and the primary's `gtid_binlog_state`. Pure: no Django, no server access.

A GTID rejoin is always tried first (the server's GTIDs are a subset of the primary's: nothing to undo);
the configured methods are the fallbacks, tried in order, when it holds transactions the primary lacks:

    flashback  roll exactly those back (`mariadb-binlog --flashback`), then rejoin by GTID
    reseed     rebuild it from a replica (a rebuild job)
    none       quarantine it as before (a person decides)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clusters.domain.gtid import Gtid, GtidError, MariadbBinlogState

GTID = "gtid"
FLASHBACK = "flashback"
RESEED = "reseed"
NONE = "none"
METHODS = (GTID, FLASHBACK, RESEED, NONE)

DEFAULT_REGISTERED: tuple[str, ...] = (GTID,)
DEFAULT_PROVISIONED: tuple[str, ...] = (FLASHBACK, RESEED)

# Flashback rolls back row events one by one: past this many the undo is too large to trust blindly
# (a rebuild is then the better answer).
MAX_FLASHBACK_ROW_EVENTS = 10_000


class RejoinMethodError(ValueError):
    """An invalid `rejoin_method`; the message says what is accepted."""


def parse_rejoin_method(value: Any) -> tuple[str, ...]:
    """`"flashback"` or `["flashback", "reseed"]` -> an ordered tuple of known, distinct methods."""
    accepted = f'one of {", ".join(METHODS)}, or a list of them tried in order (e.g. ["flashback", "reseed"])'
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items or not all(isinstance(m, str) for m in items):
        raise RejoinMethodError(f"must be {accepted}")
    unknown = [m for m in items if m not in METHODS]
    if unknown:
        raise RejoinMethodError(f"unknown method {unknown[0]!r}: use {accepted}")
    if len(set(items)) != len(items):
        raise RejoinMethodError("a method appears twice in the list")
    if NONE in items and len(items) > 1:
        raise RejoinMethodError('"none" means quarantine: it cannot be combined with other methods')
    return tuple(items)


def default_rejoin_method(provisioned: bool) -> tuple[str, ...]:
    return DEFAULT_PROVISIONED if provisioned else DEFAULT_REGISTERED


def rejoin_chain(configured: Any, *, provisioned: bool, requested: Any = None) -> tuple[str, ...]:
    """The methods in force: an operator's explicit request, else the cluster's setting, else the default
    of its origin (an invalid stored value falls back to the default rather than failing a tick)."""
    for value in (requested, configured):
        if value is not None:
            try:
                return parse_rejoin_method(value)
            except RejoinMethodError:
                if value is requested:
                    raise
    return default_rejoin_method(provisioned)


def fallbacks(chain: Sequence[str]) -> tuple[str, ...]:
    """The methods to try, in order, for a server holding transactions the primary lacks (GTID alone
    cannot rejoin it): the chain without `gtid`; empty means quarantine."""
    return tuple(m for m in chain if m not in (GTID, NONE))


def next_method(chain: Sequence[str], tried: Iterable[str]) -> str | None:
    """The first fallback not yet tried; None: quarantine."""
    done = set(tried)
    return next((m for m in fallbacks(chain) if m not in done), None)


# --- quarantine ends -----------------------------------------------------------------------------------


def quarantine_can_end(
    *,
    extra_gtids: Sequence[str] | None,
    replicates_from_primary: bool,
    writable: bool,
) -> tuple[bool, str]:
    """A quarantined server leaves quarantine by itself once it holds nothing the primary lacks, replicates
    from the primary (IO and SQL running, by GTID) and is read-only: someone rebuilt or repaired it."""
    if extra_gtids is None:
        return False, "its GTIDs cannot be compared with the primary's"
    if extra_gtids:
        return False, f"it still holds transactions the primary lacks: {', '.join(extra_gtids)}"
    if writable:
        return False, "it is writable"
    if not replicates_from_primary:
        return False, "it does not replicate from the primary"
    return True, "its GTIDs are all on the primary and it replicates from it read-only"


# --- flashback -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BinlogEvent:
    """One row of `SHOW BINLOG EVENTS`."""

    log: str
    pos: int
    event_type: str
    end_pos: int
    info: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> BinlogEvent:
        return cls(
            str(row["Log_name"]),
            int(row["Pos"]),
            str(row["Event_type"]),
            int(row["End_log_pos"]),
            str(row.get("Info") or ""),
        )


@dataclass
class BinlogTransaction:
    """A transaction (or a DDL statement) as the binary log holds it, from its GTID event on."""

    gtid: Gtid
    log: str
    pos: int
    ddl: bool
    row_events: int = 0
    statements: list[str] = field(default_factory=list)  # statement-based changes inside it


@dataclass(frozen=True)
class FlashbackPlan:
    """What a flashback would do, or why it must not (`refusals`, each a named check)."""

    discarded: tuple[str, ...]  # GTIDs rolled back, in binlog order
    start_log: str  # the binlog file and position of the first discarded transaction's GTID event
    start_pos: int
    row_events: int
    fork_point: str  # gtid_slave_pos after the rollback: the last GTID of each domain shared with the primary
    binlog_state: str  # gtid_binlog_state after the rollback (the discarded entries gone)
    refusals: tuple[dict[str, Any], ...] = ()

    @property
    def possible(self) -> bool:
        return not self.refusals

    def as_dict(self) -> dict[str, Any]:
        return {
            "discarded": list(self.discarded),
            "start": f"{self.start_log}:{self.start_pos}",
            "row_events": self.row_events,
            "fork_point": self.fork_point,
            "binlog_state": self.binlog_state,
            "refusals": list(self.refusals),
        }


ROW_EVENT_TYPES = ("Write_rows", "Update_rows", "Delete_rows")
_TRANSACTION_MARKERS = ("BEGIN", "COMMIT", "ROLLBACK", "XA ")


def transactions(events: Iterable[BinlogEvent]) -> tuple[list[BinlogTransaction], dict[str, str]]:
    """Group binlog events into transactions; also return each file's Gtid_list (the state before it)."""
    out: list[BinlogTransaction] = []
    lists: dict[str, str] = {}
    current: BinlogTransaction | None = None
    for event in events:
        kind = event.event_type
        if kind == "Gtid_list":
            lists[event.log] = event.info.strip().strip("[]")
        elif kind == "Gtid":
            words = event.info.split()
            gtid_text = next((w for w in words if w.count("-") == 2), "")
            current = BinlogTransaction(Gtid.parse(gtid_text), event.log, event.pos, ddl=words[0] != "BEGIN")
            out.append(current)
        elif current is not None and kind.startswith(ROW_EVENT_TYPES):
            current.row_events += 1
        elif current is not None and kind == "Query":
            text = event.info.strip()
            if not current.ddl and not text.upper().startswith(_TRANSACTION_MARKERS):
                current.statements.append(text[:200])
    return out, lists


def _check(name: str, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": False, "detail": detail}


def flashback_plan(
    events: Iterable[BinlogEvent],
    server_state: str,
    primary_state: str,
    *,
    binlog_format: str | None,
    binlog_row_image: str | None,
    max_row_events: int = MAX_FLASHBACK_ROW_EVENTS,
) -> FlashbackPlan:
    """Decide a flashback of the transactions a returning server holds that the primary lacks.

    `events` are the server's binlog events in order (every file it still has); the states are both
    servers' `gtid_binlog_state`. A transaction is the primary's when the primary's state has its
    (domain, server_id) at that sequence or later. The discarded transactions must be the tail of the
    binlog (nothing the primary has may follow them: flashback undoes everything from its start position),
    row-based with full images, no DDL, not too many; and the fork point (the last shared GTID of each
    domain) must still be in the binlogs or in the first file's GTID list (else binlogs were purged).
    """
    refusals: list[dict[str, Any]] = []
    try:
        mine = MariadbBinlogState.parse(server_state)
        theirs = MariadbBinlogState.parse(primary_state)
        trxs, lists = transactions(events)
    except GtidError as exc:
        return FlashbackPlan((), "", 0, 0, "", "", (_check("gtid_readable", str(exc)),))
    if (binlog_format or "").upper() != "ROW":
        refusals.append(_check("binlog_format_row", f"binlog_format is {binlog_format}, flashback needs ROW"))
    if (binlog_row_image or "").upper() != "FULL":
        refusals.append(
            _check("binlog_row_image_full", f"binlog_row_image is {binlog_row_image}, flashback needs FULL")
        )

    def shared(gtid: Gtid) -> bool:
        return theirs.seq(gtid.domain, gtid.server_id) >= gtid.seq

    first = next((i for i, t in enumerate(trxs) if not shared(t.gtid)), None)
    errant = mine.errant_relative_to(theirs)
    if first is None:
        detail = (
            f"its binlogs hold none of the transactions the primary lacks ({', '.join(map(str, errant))}): "
            "purged"
            if errant
            else "it holds no transaction the primary lacks: nothing to roll back"
        )
        refusals.append(_check("discarded_in_binlogs", detail))
        return FlashbackPlan((), "", 0, 0, "", "", tuple(refusals))
    tail = trxs[first:]
    after = [str(t.gtid) for t in tail if shared(t.gtid)]
    if after:
        refusals.append(
            _check(
                "discarded_are_the_tail",
                f"transactions the primary has ({', '.join(after[:5])}) follow the ones it lacks in the binlog",
            )
        )
    discarded = [t for t in tail if not shared(t.gtid)]
    ddl = [str(t.gtid) for t in discarded if t.ddl]
    if ddl:
        refusals.append(_check("no_ddl", f"DDL cannot be flashed back: {', '.join(ddl[:5])}"))
    statements = [str(t.gtid) for t in discarded if t.statements]
    if statements:
        refusals.append(
            _check(
                "row_events_only",
                f"statement-based changes cannot be flashed back: {', '.join(statements[:5])}",
            )
        )
    row_events = sum(t.row_events for t in discarded)
    if row_events > max_row_events:
        refusals.append(
            _check("not_too_many_events", f"{row_events} row events to undo (at most {max_row_events})")
        )
    # Every errant entry of the binlog state must be among the discarded transactions (else it was purged).
    last_discarded = {(t.gtid.domain, t.gtid.server_id): t.gtid.seq for t in discarded}
    missing = [str(g) for g in errant if last_discarded.get((g.domain, g.server_id), 0) < g.seq]
    if missing:
        refusals.append(
            _check("discarded_in_binlogs", f"{', '.join(missing)} is not in its binlogs (purged)")
        )
    # The fork point: per domain with discarded transactions, the last shared GTID before the first one.
    fork: dict[int, Gtid] = {}
    domains = {t.gtid.domain for t in discarded}
    for domain in sorted(domains):
        first_of_domain = next(
            i for i, t in enumerate(trxs) if t.gtid.domain == domain and not shared(t.gtid)
        )
        before = [t.gtid for t in trxs[:first_of_domain] if t.gtid.domain == domain]
        point = before[-1] if before else _list_position(lists.get(trxs[first_of_domain].log, ""), domain)
        if point is None:
            refusals.append(
                _check(
                    "fork_point_found",
                    f"no transaction of domain {domain} shared with the primary precedes the discarded ones "
                    "in its binlogs (purged, or the server never replicated it)",
                )
            )
        elif not shared(point):
            refusals.append(
                _check("fork_point_found", f"the binlogs before {point} were purged: the fork point is lost")
            )
        else:
            fork[domain] = point
    kept = []
    for gtid in mine.gtids:
        if gtid.domain in fork and gtid.seq > fork[gtid.domain].seq:
            seq = min(theirs.seq(gtid.domain, gtid.server_id), fork[gtid.domain].seq)
            if seq > 0:
                kept.append(Gtid(gtid.domain, gtid.server_id, seq))
        else:
            kept.append(gtid)
    state = {(g.domain, g.server_id): g for g in kept}
    for point in fork.values():
        state[(point.domain, point.server_id)] = point
    new_state = MariadbBinlogState(state.values())
    return FlashbackPlan(
        discarded=tuple(str(t.gtid) for t in discarded),
        start_log=tail[0].log,
        start_pos=tail[0].pos,
        row_events=row_events,
        fork_point=str(new_state.position()),
        binlog_state=str(new_state),
        refusals=tuple(refusals),
    )


def _list_position(gtid_list: str, domain: int) -> Gtid | None:
    """The last GTID of `domain` in a binlog file's Gtid_list (the state before that file)."""
    try:
        entries = [g for g in MariadbBinlogState.parse(gtid_list).gtids if g.domain == domain]
    except GtidError:
        return None
    return max(entries, key=lambda g: (g.seq, g.server_id)) if entries else None
