"""The one channel between the two servers: framed messages of arrays, with byte and round counters.

A message is a tuple of numpy arrays. On the wire (and through the in-process queue, so that both
paths run the same checks) it is one frame:

    magic b"EGM1" | payload length: u64 little-endian | payload
    payload = count: u32 | per array: dtype code u8, ndim u8, ndim × u64 dims | the arrays' bytes

A malformed or truncated frame raises ChannelError naming what is wrong. ``rounds`` counts the times an
endpoint waited for the peer after having sent (one network latency each, since both servers send
their masked values at once in every protocol here).
"""

from __future__ import annotations

import math
import queue
import socket
import struct
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields

import numpy as np

from egan_jax.errors import EganError

MAGIC = b"EGM1"
_HEADER = struct.Struct("<4sQ")
_MAX_PAYLOAD = 1 << 34
_MAX_NDIM = 8
_DTYPES = {1: np.uint64, 2: np.uint8, 3: np.int64, 4: np.float64, 5: np.uint32}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}


class ChannelError(EganError):
    """A message could not be sent or received: malformed, truncated, timed out, or the peer left."""


def encode_message(arrays: tuple[np.ndarray, ...]) -> bytes:
    """Arrays -> one frame (header + payload)."""
    parts = [struct.pack("<I", len(arrays))]
    blobs = []
    for a in arrays:
        a = np.ascontiguousarray(a)
        code = _CODES.get(a.dtype)
        if code is None or a.ndim > _MAX_NDIM:
            raise ChannelError(
                f"cannot send an array of dtype {a.dtype} and rank {a.ndim}; "
                f"send one of {sorted(str(np.dtype(d)) for d in _DTYPES.values())}, rank <= {_MAX_NDIM}"
            )
        parts.append(struct.pack(f"<BB{a.ndim}Q", code, a.ndim, *a.shape))
        blobs.append(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    payload = b"".join(parts + blobs)
    return _HEADER.pack(MAGIC, len(payload)) + payload


def parse_header(header: bytes) -> int:
    """Frame header -> payload length; ChannelError if it is not one of ours."""
    if len(header) != _HEADER.size:
        raise ChannelError(f"truncated frame header: {len(header)} of {_HEADER.size} bytes")
    magic, length = _HEADER.unpack(header)
    if magic != MAGIC:
        raise ChannelError(
            f"malformed frame: magic {magic!r}, expected {MAGIC!r}; wrong peer or port"
        )
    if length > _MAX_PAYLOAD:
        raise ChannelError(f"malformed frame: payload length {length} exceeds {_MAX_PAYLOAD}")
    return length


def decode_payload(payload: bytes) -> tuple[np.ndarray, ...]:
    """Payload -> arrays; ChannelError if the layout does not add up exactly."""
    view = memoryview(payload)
    try:
        (count,) = struct.unpack_from("<I", view, 0)
        offset, specs = 4, []
        for _ in range(count):
            code, ndim = struct.unpack_from("<BB", view, offset)
            offset += 2
            if code not in _DTYPES or ndim > _MAX_NDIM:
                raise ChannelError(f"malformed message: dtype code {code}, rank {ndim}")
            shape = struct.unpack_from(f"<{ndim}Q", view, offset)
            offset += 8 * ndim
            specs.append((np.dtype(_DTYPES[code]).newbyteorder("<"), shape))
    except struct.error as err:
        raise ChannelError(f"malformed message: header cut short ({err})") from None
    arrays = []
    for dtype, shape in specs:
        nbytes = math.prod(shape) * dtype.itemsize  # Python ints: a hostile shape cannot wrap
        if offset + nbytes > len(view):
            raise ChannelError(
                f"truncated message: array {shape} of {dtype} needs {nbytes} bytes, "
                f"{len(view) - offset} left"
            )
        data = np.frombuffer(view[offset : offset + nbytes], dtype=dtype).reshape(shape)
        arrays.append(data.astype(dtype.newbyteorder("="), copy=False))
        offset += nbytes
    if offset != len(view):
        raise ChannelError(f"malformed message: {len(view) - offset} trailing bytes")
    return tuple(arrays)


def decode_message(frame: bytes) -> tuple[np.ndarray, ...]:
    length = parse_header(frame[: _HEADER.size])
    payload = frame[_HEADER.size :]
    if len(payload) != length:
        raise ChannelError(f"truncated frame: payload {len(payload)} of {length} bytes")
    return decode_payload(payload)


@dataclass
class ChannelStats:
    """Counters of one endpoint. ``bytes_*`` are frame bytes (what a socket carries)."""

    bytes_sent: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    rounds: int = 0

    def __sub__(self, other: ChannelStats) -> ChannelStats:
        return ChannelStats(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))

    def copy(self) -> ChannelStats:
        return ChannelStats(**asdict(self))

    def as_dict(self) -> dict:
        return asdict(self)


