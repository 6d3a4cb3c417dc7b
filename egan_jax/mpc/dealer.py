"""Trusted dealer (the helper party / offline phase): correlated randomness for the online protocols.

Everything comes from one AES-256-CTR generator (`ring.Prg`) seeded by the caller, so a seed fixes every
triple. Material kinds (each item is split into party 0's half and party 1's half):

- ``beaver``: a, b uniform of the op's input shapes, c = op(a, b), all additively shared, for any
  bilinear ring op (element-wise, matmul, conv, transposed conv).
- ``square``: a uniform, c = a^2, additively shared.
- ``and``: boolean triples on 64-bit words, a, b uniform, c = a & b, XOR-shared.
- ``dabit``: a uniform bit r, XOR-shared (uint8) and additively shared (uint64).
- ``powers``: a, b, c uniform and a^2, b·a, b^2, c·a, all additively shared: the masks for the
  powers t, t^2 .. t^5 of one value with three openings in all (`nonlinear.powers5`).
- ``square_mul``: a, b uniform (two shapes), a^2 and a·b (broadcast), additively shared: x^2 and
  then x·y with one opening of x (`nonlinear.batch_norm_normalize`).

The parties ask in protocol order; item k goes to both parties' k-th request, which must name the same
material (else ProtocolError: the parties are out of step). ``precompute(plan)`` runs the offline phase
ahead of time from the plan recorded by an earlier run, so that online timings exclude it
(``record_plan=False`` stops recording, for long runs). Items are dropped once both halves are out. Offline cost
(seconds, bytes each party would receive) is counted in ``stats``; a deployment could send party 0
only a PRG seed instead of its half (not done here, so the bytes are an upper bound).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from egan_jax.errors import EganError
from egan_jax.mpc import ring
from egan_jax.mpc.ring import Bilinear, Prg

MaterialKey = tuple


class ProtocolError(EganError):
    """The two parties' protocol calls do not match (different material requested or wrong shapes)."""


@dataclass
class DealerStats:
    seconds: float = 0.0
    items: int = 0
    bytes_to_party: list[int] = field(default_factory=lambda: [0, 0])
    by_kind: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "seconds": self.seconds,
            "items": self.items,
            "bytes_to_party": list(self.bytes_to_party),
            "by_kind": dict(self.by_kind),
        }


