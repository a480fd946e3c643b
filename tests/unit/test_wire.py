"""The pipelined reply reader (clusters.adapters.wire) on hand-built protocol bytes.

The probe's integration tests run it against real MariaDB servers; these cover what a healthy local
server rarely sends: replies split across reads, 16 MiB payloads, NULLs and long values, errors in the
middle of a batch, a connection lost half-way, and trailing bytes.
"""

from __future__ import annotations

import io

import pymysql
import pytest

from clusters.adapters import wire

pytestmark = pytest.mark.unit


def lenenc_str(value: bytes | None) -> bytes:
    if value is None:
        return b"\xfb"
    n = len(value)
    if n < 251:
        return bytes([n]) + value
    if n < 1 << 16:
        return b"\xfc" + n.to_bytes(2, "little") + value
    if n < 1 << 24:
        return b"\xfd" + n.to_bytes(3, "little") + value
    return b"\xfe" + n.to_bytes(8, "little") + value


def frame(payloads: list[bytes]) -> bytes:
    out, seq = b"", 1
    for payload in payloads:
        while True:
            chunk, payload = payload[:0xFFFFFF], payload[0xFFFFFF:]
            out += len(chunk).to_bytes(3, "little") + bytes([seq % 256]) + chunk
            seq += 1
            if len(chunk) < 0xFFFFFF:
                break
    return out


def column(name: str) -> bytes:
    return (
        lenenc_str(b"def")
        + lenenc_str(b"")
        + lenenc_str(b"")
        + lenenc_str(b"")
        + lenenc_str(name.encode())
        + lenenc_str(name.encode())
        + b"\x0c"
        + b"\x21\x00"
        + b"\x00\x01\x00\x00"
        + b"\xfd"
        + b"\x00\x00"
        + b"\x00"
        + b"\x00\x00"
    )


def eof(more: bool) -> bytes:
    return b"\xfe\x00\x00" + (0x0008 if more else 0x0002).to_bytes(2, "little")


def ok(more: bool) -> bytes:
    return b"\x00\x00\x00" + (0x000A if more else 0x0002).to_bytes(2, "little") + b"\x00\x00"


def result_set(names: list[str], rows: list[list[bytes | None]], more: bool) -> list[bytes]:
    return (
        [bytes([len(names)])]
        + [column(n) for n in names]
        + [eof(False)]
        + [b"".join(lenenc_str(v) for v in row) for row in rows]
        + [eof(more)]
    )


def error(code: int, message: str) -> bytes:
    return b"\xff" + code.to_bytes(2, "little") + b"#42000" + message.encode()


class ChunkedReader:
    """A buffered socket file that hands out at most `chunk` bytes per read1, like a slow network."""

    def __init__(self, data: bytes, chunk: int):
        self._data = io.BytesIO(data)
        self._chunk = chunk

    def read1(self, n: int) -> bytes:
        return self._data.read(min(n, self._chunk))


class FakeSocket:
    def settimeout(self, _value):
        pass


class FakeConnection:
    def __init__(self, data: bytes, chunk: int = 1 << 30):
        self._rfile = ChunkedReader(data, chunk)
        self._sock = FakeSocket()
        self._read_timeout = 1.0
        self.closed = False

    def _force_close(self):
        self.closed = True


@pytest.mark.parametrize("chunk", [1, 7, 1 << 30])
def test_a_batch_of_result_sets_and_ok_packets_whatever_the_read_sizes(chunk):
    reply = frame(
        result_set(["v"], [[b"10.11.19-MariaDB\x1f1\x1f0"]], more=True)
        + [ok(more=True)]
        + result_set(
            ["Slave_IO_Running", "Last_IO_Error", "Seconds_Behind_Master"],
            [[b"Yes", None, b"0"], [b"Connecting", b"x" * 300, None]],
            more=False,
        )
    )
    # Twice: the second time the column blocks come from the cache.
    for _ in range(2):
        conn = FakeConnection(reply, chunk)
        results = wire.read_results(conn)
        assert results[0] == (("v",), [["10.11.19-MariaDB\x1f1\x1f0"]])
        assert results[1] is None
        assert wire.as_dicts(results[2]) == [
            {"Slave_IO_Running": "Yes", "Last_IO_Error": None, "Seconds_Behind_Master": "0"},
            {"Slave_IO_Running": "Connecting", "Last_IO_Error": "x" * 300, "Seconds_Behind_Master": None},
        ]
        assert not conn.closed


def test_long_values_and_payloads_split_at_16_mib():
    big = b"g" * 0x1000000  # 16 MiB: one row of this needs two packets
    medium = b"m" * 70000
    reply = frame(result_set(["a", "b"], [[big, medium]], more=False))
    results = wire.read_results(FakeConnection(reply, 1 << 20))
    assert results[0][1] == [[big.decode(), medium.decode()]]


def test_same_first_column_different_block_is_not_confused():
    first = frame(result_set(["a", "b"], [[b"1", b"2"]], more=False))
    second = frame(result_set(["a", "c"], [[b"1", b"2"]], more=False))
    assert wire.read_results(FakeConnection(first))[0][0] == ("a", "b")
    assert wire.read_results(FakeConnection(second))[0][0] == ("a", "c")
    assert wire.read_results(FakeConnection(first))[0][0] == ("a", "b")


def test_an_error_in_the_middle_of_a_batch_raises_the_servers_error_and_closes():
    reply = frame(
        result_set(["v"], [[b"1"]], more=True)
        + [error(1227, "Access denied; you need the REPLICATION CLIENT privilege")]
    )
    conn = FakeConnection(reply)
    with pytest.raises(pymysql.err.OperationalError) as raised:
        wire.read_results(conn)
    assert raised.value.args[0] == 1227
    assert "REPLICATION CLIENT" in raised.value.args[1]
    assert conn.closed


def test_a_connection_lost_half_way_is_server_lost():
    reply = frame(result_set(["v"], [[b"1"]], more=False))
    conn = FakeConnection(reply[:-3])
    with pytest.raises(pymysql.err.OperationalError) as raised:
        wire.read_results(conn)
    assert raised.value.args[0] == 2013
    assert conn.closed


def test_bytes_after_the_reply_make_the_connection_unusable():
    reply = frame(result_set(["v"], [[b"1"]], more=False)) + b"\x01\x00\x00\x09\x00"
    conn = FakeConnection(reply)
    with pytest.raises(pymysql.err.InternalError, match="after the end"):
        wire.read_results(conn)
    assert conn.closed


def test_a_closed_connection_is_refused():
    conn = FakeConnection(b"")
    conn._sock = None
    with pytest.raises(pymysql.err.InterfaceError):
        wire.read_results(conn)
