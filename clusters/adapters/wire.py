"""Pipelined probing: send a batch of statements on many PyMySQL connections, then read each reply.

Monitoring sends the same few SELECT/SHOW statements to every server every second, and on this project's
2-core target (1,000 servers in one tick) the client's CPU is the limit. PyMySQL (which still opens, authenticates
and encrypts every connection) reads a reply packet by packet through several Python calls each, about 70
packets for `SHOW ALL SLAVES STATUS` alone; reading the whole reply from the connection's buffered socket
and walking its packets here costs a third of that (docs/benchmarks.md). Only what a probe needs is read:
text-protocol result sets (column names and string values), OK packets between them, and ERR packets,
raised as PyMySQL's own exceptions. PyMySQL never asks for CLIENT_DEPRECATE_EOF, so result sets end with
EOF packets; payloads of 16 MiB and more arrive split, and are joined.

Sending before reading lets every server work at once from one thread: no thread per probe, no GIL
contention, and a tick waits for its slowest server rather than for the sum of them.

It uses a few of PyMySQL's connection internals (`_execute_command`, `_rfile`, `_sock`, `_read_timeout`,
`_force_close`), stable for years; pyproject.toml pins PyMySQL below the next minor release, and the unit
tests (hand-built replies) and the probe's integration tests (real servers) cover them.
"""

from __future__ import annotations

import struct

import pymysql
from pymysql.constants import COMMAND, CR

_U16 = struct.Struct("<H").unpack_from
_MAX_PAYLOAD = 0xFFFFFF
_SERVER_MORE_RESULTS_EXISTS = 0x0008
_READ_CHUNK = 65536

ResultSet = tuple[tuple[str, ...], list[list[str | None]]]  # column names, rows of text values (None = NULL)

# Column descriptor blocks seen before, by (column count, first descriptor packet): a probe's statements
# return the same columns every tick. Each entry: [(the whole block's bytes, column names)].
_BLOCKS: dict[tuple[int, bytes], list[tuple[bytes, tuple[str, ...]]]] = {}
_BLOCKS_MAX = 256


def send_query(conn: pymysql.connections.Connection, sql: bytes) -> None:
    """Send one COM_QUERY (several statements when the connection allows them); do not wait for the reply."""
    conn._execute_command(COMMAND.COM_QUERY, sql)


class _Reader:
    """Packets from the connection's buffered socket, read in large chunks and cut apart here."""

    __slots__ = ("_conn", "_rfile", "_buf", "_pos")

    def __init__(self, conn):
        self._conn = conn
        self._rfile = conn._rfile
        self._buf = b""
        self._pos = 0

    def _fill(self, need: int) -> None:
        while len(self._buf) - self._pos < need:
            try:
                chunk = self._rfile.read1(max(_READ_CHUNK, need))
            except OSError as exc:
                self._conn._force_close()
                raise pymysql.err.OperationalError(
                    CR.CR_SERVER_LOST, f"Lost connection to MySQL server during query ({exc})"
                ) from exc
            if not chunk:
                self._conn._force_close()
                raise pymysql.err.OperationalError(
                    CR.CR_SERVER_LOST, "Lost connection to MySQL server during query"
                )
            self._buf = self._buf[self._pos :] + chunk
            self._pos = 0

    def packet(self) -> bytes:
        buf, pos = self._buf, self._pos
        if pos + 4 <= len(buf):
            length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
            end = pos + 4 + length
            if end <= len(buf) and length < _MAX_PAYLOAD:  # the usual case: the packet is in the buffer
                self._pos = end
                return buf[pos + 4 : end]
        parts = []
        while True:
            self._fill(4)
            buf, pos = self._buf, self._pos
            length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
            self._fill(4 + length)
            buf, pos = self._buf, self._pos
            payload = buf[pos + 4 : pos + 4 + length]
            self._pos = pos + 4 + length
            if length < _MAX_PAYLOAD:
                if parts:
                    parts.append(payload)
                    return b"".join(parts)
                return payload
            parts.append(payload)

    def column_names(self, count: int) -> tuple[str, ...]:
        """Read `count` column descriptor packets; return the column names.

        A probe gets the same descriptors every tick: a block seen before (same count, same first
        packet) is recognised by comparing its bytes in the buffer, without walking its packets."""
        buf, pos = self._buf, self._pos
        if pos + 4 <= len(buf):
            first_end = pos + 4 + (buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16)
            for block, names in _BLOCKS.get((count, buf[pos:first_end]), ()):
                if buf.startswith(block, pos):
                    self._pos = pos + len(block)
                    return names
        start = pos
        packets = [self.packet() for _ in range(count)]
        names = tuple(_column_name(d) for d in packets)
        if self._buf is buf:  # the whole block came from one buffer: remember it
            block = buf[start : self._pos]
            key = (count, block[: 4 + len(packets[0])] if packets else b"")
            if len(_BLOCKS) >= _BLOCKS_MAX:
                _BLOCKS.clear()
            entries = _BLOCKS.setdefault(key, [])  # one lookup: another thread may clear the dict meanwhile
            entries.append((block, names))
            del entries[:-4]
        return names

    def leftover(self) -> int:
        return len(self._buf) - self._pos


