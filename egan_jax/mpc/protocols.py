"""Running a two-party protocol: each party's context, and both parties in one process (two threads).

A protocol is a plain function ``fn(party, *own_args)``: it sees its own shares, its own half of the
dealer's material, and what arrives on ``party.channel``, nothing else. The same function runs
unchanged when the two parties are separate processes with a `TcpEndpoint` each.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from egan_jax.errors import ConfigError
from egan_jax.mpc import ring
from egan_jax.mpc.channel import ChannelError, ChannelStats, Endpoint, local_pair
from egan_jax.mpc.dealer import Dealer, DealerEndpoint, DealerStats


@dataclass
class Party:
    """One server's context: its id (0 or 1), channel end, dealer access and fixed-point format."""

    id: int
    channel: Endpoint
    dealer: DealerEndpoint
    frac_bits: int = ring.FRAC_BITS

    def __post_init__(self):
        if self.id not in (0, 1):
            raise ConfigError(f"party id must be 0 or 1, got {self.id}")
        if not 1 <= self.frac_bits <= 30:
            raise ConfigError(f"frac_bits must be in [1, 30], got {self.frac_bits}")

    def public(self, value) -> np.ndarray:
        """Encode a public real constant in this party's fixed-point format."""
        return ring.encode(value, self.frac_bits)

    def add_public(self, x: np.ndarray, value) -> np.ndarray:
        """Shared x plus a public real constant (party 0 adds the encoding)."""
        return ring.add_public(x, self.public(value), self.id)


def open_shares(party: Party, *shares: np.ndarray) -> tuple[np.ndarray, ...]:
    """Reveal shared values to both parties (one round): send ours, add the peer's."""
    received = party.channel.exchange(*(ring.as_ring(s) for s in shares))
    if len(received) != len(shares) or any(
        r.shape != s.shape for r, s in zip(received, shares, strict=True)
    ):
        raise ChannelError(
            f"the peer opened {[r.shape for r in received]}, this party {[s.shape for s in shares]}: "
            "the parties are out of step"
        )
    return tuple(ring.as_ring(s) + r for s, r in zip(shares, received, strict=True))


@dataclass
class TwoPartyRun:
    """Outputs and costs of one in-process two-party run."""

    outputs: tuple[Any, Any]
    channel: tuple[ChannelStats, ChannelStats]
    dealer: DealerStats
    seconds: float
    transcripts: tuple[list, list] | None = None
    sent: tuple[list, list] | None = None
    extra: dict = field(default_factory=dict)

    def cost(self) -> dict:
        """Online bytes (both directions, frame bytes), rounds and time; offline dealer cost."""
        return {
            "online_seconds": self.seconds,
            "bytes_sent_per_party": [c.bytes_sent for c in self.channel],
            "bytes_total": sum(c.bytes_sent for c in self.channel),
            "rounds": max(c.rounds for c in self.channel),
            "offline_seconds": self.dealer.seconds,
            "offline_bytes_per_party": list(self.dealer.bytes_to_party),
        }


def run_two_party(
    fn: Callable[..., Any],
    args0: tuple = (),
    args1: tuple = (),
    *,
    dealer: Dealer | None = None,
    frac_bits: int = ring.FRAC_BITS,
    record: bool = False,
    timeout: float = 120.0,
) -> TwoPartyRun:
    """Run ``fn(party, *args_i)`` for parties 0 and 1 in two threads over an in-process channel.

    ``record=True`` keeps each party's received (``transcripts``) and sent (``sent``) messages for
    privacy checks. The
    dealer's counters are read as deltas, so one dealer may serve several runs. An error in either
    party closes its channel end (the peer then fails too) and is re-raised here.
    """
    dealer = dealer if dealer is not None else Dealer()
    ends = local_pair(timeout=timeout, record=record)
    outputs: list[Any] = [None, None]
    errors: list[BaseException | None] = [None, None]
    before = DealerStats(**dealer.stats.as_dict())

    def body(pid: int, args: tuple) -> None:
        party = Party(pid, ends[pid], dealer.endpoint(pid), frac_bits)
        try:
            outputs[pid] = fn(party, *args)
        except BaseException as err:  # re-raised in the caller's thread below
            errors[pid] = err
            ends[pid].close()

    threads = [threading.Thread(target=body, args=(p, a)) for p, a in ((0, args0), (1, args1))]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    failures = [e for e in errors if e is not None]
    if failures:
        # prefer the root cause over the peer's "channel closed"
        failures.sort(key=lambda e: isinstance(e, ChannelError))
        raise failures[0]
    after = dealer.stats
    delta = DealerStats(
        seconds=after.seconds - before.seconds,
        items=after.items - before.items,
        bytes_to_party=[
            a - b for a, b in zip(after.bytes_to_party, before.bytes_to_party, strict=True)
        ],
        by_kind={k: v - before.by_kind.get(k, 0) for k, v in after.by_kind.items()},
    )
    return TwoPartyRun(
        outputs=(outputs[0], outputs[1]),
        channel=(ends[0].stats.copy(), ends[1].stats.copy()),
        dealer=delta,
        seconds=seconds,
        transcripts=(ends[0].transcript, ends[1].transcript) if record else None,
        sent=(ends[0].sent, ends[1].sent) if record else None,
    )


def run_shared(
    fn: Callable[..., Any],
    *values: np.ndarray,
    dealer: Dealer | None = None,
    frac_bits: int = ring.FRAC_BITS,
    seed: bytes | int | None = None,
    record: bool = False,
    raw: bool = False,
    **kwargs,
) -> tuple[Any, TwoPartyRun]:
    """Test/benchmark convenience: encode and share real ``values``, run ``fn(party, *shares,
    **kwargs)``, reconstruct and decode the output(s) (``raw=True``: reconstruct only, for integer
    outputs such as comparison bits). Returns (plaintext output, run)."""
    prg = ring.Prg(seed, domain=b"owner")
    finish = (lambda v: v) if raw else (lambda v: ring.decode(v, frac_bits))
    shares = [ring.share(ring.encode(v, frac_bits), prg) for v in values]
    run = run_two_party(
        lambda party, *xs: fn(party, *xs, **kwargs),
        tuple(s[0] for s in shares),
        tuple(s[1] for s in shares),
        dealer=dealer if dealer is not None else Dealer(seed),
        frac_bits=frac_bits,
        record=record,
    )
    out0, out1 = run.outputs
    if isinstance(out0, tuple):
        result = tuple(finish(ring.reconstruct(a, b)) for a, b in zip(out0, out1, strict=True))
    else:
        result = finish(ring.reconstruct(out0, out1))
    return result, run
