"""PyMySQL connections to managed servers: pinned addresses, short timeouts, TLS as the cluster asks.

Connections are reused across ticks within one worker process (a small pool keyed by address and user).
Errors are classified so that a refused connection, a timeout and an authentication failure stay
distinct (clusters.domain.probe outcomes); messages shown to tenants do not tell closed, filtered and
non-MySQL ports apart.
"""

from __future__ import annotations

import functools
import socket
import ssl
import threading
from dataclasses import dataclass

import pymysql
from pymysql import converters as pymysql_converters
from pymysql.connections import TEXT_TYPES, MySQLResult
from pymysql.constants import CLIENT, FIELD_TYPE
from pymysql.protocol import FieldDescriptorPacket

from clusters.domain import probe as outcomes
from clusters.domain.addresses import parse_address
from controlplane.netpolicy import pin_host

UNREACHABLE_MESSAGE = "cannot connect: the server does not answer as a MySQL/MariaDB server at this address"


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str


@dataclass(frozen=True)
class ConnectOptions:
    connect_timeout: float = 1.0
    read_timeout: float = 1.0
    tls: str = "preferred"  # disabled | preferred | verify
    tls_ca: str = ""


class ServerError(Exception):
    """A classified failure talking to a server; `outcome` is one of clusters.domain.probe's outcomes."""

    def __init__(self, outcome: str, message: str):
        super().__init__(message)
        self.outcome = outcome


def classify(exc: BaseException) -> ServerError:
    if isinstance(exc, ServerError):
        return exc
    if isinstance(exc, pymysql.err.OperationalError) and exc.args and exc.args[0] == 1045:
        return ServerError(outcomes.AUTH_FAILED, "access denied: check the user name and password")
    text = " ".join(str(a) for a in getattr(exc, "args", ())) + " " + repr(getattr(exc, "__cause__", ""))
    lowered = text.lower()
    if isinstance(exc, (socket.timeout, TimeoutError)) or "timed out" in lowered or "timeout" in lowered:
        return ServerError(outcomes.TIMEOUT, UNREACHABLE_MESSAGE)
    if "refused" in lowered:
        return ServerError(outcomes.REFUSED, UNREACHABLE_MESSAGE)
    if (
        isinstance(exc, pymysql.err.MySQLError)
        and exc.args
        and isinstance(exc.args[0], int)
        and exc.args[0] < 2000
    ):
        return ServerError(
            outcomes.ERROR, f"server error {exc.args[0]}: {exc.args[1] if len(exc.args) > 1 else ''}"
        )
    return ServerError(outcomes.ERROR, UNREACHABLE_MESSAGE)


def _ssl_options(options: ConnectOptions):
    if options.tls == "disabled":
        return None
    return _ssl_context(options.tls, options.tls_ca)


@functools.lru_cache(maxsize=64)
def _ssl_context(tls: str, tls_ca: str) -> ssl.SSLContext:
    """One context per TLS setting, shared by every connection (thread-safe): building one loads the
    system CA bundle, about 50 ms of CPU that a failover's fresh sessions must not pay each time."""
    if tls == "verify":
        return ssl.create_default_context(cadata=tls_ca or None)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # preferred: encrypted, not verified, so no CA bundle
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


# Parsed column descriptions by their raw packets. A probe sends the same statements every tick, and
# parsing ~70 column descriptors in pure Python was half of a probe's CPU (see docs/benchmarks.md).
_DESCRIPTIONS: dict[tuple, tuple] = {}
_DESCRIPTIONS_MAX = 512


class _CachedDescriptionResult(MySQLResult):
    def _get_descriptions(self):
        conn = self.connection
        raw = tuple(conn._read_packet().get_all_data() for _ in range(self.field_count))
        eof_packet = conn._read_packet()
        if not eof_packet.is_eof_packet():
            raise pymysql.err.InternalError("protocol error: expected EOF after the column descriptions")
        key = (conn.encoding, conn.use_unicode, raw)
        cached = _DESCRIPTIONS.get(key)
        if cached is None:
            cached = _parse_descriptions(conn, raw)
            if len(_DESCRIPTIONS) >= _DESCRIPTIONS_MAX:
                _DESCRIPTIONS.clear()
            _DESCRIPTIONS[key] = cached
        self.fields, self.converters, self.description = cached


