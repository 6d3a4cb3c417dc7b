"""Block transforms (shuffle, negative/positive, FFX): exact inverses, reference agreement, errors."""

import functools
import hashlib

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egan_jax.errors import ConfigError, ShapeError
from egan_jax.keys import SecretKey
from egan_jax.transforms import (
    BlockShuffleMaterial,
    FfxMaterial,
    NegPosMaterial,
    block_shuffle,
    block_unshuffle,
    decimal_grid,
    ffx,
    ffx_inverse,
    near_miss,
    negpos,
    pixel_grid,
)
from egan_jax.transforms import reference as ref

FIXED_KEY = SecretKey.from_bytes(bytes(range(32)))
PROPERTY = settings(max_examples=15, deadline=None)
FEW = settings(max_examples=10, deadline=None)


@st.composite
def cases(draw):
    """(key, block size, images): uint8 or float32 on the pixel grid, small NHWC shapes."""
    key = SecretKey.from_bytes(draw(st.binary(min_size=32, max_size=32)))
    m = draw(st.sampled_from([1, 2, 4, 8]))
    shape = (draw(st.sampled_from([1, 2])), m * draw(st.sampled_from([1, 2])),
             m * draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 3])))  # fmt: skip
    values = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(0, 256, shape)
    as_float = draw(st.booleans())
    x = pixel_grid()[values] if as_float else values.astype(np.uint8)
    return key, m, x


def materials(key, m, c, variant="decimal"):
    return (
        BlockShuffleMaterial.from_key(key, block_size=m, channels=c),
        NegPosMaterial.from_key(key, block_size=m, channels=c),
        FfxMaterial.from_key(key, block_size=m, channels=c, variant=variant),
    )


@PROPERTY
@given(cases(), st.sampled_from(["decimal", "binary"]))
def test_inverse_of_forward_is_bit_exact(case, variant):
    key, m, x = case
    shuffle, negative, cipher = materials(key, m, x.shape[-1], variant)
    np.testing.assert_array_equal(
        np.asarray(block_unshuffle(shuffle, block_shuffle(shuffle, x))), x
    )
    np.testing.assert_array_equal(np.asarray(negpos(negative, negpos(negative, x))), x)
    encrypted = ffx(cipher, x)
    np.testing.assert_array_equal(np.asarray(ffx_inverse(cipher, encrypted)), x)
    assert np.asarray(ffx_inverse(cipher, encrypted)).dtype == x.dtype


@PROPERTY
@given(cases(), st.sampled_from(["decimal", "binary"]))
def test_jax_matches_per_block_numpy_reference(case, variant):
    key, m, x = case
    shuffle, negative, cipher = materials(key, m, x.shape[-1], variant)
    y = np.asarray(block_shuffle(shuffle, x))
    np.testing.assert_array_equal(y, ref.shuffle_blocks(x, shuffle.permutation, m))
    np.testing.assert_array_equal(
        np.asarray(block_unshuffle(shuffle, y)), ref.unshuffle_blocks(y, shuffle.permutation, m)
    )
    np.testing.assert_array_equal(
        np.asarray(negpos(negative, x)), ref.negpos_blocks(x, negative.mask, m)
    )
    z = np.asarray(ffx(cipher, x))
    expected = ref.ffx_blocks(x, cipher.mask, cipher.table, variant, m)
    assert z.dtype == expected.dtype
    np.testing.assert_array_equal(z, expected)
    np.testing.assert_array_equal(
        np.asarray(ffx_inverse(cipher, z)),
        ref.ffx_inverse_blocks(z, cipher.mask, cipher.table, variant, m),
    )


