"""The fast formulation of the transforms is exact: the same bits as the plain formulas.

``block._quantize`` (compare-select clip + rounding by adding 2^23) must equal
``clip(round((x + 1)·scale), 0, levels − 1)`` for every float32 input, including the rounding
boundaries, out-of-range values, ±0, ±inf and NaN; and the fused pipeline on off-grid floats must
equal the step-by-step numpy reference.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from egan_jax.keys import SecretKey
from egan_jax.transforms import Pipeline, pixel_grid
from egan_jax.transforms import reference as ref
from egan_jax.transforms.block import _quantize, negate_positions

FIXED_KEY = SecretKey.from_bytes(bytes(range(32)))


def plain_quantize(x, levels):
    """The straightforward formula (the library's previous code)."""
    scale = (levels - 1) / 2.0
    return jnp.clip(jnp.round((x + 1.0) * scale), 0, levels - 1).astype(jnp.int32)


def hard_floats(levels: int) -> np.ndarray:
    """Every rounding boundary ``(k + ½)/scale − 1`` and its float neighbours, the grid, specials."""
    scale = (levels - 1) / 2.0
    k = np.arange(-2, levels + 2, dtype=np.float64)
    centres = np.concatenate([(k + 0.5) / scale - 1.0, k / scale - 1.0]).astype(np.float32)
    up, down = np.nextafter(centres, np.float32(np.inf)), np.nextafter(centres, np.float32(-np.inf))
    specials = np.array(
        [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e30, -1e30, 1e-40, -1e-40, 3.0, -3.0],
        np.float32,
    )
    rng = np.random.default_rng(0)
    noise = rng.uniform(-1.5, 1.5, 20_000).astype(np.float32)
    bits = rng.integers(0, 2**32, 20_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    return np.concatenate([centres, up, down, specials, noise, bits])


@pytest.mark.parametrize("levels", [256, 1000])
def test_fast_quantize_equals_clip_round_for_every_kind_of_float(levels):
    x = jnp.asarray(hard_floats(levels))
    fast = jax.jit(lambda v: _quantize(v, levels).astype(jnp.int32))(x)
    plain = jax.jit(lambda v: plain_quantize(v, levels))(x)
    np.testing.assert_array_equal(np.asarray(fast), np.asarray(plain))
    assert int(fast.min()) == 0 and int(fast.max()) == levels - 1


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_sign_bit_negation_equals_minus_x_bit_for_bit(dtype):
    values = np.array([0.0, -0.0, 1.5, -2.0, np.nan, np.inf, -np.inf, 1e-40], np.float32)
    x = jnp.asarray(np.tile(values, (3, 1))).astype(dtype)
    selected = np.array([True, True, True, True, True, True, False, True])
    got = jax.jit(lambda v: negate_positions(v, selected))(x)
    expected = jnp.where(selected, -x, x)
    bits = np.uint16 if x.dtype.itemsize == 2 else np.uint32
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(np.asarray(got).view(bits), np.asarray(expected).view(bits))


@pytest.mark.parametrize("variant", ["decimal", "binary"])
def test_pipeline_on_off_grid_and_out_of_range_floats_equals_the_numpy_steps(variant):
    pipe = Pipeline.from_config(
        {"block": 4, "steps": ["shuffle", "np", "ffx"], "ffx_variant": variant}, FIXED_KEY
    )
    values = hard_floats(256)
    values = values[np.isfinite(values) & (np.abs(values) < 4)]  # the numpy reference needs finite
    x = np.resize(values, (2, 16, 16, 3)).astype(np.float32)
    expected = ref.apply_steps(x, pipe.materials, 4)
    got = np.asarray(jax.jit(pipe.forward)(x))
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_pipeline_on_uint8_and_grid_floats_round_trips_bit_exactly():
    pipe = Pipeline.from_config({"block": 2, "steps": ["shuffle", "np", "ffx"]}, FIXED_KEY)
    v = np.random.default_rng(1).integers(0, 256, (3, 8, 8, 3))
    for x in (v.astype(np.uint8), pixel_grid()[v]):
        y = pipe.forward(x)
        np.testing.assert_array_equal(np.asarray(y), ref.apply_steps(x, pipe.materials, 2))
        np.testing.assert_array_equal(np.asarray(pipe.inverse(y)), x)
