"""The channel: message framing, malformed and truncated frames, protocols over TCP loopback."""

import socket
import struct
import threading

import numpy as np
import pytest

from egan_jax.mpc import compare, ring
from egan_jax.mpc.channel import (
    ChannelError,
    TcpEndpoint,
    decode_message,
    encode_message,
    local_pair,
    tcp_listener,
)
from egan_jax.mpc.dealer import Dealer
from egan_jax.mpc.protocols import Party, run_two_party


def test_message_round_trip_for_every_dtype_and_rank():
    msgs = (
        np.arange(12, dtype=np.uint64).reshape(3, 4),
        np.array(7, dtype=np.int64),
        np.zeros((0, 5), np.uint8),
        np.linspace(0, 1, 5),
        np.arange(3, dtype=np.uint32),
    )
    back = decode_message(encode_message(msgs))
    for a, b in zip(msgs, back, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "mangle,match",
    [
        (lambda f: b"XXXX" + f[4:], "magic"),
        (lambda f: f[:-3], "truncated frame"),
        (lambda f: f[:12] + f[12:14], "truncated frame"),
        (lambda f: f[:4] + struct.pack("<Q", len(f) - 10) + f[12:] + b"ab", "trailing"),
        (lambda f: f[:16] + b"\x63" + f[17:], "dtype code"),
        # a shape whose element count wraps 64 bits must not slip through
        (
            lambda f: b"EGM1" + struct.pack("<QIBB2Q", 22, 1, 1, 2, 2**32, 2**32),
            "truncated message",
        ),
    ],
)
def test_malformed_frames_raise_channel_error(mangle, match):
    frame = encode_message((np.arange(6, dtype=np.uint64),))
    with pytest.raises(ChannelError, match=match):
        decode_message(mangle(frame))


def test_sending_an_unsupported_dtype_is_refused():
    a, _ = local_pair()
    with pytest.raises(ChannelError, match="dtype float32"):
        a.send(np.ones(3, np.float32))


def _run_over_tcp(fn, args0, args1, dealer):
    listener = tcp_listener()
    port = listener.getsockname()[1]
    out, errors = {}, []

    def body(pid, args):
        try:
            if pid == 0:
                ep = TcpEndpoint.accept(listener, timeout=20)
            else:
                ep = TcpEndpoint.connect("127.0.0.1", port, timeout=20)
            out[pid] = (fn(Party(pid, ep, dealer.endpoint(pid)), *args), ep.stats.copy())
            ep.close()
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=body, args=a) for a in ((0, args0), (1, args1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    listener.close()
    if errors:
        raise errors[0]
    return out


def test_protocols_run_unchanged_over_tcp_loopback():
    x = np.linspace(-4, 4, 300)
    shares = ring.share(ring.encode(x), ring.Prg(33))
    local = run_two_party(compare.relu, (shares[0],), (shares[1],), dealer=Dealer(34))
    tcp = _run_over_tcp(compare.relu, (shares[0],), (shares[1],), Dealer(34))
    for pid in (0, 1):
        np.testing.assert_array_equal(tcp[pid][0][0], local.outputs[pid][0])
        assert tcp[pid][1] == local.channel[pid]


@pytest.mark.parametrize(
    "raw,match",
    [
        (b"NOPE" + struct.pack("<Q", 4) + b"abcd", "magic"),
        (b"EGM1" + struct.pack("<Q", 100) + b"only ten b", "truncated frame payload"),
        (b"EGM1\x01", "truncated frame header"),
        (b"", "peer closed the connection"),
    ],
)
def test_tcp_endpoint_reports_malformed_or_truncated_input(raw, match):
    listener = tcp_listener()
    port = listener.getsockname()[1]

    def evil_peer():
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(raw)

    t = threading.Thread(target=evil_peer)
    t.start()
    ep = TcpEndpoint.accept(listener, timeout=10)
    t.join()
    with pytest.raises(ChannelError, match=match):
        ep.recv()
    ep.close()
    listener.close()
