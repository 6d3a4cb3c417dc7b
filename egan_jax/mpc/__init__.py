"""Two-party secure computation on additive shares in Z_2^64 (the protocol layer of LP-GAN).

Threat model: two semi-honest, non-colluding servers S0 and S1, plus a trusted dealer that only hands
out input-independent correlated randomness. Each server sees its own shares, its half of the
dealer's material, and the masked values the other server opens: uniform ring elements (or uniform
bits) whatever the secrets are. What leaks: array shapes, the sequence of protocol calls, and the
public parameters (fixed-point format, breakpoints, iteration counts).

Layers: `ring` (fixed point, shares, local ops), `channel` (framed messages, byte/round counters,
in-process and TCP), `dealer` (Beaver/square/AND triples, daBits), `protocols` (party context,
running both parties), then `arith`, `compare`, `nonlinear`.
"""

from egan_jax.mpc import arith, compare, nonlinear, ring
from egan_jax.mpc.channel import (
    ChannelError,
    ChannelStats,
    Endpoint,
    LocalEndpoint,
    TcpEndpoint,
    local_pair,
    tcp_listener,
)
from egan_jax.mpc.dealer import Dealer, DealerEndpoint, ProtocolError
from egan_jax.mpc.elementwise import get_local_backend, local_backend, set_local_backend
from egan_jax.mpc.protocols import Party, TwoPartyRun, open_shares, run_shared, run_two_party
from egan_jax.mpc.ring import FRAC_BITS, Bilinear, Prg, decode, encode, reconstruct, share

__all__ = [
    "FRAC_BITS",
    "Bilinear",
    "ChannelError",
    "ChannelStats",
    "Dealer",
    "DealerEndpoint",
    "Endpoint",
    "LocalEndpoint",
    "Party",
    "Prg",
    "ProtocolError",
    "TcpEndpoint",
    "TwoPartyRun",
    "arith",
    "compare",
    "decode",
    "encode",
    "get_local_backend",
    "local_backend",
    "local_pair",
    "nonlinear",
    "open_shares",
    "reconstruct",
    "ring",
    "run_shared",
    "run_two_party",
    "set_local_backend",
    "share",
    "tcp_listener",
]