@PROPERTY
@given(cases())
def test_shuffle_only_permutes_values_within_each_block(case):
    key, m, x = case
    y = np.asarray(
        block_shuffle(BlockShuffleMaterial.from_key(key, block_size=m, channels=x.shape[-1]), x)
    )

    def sorted_blocks(a):
        n, h, w, c = a.shape
        blocks = a.reshape(n, h // m, m, w // m, m, c).transpose(0, 1, 3, 2, 4, 5)
        return np.sort(blocks.reshape(n, h // m, w // m, -1), axis=-1)

    np.testing.assert_array_equal(sorted_blocks(y), sorted_blocks(x))


@FEW
@given(cases())
def test_jit_vmap_and_eager_agree(case):
    key, m, x = case
    for material, fn in zip(
        materials(key, m, x.shape[-1]), (block_shuffle, negpos, ffx), strict=True
    ):
        eager = np.asarray(fn(material, x))
        jitted = np.asarray(jax.jit(functools.partial(fn, material))(x))
        stacked = np.stack([x, x[::-1]])  # vmap over an outer axis of batches
        mapped = np.asarray(jax.vmap(functools.partial(fn, material))(stacked))
        np.testing.assert_array_equal(jitted, eager)
        np.testing.assert_array_equal(mapped[0], eager)
        np.testing.assert_array_equal(mapped[1], np.asarray(fn(material, x[::-1])))


def test_ffx_output_ranges_and_untouched_positions():
    values = np.random.default_rng(1).integers(0, 256, (2, 8, 8, 3)).astype(np.uint8)
    for variant, dtype, codes in (("decimal", np.uint16, 1000), ("binary", np.uint8, 256)):
        cipher = FfxMaterial.from_key(FIXED_KEY, block_size=4, variant=variant)
        y = np.asarray(ffx(cipher, values))
        assert y.dtype == dtype and y.max() < codes
        selected = np.tile(cipher.mask.reshape(4, 4, 3), (2, 2, 1))
        np.testing.assert_array_equal(y[:, ~selected], values[:, ~selected])
        np.testing.assert_array_equal(y[:, selected], cipher.table[values[:, selected]])
        yf = np.asarray(ffx(cipher, pixel_grid()[values]))  # float path lands on the code grid
        np.testing.assert_array_equal(yf[:, selected], cipher.code_grid()[y[:, selected]])
        np.testing.assert_array_equal(yf[:, ~selected], pixel_grid()[values[:, ~selected]])
    assert decimal_grid()[0] == -1.0 and decimal_grid()[999] == 1.0


def test_ffx_quantises_off_grid_floats_to_the_nearest_grid_value():
    cipher = FfxMaterial.from_key(FIXED_KEY, block_size=2, channels=1)
    v = np.arange(16).reshape(1, 4, 4, 1)
    x = (pixel_grid()[v] + np.float32(0.3 / 127.5)).astype(np.float32)  # 0.3 of a step off-grid
    back = np.asarray(ffx_inverse(cipher, ffx(cipher, x)))
    selected = np.tile(cipher.mask.reshape(2, 2, 1), (2, 2, 1))
    np.testing.assert_array_equal(back[0][selected], pixel_grid()[v[0]][selected])
    np.testing.assert_array_equal(back[0][~selected], x[0][~selected])


def test_negpos_keeps_grid_values_on_the_grid():
    grid = pixel_grid()
    np.testing.assert_array_equal(-grid, grid[::-1])
    negative = NegPosMaterial.from_key(FIXED_KEY, block_size=1, channels=1)
    x = grid.reshape(1, 16, 16, 1)
    y = np.asarray(negpos(negative, x))
    assert np.isin(y, grid).all() and (y != x).any() == bool(negative.mask[0])


def test_ffx_inverse_rejects_invalid_codes_eagerly_and_gives_nan_under_jit():
    cipher = FfxMaterial.from_key(FIXED_KEY, block_size=1, channels=1)
    assert cipher.mask[0], "the fixed key selects its single position"
    unused = np.setdiff1d(np.arange(1000), cipher.table)[:4]
    codes = unused.astype(np.uint16).reshape(1, 2, 2, 1)
    with pytest.raises(ShapeError, match="not valid FFX codes"):
        ffx_inverse(cipher, codes)
    as_float = decimal_grid()[codes.astype(np.int64)]
    with pytest.raises(ShapeError, match="4 values are not valid"):
        ffx_inverse(cipher, as_float)
    assert np.isnan(np.asarray(jax.jit(functools.partial(ffx_inverse, cipher))(as_float))).all()


def gradient_image() -> np.ndarray:
    h, w, c = np.meshgrid(np.arange(8), np.arange(8), np.arange(3), indexing="ij")
    return ((h * 32 + w * 4 + c * 85) % 256).astype(np.uint8)[None]


GOLDEN = {  # sha256 of the transformed gradient image, fixed key bytes(range(32)), M = 4
    "shuffle": "adceab1b60deb2ddfd268a1faf26e759689ac12e619a99431c16054255284590",
    "np": "bc83be67393d44e7a6094385e5327eecf1917d18d0cea04cc04610ed8051ffda",
    "ffx_decimal": "3e659d009f528f3bb4977090ac1695ffff0851f969f7f73af53142c804ab040c",
    "ffx_binary": "bd8f2271918ba6f565539cf417edd823f2c1c99fb5ca8d1b7d261cea1eda6b53",
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_values_of_the_fixed_key(name):
    x = gradient_image()
    shuffle, negative, _ = materials(FIXED_KEY, 4, 3)
    if name == "shuffle":
        y = block_shuffle(shuffle, x)
    elif name == "np":
        y = negpos(negative, x)
    else:
        cipher = FfxMaterial.from_key(FIXED_KEY, block_size=4, variant=name.split("_")[1])
        y = ffx(cipher, x)
    y = np.ascontiguousarray(np.asarray(y))
    assert hashlib.sha256(y.dtype.str.encode() + y.tobytes()).hexdigest() == GOLDEN[name]


def test_wrong_and_near_miss_keys_give_different_material():
    wrong = SecretKey.from_bytes(bytes(range(1, 33)))
    for other in (wrong, FIXED_KEY.flip_bit(0), FIXED_KEY.flip_bit(255)):
        for mine, theirs in zip(materials(FIXED_KEY, 4, 3), materials(other, 4, 3), strict=True):
            assert mine != theirs
            assert mine.key_fingerprint != theirs.key_fingerprint
    assert materials(FIXED_KEY, 4, 3) == materials(SecretKey.from_bytes(bytes(range(32))), 4, 3)


def test_near_miss_material_differs_minimally():
    shuffle, negative, cipher = materials(FIXED_KEY, 4, 3)
    moved = near_miss(shuffle, 7).permutation
    assert (moved != shuffle.permutation).sum() == 2 and sorted(moved) == list(range(48))
    assert (near_miss(negative, 7).mask != negative.mask).sum() == 1
    assert (near_miss(cipher, 7).mask != cipher.mask).sum() == 1
    assert near_miss(shuffle, 7) == near_miss(shuffle, 7) != shuffle  # deterministic in rng_seed
    assert near_miss(shuffle, 7).key_fingerprint.endswith("~near")


def test_material_is_frozen_hashable_and_repr_hides_it():
    shuffle = BlockShuffleMaterial.from_key(FIXED_KEY, block_size=2, channels=3)
    text = repr(shuffle)
    assert FIXED_KEY.fingerprint in text and "permutation" not in text and "[" not in text
    with pytest.raises(ValueError):
        shuffle.permutation[0] = 1
    assert hash(shuffle) == hash(BlockShuffleMaterial.from_key(FIXED_KEY, block_size=2, channels=3))
    jitted = jax.jit(block_shuffle, static_argnums=0)  # usable as a static argument
    np.testing.assert_array_equal(np.asarray(jitted(shuffle, gradient_image()[:, :4, :4])),
                                  np.asarray(block_shuffle(shuffle, gradient_image()[:, :4, :4])))  # fmt: skip


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros((8, 8, 3), np.uint8), r"rank 4 \[N, H, W, C\].*shape \(8, 8, 3\)"),
        (np.zeros((1, 6, 8, 3), np.uint8), r"H=6, W=8, not both divisible by the block size M=4"),
        (np.zeros((1, 8, 8, 3), np.int32), r"dtype int32 is not supported; accepted: uint8"),
        (np.zeros((1, 8, 8, 3), np.float64), r"dtype float64 is not supported.*float32"),
        (np.full((1, 8, 8, 3), np.nan, np.float32), r"contains NaN \(192 values\)"),
        (
            np.zeros((1, 8, 8, 4), np.uint8),
            r"C=4 channels but the key material was made for channels=3",
        ),
    ],
)
def test_bad_inputs_raise_shape_errors_naming_problem_and_fix(x, message):
    for material, fn in zip(materials(FIXED_KEY, 4, 3), (block_shuffle, negpos, ffx), strict=True):
        if fn is block_shuffle and x.dtype == np.float64:
            continue  # shuffle accepts more dtypes; float64 is still rejected below via ffx
        with pytest.raises(ShapeError, match=message):
            fn(material, x)


def test_shape_errors_are_raised_at_trace_time_under_jit():
    shuffle = BlockShuffleMaterial.from_key(FIXED_KEY, block_size=4, channels=3)
    with pytest.raises(ShapeError, match="not both divisible"):
        jax.jit(functools.partial(block_shuffle, shuffle))(np.zeros((1, 6, 8, 3), np.float32))


def test_bad_material_parameters_raise_config_errors():
    with pytest.raises(ConfigError, match="block_size must be a positive integer"):
        BlockShuffleMaterial.from_key(FIXED_KEY, block_size=0)
    with pytest.raises(
        ConfigError, match=r"ffx_variant 'hex' is unknown; valid: \['binary', 'decimal'\]"
    ):
        FfxMaterial.from_key(FIXED_KEY, block_size=4, variant="hex")
    with pytest.raises(ConfigError, match="256 distinct integers"):
        FfxMaterial(4, 3, "binary", np.ones(48, bool), np.zeros(256, np.int32), "x")
