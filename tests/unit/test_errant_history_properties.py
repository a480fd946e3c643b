"""Property test: "errant" means a transaction no primary of the cluster ever had.

A small model of MariaDB's GTID state (strict mode, log_slave_updates, one domain) runs random histories
of writes, partial replication, ticks, errant writes on replicas, kills of the primary followed by a
failover, switchovers, rebuilds from a backup (empty gtid_binlog_state, gtid_slave_pos from the backup)
and rejoins. At every failover, dbpilot's judgement of each survivor (gtid.errant_among_survivors with
the history the ticks kept, gtid.history_with) must name exactly the survivor's binlog-state entries
that no primary ever had (the dead primary's own server id aside: its last writes may postdate the last
tick, and only it wrote them). Transactions carry an identity besides their GTID: a server rebuilt
behind a lost write can later write a different transaction under the same GTID, which GTIDs cannot
tell apart; the check allows that blind spot (a miss), never a transaction called errant that a primary
had.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clusters.domain.gtid import errant_among_survivors, history_with
from clusters.domain.probe import ProbeResult

pytestmark = pytest.mark.unit
SERVERS = (1, 2, 3, 4)


@dataclass
class Server:
    sid: int
    # transactions as (domain, server_id, seq, identity), in order
    applied: list[tuple[int, int, int, int]] = field(default_factory=list)
    binlog: list[tuple[int, int, int, int]] = field(
        default_factory=list
    )  # what it binlogged (log_slave_updates)
    slave_pos: dict[int, tuple[int, int, int, int]] = field(
        default_factory=dict
    )  # per domain, last replicated
    alive: bool = True

    def max_seq(self) -> int:
        return max((g[2] for g in self.applied), default=0)

    def state_entries(self) -> dict[tuple[int, int], tuple[int, int]]:
        """(domain, server_id) -> (seq, identity) of the last one binlogged: gtid_binlog_state."""
        last: dict[tuple[int, int], tuple[int, int]] = {}
        for d, s, n, uid in self.binlog:
            if n >= last.get((d, s), (0, 0))[0]:
                last[(d, s)] = (n, uid)
        return last

    def binlog_state(self) -> str:
        return ",".join(f"{d}-{s}-{n}" for (d, s), (n, _) in sorted(self.state_entries().items()))

    def probe(self) -> ProbeResult:
        current = self.applied[-1] if self.applied else None
        return ProbeResult(
            address=f"s{self.sid}",
            outcome="ok",
            flavour="mariadb",
            server_id=self.sid,
            gtid_binlog_state=self.binlog_state(),
            gtid_current_pos="" if current is None else "-".join(map(str, current[:3])),
            gtid_slave_pos=",".join("-".join(map(str, g[:3])) for g in self.slave_pos.values()),
        )


class Cluster:
    def __init__(self):
        self.servers = {sid: Server(sid) for sid in SERVERS}
        self.primary = 1
        self.history: str | None = None
        self.primaries_had: set[int] = set()  # identities
        self.names_had: set[tuple[int, int, int]] = set()  # their GTIDs
        self.ids = itertools.count(1)
        self.checked = 0

    @property
    def p(self) -> Server:
        return self.servers[self.primary]

    def replicas(self) -> list[Server]:
        return [s for s in self.servers.values() if s.sid != self.primary and s.alive]

    def _record_primary(self) -> None:
        self.primaries_had.update(g[3] for g in self.p.applied)
        self.names_had.update(g[:3] for g in self.p.applied)

    def write(self, n: int) -> None:
        if not self.p.alive:
            return
        for _ in range(n):
            gtid = (0, self.primary, self.p.max_seq() + 1, next(self.ids))
            self.p.applied.append(gtid)
            self.p.binlog.append(gtid)
        self._record_primary()

    def replicate(self, sid: int, k: int) -> None:
        replica = self.servers[sid]
        if sid == self.primary or not replica.alive or not self.p.alive:
            return
        have = set(replica.applied)
        # Binlogs are never purged in this model: the primary can serve anything it holds.
        for gtid in [g for g in self.p.applied if g not in have][:k]:
            self._apply(replica, gtid)

    @staticmethod
    def _apply(server: Server, gtid) -> None:
        server.applied.append(gtid)
        server.binlog.append(gtid)
        server.slave_pos[gtid[0]] = gtid

    def tick(self) -> None:
        if self.p.alive:
            self.history = history_with(self.history, self.p.probe())

    def errant_write(self, sid: int) -> None:
        replica = self.servers[sid]
        if sid == self.primary or not replica.alive:
            return
        gtid = (0, sid, replica.max_seq() + 1, next(self.ids))
        replica.applied.append(gtid)
        replica.binlog.append(gtid)

    def rebuild(self, sid: int) -> None:
        """mariadb-backup from the primary: its data, an empty binlog, gtid_slave_pos from the backup."""
        server = self.servers[sid]
        if sid == self.primary or not self.p.alive:
            return
        server.applied = list(self.p.applied)
        server.binlog = []
        server.slave_pos = {0: self.p.applied[-1]} if self.p.applied else {}
        server.alive = True

    def switchover(self, sid: int) -> None:
        candidate = self.servers[sid]
        if sid == self.primary or not candidate.alive or not self.p.alive:
            return
        if set(candidate.applied) - set(self.p.applied):
            return  # errant on the candidate: dbpilot refuses it
        self.replicate(sid, 10**6)
        old = self.p
        self.primary = sid
        self._record_primary()
        old.slave_pos = {0: old.applied[-1]} if old.applied else {}  # gtid_slave_pos = @@gtid_binlog_pos
        self.tick()

    def kill_and_fail_over(self) -> None:
        if not self.p.alive:
            return
        dead = self.p
        dead.alive = False
        survivors = self.replicas()
        if not survivors:
            dead.alive = True
            return
        probes = [s.probe() for s in survivors]
        judged = {}
        for server, probe in zip(survivors, probes, strict=True):
            found = errant_among_survivors(
                probe, probes, primary_server_id=dead.sid, last_primary_state=self.history
            )
            errant = {
                f"{d}-{s}-{n}"
                for (d, s), (n, uid) in server.state_entries().items()
                if uid not in self.primaries_had and s != dead.sid
            }
            # gtid_binlog_state keeps the last sequence per (domain, server id): a transaction numbered at
            # or below one a primary had under the same server id cannot be told apart (it takes lost
            # transactions, a sequence that went back, to write one)
            blind = {
                f"{d}-{s}-{n}"
                for (d, s), (n, uid) in server.state_entries().items()
                if uid not in self.primaries_had
                and any(k[:2] == (d, s) and k[2] >= n for k in self.names_had)
            }
            found_set = set(found or [])
            assert found_set <= errant, ("called errant, yet a primary had it", server.sid, found, errant)
            assert errant - blind <= found_set, ("errant, not found", server.sid, found, errant, self.history)
            judged[server.sid] = bool(found)
            self.checked += 1
        clean = [s for s in survivors if not judged[s.sid]]
        if not clean:
            dead.alive = True  # no failover possible: the primary is restarted
            return
        winner = max(clean, key=lambda s: (len(s.applied), -s.sid))
        for other in survivors:  # catch-up: what any survivor holds of the real history
            have = set(winner.applied)
            for gtid in other.applied:
                if gtid not in have and gtid[3] in self.primaries_had:
                    self._apply(winner, gtid)
                    have.add(gtid)
        self.primary = winner.sid
        self._record_primary()
        self.tick()
        for other in survivors:
            if judged[other.sid]:
                self.rebuild(other.sid)  # the operator rebuilds a replica holding errant transactions
        # the old primary returns: rejoin when all it has is on the new primary, else quarantine + rebuild
        dead.alive = True
        if set(dead.applied) - set(winner.applied):
            self.rebuild(dead.sid)
        else:
            dead.slave_pos = {0: dead.applied[-1]} if dead.applied else {}


actions = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(1, 4)),
        st.tuples(st.just("replicate"), st.tuples(st.sampled_from(SERVERS), st.integers(0, 6))),
        st.tuples(st.just("tick"), st.none()),
        st.tuples(st.just("errant"), st.sampled_from(SERVERS)),
        st.tuples(st.just("rebuild"), st.sampled_from(SERVERS)),
        st.tuples(st.just("switchover"), st.sampled_from(SERVERS)),
        st.tuples(st.just("failover"), st.none()),
    ),
    min_size=5,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(actions)
def test_errant_means_no_primary_ever_had_it(history):
    cluster = Cluster()
    cluster.tick()
    for name, arg in history:
        if name == "write":
            cluster.write(arg)
        elif name == "replicate":
            cluster.replicate(*arg)
        elif name == "tick":
            cluster.tick()
        elif name == "errant":
            if arg % 3 == 0:  # errant writes are rarer than the rest
                cluster.errant_write(arg)
        elif name == "rebuild":
            cluster.rebuild(arg)
        elif name == "switchover":
            cluster.switchover(arg)
        else:
            cluster.kill_and_fail_over()
    cluster.kill_and_fail_over()