class Endpoint(ABC):
    """One party's end of the channel. ``record=True`` keeps every received message (``transcript``,
    the party's view besides its own shares and dealer material) and every sent one (``sent``)."""

    def __init__(self, *, record: bool = False):
        self.stats = ChannelStats()
        self.transcript: list[tuple[np.ndarray, ...]] | None = [] if record else None
        self.sent: list[tuple[np.ndarray, ...]] | None = [] if record else None
        self._last = "none"

    @abstractmethod
    def _send_frame(self, frame: bytes) -> None: ...

    @abstractmethod
    def _recv_frame(self) -> bytes: ...

    @abstractmethod
    def close(self) -> None: ...

    def send(self, *arrays: np.ndarray) -> None:
        frame = encode_message(arrays)
        self._send_frame(frame)
        if self.sent is not None:
            self.sent.append(tuple(np.array(a) for a in arrays))
        self.stats.bytes_sent += len(frame)
        self.stats.messages_sent += 1
        self._last = "send"

    def recv(self) -> tuple[np.ndarray, ...]:
        if self._last != "recv":
            self.stats.rounds += 1
        self._last = "recv"
        frame = self._recv_frame()
        arrays = decode_message(frame)
        self.stats.bytes_received += len(frame)
        self.stats.messages_received += 1
        if self.transcript is not None:
            self.transcript.append(tuple(np.array(a) for a in arrays))
        return arrays

    def exchange(self, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        """Send ours, receive the peer's: one round when both parties call it."""
        self.send(*arrays)
        return self.recv()


class LocalEndpoint(Endpoint):
    """In-process endpoint: frames travel through queues (the parties run in two threads)."""

    def __init__(self, inbox: queue.Queue, outbox: queue.Queue, *, timeout: float, record: bool):
        super().__init__(record=record)
        self._inbox, self._outbox, self._timeout = inbox, outbox, timeout

    def _send_frame(self, frame: bytes) -> None:
        self._outbox.put(frame)

    def _recv_frame(self) -> bytes:
        try:
            frame = self._inbox.get(timeout=self._timeout)
        except queue.Empty:
            raise ChannelError(
                f"no message from the peer within {self._timeout:g} s; the parties are out of step "
                "(different protocol calls) or the peer is stuck"
            ) from None
        if frame is None:
            raise ChannelError("the peer closed the channel (it stopped, probably on an error)")
        return frame

    def close(self) -> None:
        self._outbox.put(None)


def local_pair(
    *, timeout: float = 120.0, record: bool = False
) -> tuple[LocalEndpoint, LocalEndpoint]:
    """Two connected in-process endpoints (party 0's, party 1's)."""
    a_to_b, b_to_a = queue.Queue(), queue.Queue()
    return (
        LocalEndpoint(b_to_a, a_to_b, timeout=timeout, record=record),
        LocalEndpoint(a_to_b, b_to_a, timeout=timeout, record=record),
    )


class TcpEndpoint(Endpoint):
    """Endpoint over a connected TCP socket (length-prefixed frames)."""

    def __init__(self, sock: socket.socket, *, timeout: float = 120.0, record: bool = False):
        super().__init__(record=record)
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock

    @classmethod
    def connect(cls, host: str, port: int, *, timeout: float = 120.0, record: bool = False):
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as err:
            raise ChannelError(f"cannot connect to the peer at {host}:{port}: {err}") from None
        return cls(sock, timeout=timeout, record=record)

    @classmethod
    def accept(cls, listener: socket.socket, *, timeout: float = 120.0, record: bool = False):
        listener.settimeout(timeout)
        try:
            sock, _ = listener.accept()
        except OSError as err:
            raise ChannelError(f"no peer connected within {timeout:g} s: {err}") from None
        return cls(sock, timeout=timeout, record=record)

    def _send_frame(self, frame: bytes) -> None:
        try:
            self._sock.sendall(frame)
        except OSError as err:
            raise ChannelError(f"sending to the peer failed: {err}") from None

    def _read_exact(self, n: int, what: str) -> bytes:
        chunks, got = [], 0
        while got < n:
            try:
                chunk = self._sock.recv(min(n - got, 1 << 20))
            except OSError as err:
                raise ChannelError(f"receiving {what} failed: {err}") from None
            if not chunk:
                if got == 0 and what == "frame header":
                    raise ChannelError("the peer closed the connection")
                raise ChannelError(f"truncated {what}: {got} of {n} bytes, then the peer closed")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _recv_frame(self) -> bytes:
        header = self._read_exact(_HEADER.size, "frame header")
        length = parse_header(header)
        return header + self._read_exact(length, "frame payload")

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


def tcp_listener(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket (port 0: any free port; read it from ``getsockname()[1]``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1)
    return sock