def _lenenc_skip(data: bytes, i: int) -> int:
    first = data[i]
    if first < 251:
        return i + 1
    return i + (3 if first == 252 else 4 if first == 253 else 9)


def _ok_status(packet: bytes) -> int:
    i = _lenenc_skip(packet, 1)  # affected rows
    i = _lenenc_skip(packet, i)  # last insert id
    return _U16(packet, i)[0]


def _column_name(descriptor: bytes) -> str:
    i = 0
    for _ in range(4):  # catalog, schema, table, org_table
        first = descriptor[i]
        if first < 251:
            i += 1 + first
        else:
            length = int.from_bytes(descriptor[i + 1 : _lenenc_skip(descriptor, i)], "little")
            i = _lenenc_skip(descriptor, i) + length
    length = descriptor[i]
    return descriptor[i + 1 : i + 1 + length].decode("utf-8", "replace")


def _row(packet: bytes) -> list[str | None]:
    values: list[str | None] = []
    append = values.append
    i, end = 0, len(packet)
    while i < end:
        first = packet[i]
        if first < 251:
            start, i = i + 1, i + 1 + first
        elif first == 251:
            append(None)
            i += 1
            continue
        elif first == 252:
            start = i + 3
            i = start + (packet[i + 1] | packet[i + 2] << 8)
        elif first == 253:
            start = i + 4
            i = start + (packet[i + 1] | packet[i + 2] << 8 | packet[i + 3] << 16)
        else:
            start = i + 9
            i = start + int.from_bytes(packet[i + 1 : i + 9], "little")
        append(packet[start:i].decode("utf-8", "replace"))
    return values


def read_results(conn: pymysql.connections.Connection) -> list[ResultSet | None]:
    """Read the whole reply to one COM_QUERY: a result set (or None for a statement without one) per
    statement. A server error raises PyMySQL's exception for it; a broken connection is closed and raises
    OperationalError. The connection's read timeout applies to every read."""
    sock = conn._sock
    if sock is None:
        raise pymysql.err.InterfaceError(0, "the connection is closed")
    sock.settimeout(conn._read_timeout)
    reader = _Reader(conn)
    results: list[ResultSet | None] = []
    try:
        while True:
            head = reader.packet()
            first = head[0]
            if first == 0xFF:
                pymysql.err.raise_mysql_exception(head)
            if first == 0x00:
                results.append(None)
                if not _ok_status(head) & _SERVER_MORE_RESULTS_EXISTS:
                    break
                continue
            if first >= 251:
                raise pymysql.err.InternalError(f"protocol error: unexpected packet 0x{first:02x} in a reply")
            names = reader.column_names(first)
            eof = reader.packet()
            if eof[:1] != b"\xfe":
                raise pymysql.err.InternalError("protocol error: expected EOF after the column descriptions")
            rows = []
            while True:
                packet = reader.packet()
                if packet[0] == 0xFE and len(packet) < 9:
                    status = _U16(packet, 3)[0]
                    break
                if packet[0] == 0xFF:
                    pymysql.err.raise_mysql_exception(packet)
                rows.append(_row(packet))
            results.append((names, rows))
            if not status & _SERVER_MORE_RESULTS_EXISTS:
                break
    except pymysql.err.MySQLError as exc:
        # A statement's error ends the batch; anything unread makes the connection unusable.
        if not isinstance(exc, pymysql.err.OperationalError) or exc.args[0] != CR.CR_SERVER_LOST:
            conn._force_close()
        raise
    except (IndexError, struct.error) as exc:
        conn._force_close()
        raise pymysql.err.InternalError(f"protocol error: truncated packet ({exc})") from exc
    if reader.leftover():
        conn._force_close()
        raise pymysql.err.InternalError("protocol error: bytes after the end of the reply")
    return results


def as_dicts(result: ResultSet | None) -> list[dict]:
    if result is None:
        return []
    names, rows = result
    return [dict(zip(names, row, strict=False)) for row in rows]
