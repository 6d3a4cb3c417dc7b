"""Which code runs the element-wise ring arithmetic on shares: numpy (default) or jitted JAX.

The issue asks for local share arithmetic in JAX (uint64 with x64 enabled, jitted). The bilinear ring
ops always are (`ring._bilinear_jax`). The element-wise ones (`ring.add`, `sub`, `neg`, `mul_int`,
`add_public`, `truncate`, the element-wise Beaver product and its combination c + d·y + a·e) run in
numpy by default, because that measured faster at the secure DCGAN's sizes (see `ring`'s docstring
and ``python -m bench.bench_ring_ops``); ``set_local_backend("jax")`` or ``with local_backend("jax")``
runs them as the jitted uint64 functions below instead, numpy in and numpy out (shares come from and
go to the channel as numpy bytes), bit-identical to numpy (tests/test_mpc_elementwise.py).

The choice is process-wide, not per thread: both parties of `protocols.run_two_party` (two threads)
use the same one. Switch it between protocol runs, not during one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from egan_jax.errors import ConfigError

BACKENDS = ("numpy", "jax")

# process-wide on purpose: the two party threads must agree (a ContextVar would not reach them)
_current = {"backend": "numpy"}


def check_backend(name: str) -> str:
    """``name`` if it is a known backend, else a ConfigError naming the valid ones."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown local ring backend {name!r}; use one of {list(BACKENDS)}")
    return name


def get_local_backend() -> str:
    return _current["backend"]


def set_local_backend(name: str) -> None:
    """Run element-wise share arithmetic in ``"numpy"`` (default, faster here) or ``"jax"``."""
    _current["backend"] = check_backend(name)


@contextlib.contextmanager
def local_backend(name: str) -> Iterator[None]:
    """``set_local_backend(name)`` for the block, then restore the previous backend."""
    previous = get_local_backend()
    set_local_backend(name)
    try:
        yield
    finally:
        _current["backend"] = previous


def use_jax() -> bool:
    return _current["backend"] == "jax"


# ---- the jitted uint64 drop-ins (numpy in, numpy out) -------------------------------------------


@partial(jax.jit, static_argnames=("party_id", "bits"))
def _truncate_jit(x, party_id, bits):
    if party_id == 0:
        return (x.view(jnp.int64) >> jnp.int64(bits)).view(jnp.uint64)
    minus = (jnp.zeros_like(x) - x).view(jnp.int64) >> jnp.int64(bits)
    return jnp.zeros_like(x) - minus.view(jnp.uint64)


_add_jit = jax.jit(lambda x, y: x + y)
_sub_jit = jax.jit(lambda x, y: x - y)
_neg_jit = jax.jit(lambda x: jnp.zeros_like(x) - x)
_mul_jit = jax.jit(lambda x, y: x * y)
_beaver_mul_jit = jax.jit(lambda c, d, y, a, e: c + d * y + a * e)


def _call(fn, *args, **static) -> np.ndarray:
    with jax.enable_x64(True):
        out = fn(*(jnp.asarray(a, dtype=jnp.uint64) for a in args), **static)
        return np.array(out)  # a writable numpy copy, as every share


def add(x, y) -> np.ndarray:
    return _call(_add_jit, x, y)


def sub(x, y) -> np.ndarray:
    return _call(_sub_jit, x, y)


def neg(x) -> np.ndarray:
    return _call(_neg_jit, x)


def mul(x, y) -> np.ndarray:
    """Element-wise ring product (broadcasting), mod 2^64."""
    return _call(_mul_jit, x, y)


def truncate(x, party_id: int, bits: int) -> np.ndarray:
    """SecureML local truncation (see `ring.truncate`), jitted."""
    return _call(_truncate_jit, x, party_id=int(party_id), bits=int(bits))


def beaver_mul_combine(c, d, y, a, e) -> np.ndarray:
    """c + d·y + a·e mod 2^64 in one jitted function (the element-wise Beaver product's last step)."""
    return _call(_beaver_mul_jit, c, d, y, a, e)