def _parse_descriptions(conn, raw: tuple[bytes, ...]) -> tuple:
    """What PyMySQL's MySQLResult._get_descriptions computes, from the raw descriptor packets."""
    fields, converters, description = [], [], []
    for data in raw:
        field = FieldDescriptorPacket(data, conn.encoding)
        fields.append(field)
        description.append(field.description())
        encoding = None
        if conn.use_unicode:
            if field.type_code == FIELD_TYPE.JSON:
                encoding = conn.encoding
            elif field.type_code in TEXT_TYPES:
                encoding = None if field.charsetnr == 63 else conn.encoding
            else:
                encoding = "ascii"
        converter = conn.decoders.get(field.type_code)
        if converter is pymysql_converters.through:
            converter = None
        converters.append((encoding, converter))
    return fields, converters, tuple(description)


class _Connection(pymysql.connections.Connection):
    """PyMySQL's connection, reusing parsed column descriptions across identical result sets."""

    def _read_query_result(self, unbuffered=False):
        if unbuffered:
            return super()._read_query_result(unbuffered)
        self._result = None
        result = _CachedDescriptionResult(self)
        result.read()
        self._result = result
        if result.server_status is not None:
            self.server_status = result.server_status
        return result.affected_rows


def connect(
    address: str,
    credentials: Credentials,
    options: ConnectOptions = ConnectOptions(),
    *,
    multi_statements: bool = False,
) -> pymysql.connections.Connection:
    """Open a connection to the pinned, allowlisted address. Raises ServerError (or NotAllowed)."""
    parsed = parse_address(address)
    ip = pin_host(parsed.host)
    context = _ssl_options(options)
    try:
        return _Connection(
            host=ip,
            port=parsed.port,
            user=credentials.user,
            password=credentials.password,
            connect_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
            write_timeout=options.read_timeout,
            ssl=context,
            autocommit=True,
            charset="utf8mb4",
            client_flag=CLIENT.MULTI_STATEMENTS if multi_statements else 0,
            cursorclass=pymysql.cursors.DictCursor,
            program_name="dbpilot",
        )
    except Exception as exc:  # noqa: BLE001 - every failure is classified
        raise classify(exc) from exc


class ConnectionPool:
    """One reusable connection per (address, user, purpose) in this process; thread-safe checkout."""

    def __init__(self):
        self._idle: dict[tuple, list[pymysql.connections.Connection]] = {}
        self._lock = threading.Lock()

    def acquire(
        self, address: str, credentials: Credentials, options: ConnectOptions, *, multi_statements=False
    ):
        """(key, connection): an idle pooled one, or a new one."""
        pooled = self.take_idle(address, credentials, options, multi_statements=multi_statements)
        if pooled is not None:
            return pooled
        key = (address, credentials.user, credentials.password, options, multi_statements)
        return key, connect(address, credentials, options, multi_statements=multi_statements)

    def take_idle(
        self, address: str, credentials: Credentials, options: ConnectOptions, *, multi_statements=False
    ):
        """(key, connection) for an idle pooled connection, or None (without connecting)."""
        key = (address, credentials.user, credentials.password, options, multi_statements)
        with self._lock:
            stack = self._idle.get(key)
            conn = stack.pop() if stack else None
        return None if conn is None else (key, conn)

    def release(self, key, conn, *, broken: bool = False) -> None:
        if broken:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
            return
        with self._lock:
            self._idle.setdefault(key, []).append(conn)

    def discard_address(self, address: str) -> None:
        with self._lock:
            for key in [k for k in self._idle if k[0] == address]:
                for conn in self._idle.pop(key):
                    try:
                        conn.close()
                    except Exception:  # noqa: BLE001
                        pass


POOL = ConnectionPool()