def _wire_bytes(kind: str, v: np.ndarray) -> int:
    """Bytes to ship ``v``: bit arrays (uint8 0/1) travel packed."""
    return -(-v.size // 8) if v.dtype == np.uint8 else int(v.nbytes)


def _xor_share(x: np.ndarray, prg: Prg) -> tuple[np.ndarray, np.ndarray]:
    x0 = prg.ring(x.shape) if x.dtype == np.uint64 else prg.bits(x.shape)
    return x0, x ^ x0


class Dealer:
    """Generates and hands out correlated randomness; thread-safe for the two party threads."""

    def __init__(self, seed: bytes | int | None = None, *, record_plan: bool = True):
        self._prg = Prg(seed, domain=b"dealer")
        self._lock = threading.Lock()
        self._items: dict[int, list] = {}  # item index -> [key, half0, half1], until both fetched
        self._generated = 0
        self._next = [0, 0]
        self._record_plan = record_plan
        self.plan: list[MaterialKey] = []
        self.stats = DealerStats()

    def __repr__(self) -> str:
        return f"Dealer(items={self.stats.items}, <secret seed>)"

    def endpoint(self, party_id: int) -> DealerEndpoint:
        return DealerEndpoint(self, party_id)

    def precompute(self, plan: list[MaterialKey]) -> None:
        """Offline phase: generate the material for ``plan`` (a previous run's ``dealer.plan``)."""
        with self._lock:
            for key in plan:
                self._items[self._generated] = self._generate(key)
                self._generated += 1

    def request(self, party_id: int, key: MaterialKey) -> tuple[np.ndarray, ...]:
        with self._lock:
            k = self._next[party_id]
            self._next[party_id] += 1
            if k == self._generated:
                self._items[k] = self._generate(key)
                self._generated += 1
            item = self._items[k]
            if item[0] != key:
                raise ProtocolError(
                    f"party {party_id} asked the dealer for {key[0]} {key[1:]} as item {k}, but "
                    f"that item is {item[0][0]} {item[0][1:]}: the parties' protocol calls differ"
                )
            half, item[1 + party_id] = item[1 + party_id], None
            if item[1] is None and item[2] is None:
                del self._items[k]
            return half

    def _generate(self, key: MaterialKey) -> list:
        start = time.perf_counter()
        kind = key[0]
        prg = self._prg
        if kind == "beaver":
            op, x_shape, y_shape = key[1:]
            a, b = prg.ring(x_shape), prg.ring(y_shape)
            c = op(a, b)
            (a0, a1), (b0, b1), (c0, c1) = (ring.share(v, prg) for v in (a, b, c))
            halves = (a0, b0, c0), (a1, b1, c1)
        elif kind == "square":
            a = prg.ring(key[1])
            (a0, a1), (c0, c1) = ring.share(a, prg), ring.share(a * a, prg)
            halves = (a0, c0), (a1, c1)
        elif kind == "and":
            a, b = prg.ring(key[1]), prg.ring(key[1])
            (a0, a1), (b0, b1), (c0, c1) = (_xor_share(v, prg) for v in (a, b, a & b))
            halves = (a0, b0, c0), (a1, b1, c1)
        elif kind == "and_private":
            a, b = prg.ring(key[1]), prg.ring(key[1])
            r0, r1 = _xor_share(a & b, prg)
            halves = (a, r0), (b, r1)
        elif kind == "powers":
            a, b, c = (prg.ring(key[1]) for _ in range(3))
            items = [ring.share(v, prg) for v in (a, a * a, b, b * a, b * b, c, c * a)]
            halves = tuple(h[0] for h in items), tuple(h[1] for h in items)
        elif kind == "square_mul":
            x_shape, y_shape = key[1]
            a, b = prg.ring(x_shape), prg.ring(y_shape)
            items = [ring.share(v, prg) for v in (a, a * a, b, a * b)]
            halves = tuple(h[0] for h in items), tuple(h[1] for h in items)
        elif kind == "dabit":
            r = prg.bits(key[1])
            (rb0, rb1), (ra0, ra1) = _xor_share(r, prg), ring.share(r.astype(np.uint64), prg)
            halves = (rb0, ra0), (rb1, ra1)
        else:
            raise ProtocolError(f"unknown dealer material {kind!r}")
        st = self.stats
        st.seconds += time.perf_counter() - start
        st.items += 1
        st.by_kind[kind] = st.by_kind.get(kind, 0) + 1
        for p in (0, 1):
            st.bytes_to_party[p] += sum(_wire_bytes(kind, v) for v in halves[p])
        if self._record_plan:
            self.plan.append(key)
        return [key, halves[0], halves[1]]


class DealerEndpoint:
    """One party's access to the dealer: it only ever receives its own half of each item."""

    def __init__(self, dealer: Dealer, party_id: int):
        self._dealer, self.party_id = dealer, party_id

    def beaver(self, op: Bilinear, x_shape, y_shape) -> tuple[np.ndarray, ...]:
        """(a_i, b_i, c_i): this party's shares of a Beaver triple for ``op``."""
        return self._dealer.request(self.party_id, ("beaver", op, tuple(x_shape), tuple(y_shape)))

    def square(self, shape) -> tuple[np.ndarray, ...]:
        """(a_i, c_i) with c = a^2."""
        return self._dealer.request(self.party_id, ("square", tuple(shape)))

    def and_triple(self, shape) -> tuple[np.ndarray, ...]:
        """(a_i, b_i, c_i) XOR shares of 64-bit words with c = a & b."""
        return self._dealer.request(self.party_id, ("and", tuple(shape)))

    def and_private(self, shape) -> tuple[np.ndarray, ...]:
        """Party 0: (a, r0); party 1: (b, r1); uint64 words with r0 ^ r1 = a & b."""
        return self._dealer.request(self.party_id, ("and_private", tuple(shape)))

    def powers(self, shape) -> tuple[np.ndarray, ...]:
        """(a_i, (a^2)_i, b_i, (b·a)_i, (b^2)_i, c_i, (c·a)_i): masks for t, t^2 and t^4."""
        return self._dealer.request(self.party_id, ("powers", tuple(shape)))

    def square_mul(self, x_shape, y_shape) -> tuple[np.ndarray, ...]:
        """(a_i, (a^2)_i, b_i, (a·b)_i): one mask a of x for x^2 and for x·y (y masked by b)."""
        return self._dealer.request(self.party_id, ("square_mul", (tuple(x_shape), tuple(y_shape))))

    def dabit(self, shape) -> tuple[np.ndarray, ...]:
        """(r_bool_i uint8, r_arith_i uint64): a random bit shared both ways."""
        return self._dealer.request(self.party_id, ("dabit", tuple(shape)))
