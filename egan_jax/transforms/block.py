"""Keyed block-wise image transforms (AprilPyone & Kiya, APSIPA Trans. 2021).

An image ``[N, H, W, C]`` is cut into ``M × M`` blocks; each block is read as a vector of ``M·M·C``
values in row-major ``(row, column, channel)`` order. With one key, the *same* per-block operation is
applied to every block:

* pixel shuffling: ``out[k] = in[permutation[k]]`` inside each block;
* negative/positive: ``x → −x`` (float in [-1, 1]) or ``x → 255 − x`` (uint8) where ``mask[k]``;
* FFX: where ``mask[k]``, the 8-bit value ``v`` becomes ``table[v]`` (an FF1 table, see ``ff1.py``).

Key material is a frozen dataclass of numpy arrays made once per key by ``from_key`` on the host. The
array functions take ``(material, x)``; the material is static, so under ``jax.jit`` it is baked into
the compiled program as constants. They are implemented as one flat gather through a precomputed
full-image index map plus per-position elementwise operations (no 6-D transposes): the fastest exact
formulation measured by ``bench/bench_transforms.py``.

Float pixel grid: 8-bit value ``v`` corresponds to :func:`pixel_grid` ``[v]``, the float32 nearest to
``v / 127.5 − 1`` (computed as ``(2v − 255) / 255``, which is symmetric: ``−grid[v] == grid[255 − v]``,
so negative/positive maps grid values to grid values). FFX quantises float input to this grid at the
positions it selects, so it is exact for grid values and rounds anything else.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from egan_jax.errors import ConfigError, ShapeError
from egan_jax.keys import SecretKey, derive_mask, derive_permutation, derive_subkey
from egan_jax.transforms.common import (
    KeyMaterial,
    check_images,
    check_sizes,
    run_static,
)

FFX_CODES = {"decimal": 1000, "binary": 256}


def pixel_grid() -> np.ndarray:
    """float32 ``[256]``: the float value of 8-bit pixel ``v``, the float32 nearest to ``v/127.5 − 1``."""
    v = np.arange(256, dtype=np.float64)
    return ((2.0 * v - 255.0) / 255.0).astype(np.float32)


def decimal_grid() -> np.ndarray:
    """float32 ``[1000]``: the float value of decimal FFX code ``t``, nearest to ``t/499.5 − 1``."""
    t = np.arange(1000, dtype=np.float64)
    return ((2.0 * t - 999.0) / 999.0).astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class BlockShuffleMaterial(KeyMaterial):
    """One permutation of the ``M·M·C`` values of a block (int32 ``[M·M·C]``)."""

    block_size: int
    channels: int
    permutation: np.ndarray
    key_fingerprint: str
    near_miss_field = "permutation"

    @classmethod
    def from_key(cls, key: SecretKey, *, block_size: int, channels: int = 3):
        check_sizes(block_size, channels)
        n = block_size * block_size * channels
        perm = derive_permutation(key, f"block_shuffle/m{block_size}c{channels}", n)
        return cls(block_size, channels, perm, key.fingerprint)

    def index_map(self, height: int, width: int) -> np.ndarray:
        """int32 ``[H·W·C]``: flat source index of every flat output position of one image."""
        return block_index_map(self.permutation, self.block_size, self.channels, height, width)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class NegPosMaterial(KeyMaterial):
    """Positions of a block (bool ``[M·M·C]``) whose values are negated."""

    block_size: int
    channels: int
    mask: np.ndarray
    key_fingerprint: str
    near_miss_field = "mask"

    @classmethod
    def from_key(cls, key: SecretKey, *, block_size: int, channels: int = 3):
        check_sizes(block_size, channels)
        n = block_size * block_size * channels
        return cls(
            block_size,
            channels,
            derive_mask(key, f"np/m{block_size}c{channels}", n),
            key.fingerprint,
        )

    def position_mask(self, height: int, width: int) -> np.ndarray:
        """bool ``[H·W·C]``: the block mask tiled over a whole image."""
        return tile_positions(self.mask, self.block_size, self.channels, height, width)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class FfxMaterial(KeyMaterial):
    """FFX: selected block positions (bool ``[M·M·C]``) and the FF1 table (int32 ``[256]``)."""

    block_size: int
    channels: int
    variant: str
    mask: np.ndarray
    table: np.ndarray
    key_fingerprint: str
    near_miss_field = "mask"

    def __post_init__(self) -> None:
        if self.variant not in FFX_CODES:
            raise ConfigError(
                f"ffx_variant {self.variant!r} is unknown; valid: {sorted(FFX_CODES)}"
            )
        table = np.asarray(self.table)
        codes = FFX_CODES[self.variant]
        if (
            table.shape != (256,)
            or table.min() < 0
            or table.max() >= codes
            or np.unique(table).size != 256
        ):
            raise ConfigError(
                f"FFX table must be 256 distinct integers in [0, {codes}) for the {self.variant!r} "
                "variant; build it with egan_jax.transforms.ff1.ffx_table"
            )
        object.__setattr__(self, "table", table.astype(np.int32))
        super().__post_init__()

    @classmethod
    def from_key(
        cls, key: SecretKey, *, block_size: int, channels: int = 3, variant: str = "decimal"
    ):
        from egan_jax.transforms.ff1 import ffx_table

        check_sizes(block_size, channels)
        if variant not in FFX_CODES:
            raise ConfigError(f"ffx_variant {variant!r} is unknown; valid: {sorted(FFX_CODES)}")
        n = block_size * block_size * channels
        mask = derive_mask(key, f"ffx/select/m{block_size}c{channels}", n)
        table = ffx_table(derive_subkey(key, "ffx/aes"), variant=variant)
        return cls(block_size, channels, variant, mask, table, key.fingerprint)

    @property
    def codes(self) -> int:
        """Number of output codes: 1000 (decimal) or 256 (binary)."""
        return FFX_CODES[self.variant]

    @property
    def inverse_table(self) -> np.ndarray:
        """int32 ``[codes]``: ``inverse_table[table[v]] == v``; ``-1`` for codes no value maps to."""
        inverse = np.full(self.codes, -1, np.int32)
        inverse[self.table] = np.arange(256, dtype=np.int32)
        return inverse

    def code_grid(self) -> np.ndarray:
        """float32 value of every output code (decimal: ``t/499.5 − 1``; binary: the pixel grid)."""
        return decimal_grid() if self.variant == "decimal" else pixel_grid()

    def position_mask(self, height: int, width: int) -> np.ndarray:
        return tile_positions(self.mask, self.block_size, self.channels, height, width)


# --- index maps (host side, numpy) ------------------------------------------------------------
def block_index_map(
    permutation: np.ndarray, block_size: int, channels: int, height: int, width: int
) -> np.ndarray:
    """Flat source index (int32 ``[H·W·C]``) of each output position when every block is permuted."""
    m, c = block_size, channels
    src = np.asarray(permutation).reshape(m, m, c)  # source in-block index per output (i, j, ch)
    i_src = (src // (m * c))[None, :, None, :, :]
    j_src = ((src // c) % m)[None, :, None, :, :]
    c_src = (src % c)[None, :, None, :, :]
    block_row = np.arange(height // m)[:, None, None, None, None]
    block_col = np.arange(width // m)[None, None, :, None, None]
    rows = block_row * m + i_src
    cols = block_col * m + j_src
    return ((rows * width + cols) * c + c_src).reshape(-1).astype(np.int32)


def tile_positions(
    values: np.ndarray, block_size: int, channels: int, height: int, width: int
) -> np.ndarray:
    """Per-block values ``[M·M·C]`` tiled to every block of an image, flat ``[H·W·C]``."""
    m = block_size
    per_block = np.asarray(values).reshape(m, m, channels)
    return np.tile(per_block, (height // m, width // m, 1)).reshape(-1)


# --- array operations (trusted inputs; shared with the fused pipeline) -------------------------
def to_blocks(x: jax.Array, block_size: int) -> jax.Array:
    """``[N, H, W, C]`` → ``[N, H/M, W/M, M·M·C]``: each block's values in (row, column, channel)
    order, the order of the block transforms' in-block positions."""
    n, height, width, channels = x.shape
    m = block_size
    blocks = x.reshape(n, height // m, m, width // m, m, channels).transpose(0, 1, 3, 2, 4, 5)
    return blocks.reshape(n, height // m, width // m, m * m * channels)


def from_blocks(blocks: jax.Array, block_size: int) -> jax.Array:
    """The inverse of :func:`to_blocks`: ``[N, h, w, M·M·C]`` → ``[N, h·M, w·M, C]``."""
    n, h, w, size = blocks.shape
    m = block_size
    image = blocks.reshape(n, h, w, m, m, size // (m * m)).transpose(0, 1, 3, 2, 4, 5)
    return image.reshape(n, h * m, w * m, size // (m * m))


def gather_positions(x: jax.Array, index_map: np.ndarray) -> jax.Array:
    """``out.flat[q] = x.flat[index_map[q]]`` for every image of the batch."""
    flat = jnp.reshape(x, (x.shape[0], -1))
    # the map is a permutation of valid indices: no bounds handling needed
    return flat.at[:, index_map].get(mode="promise_in_bounds").reshape(x.shape)


def negate_positions(x: jax.Array, selected: np.ndarray) -> jax.Array:
    """Negative/positive at flat positions ``selected`` (bool ``[H·W·C]``); self-inverse."""
    selected = selected.reshape(x.shape[1:])
    if x.dtype == jnp.uint8:
        return jnp.where(selected, jnp.uint8(255) - x, x)
    # −x flips the sign bit (also of 0 and NaN): one XOR with a per-position constant, which
    # XLA:CPU vectorises better than a select between x and −x
    bits = {2: np.uint16, 4: np.uint32}[x.dtype.itemsize]
    sign = np.where(selected, bits(1) << bits(8 * x.dtype.itemsize - 1), bits(0)).astype(bits)
    flipped = jax.lax.bitcast_convert_type(x, bits) ^ sign
    return jax.lax.bitcast_convert_type(flipped, x.dtype)


_ROUNDING_BIAS = np.float32(2.0**23)  # v + 2^23 rounds v ∈ [0, 2^22) to an integer, half to even
_ROUNDING_BIAS_BITS = 0x4B000000  # the float32 bit pattern of 2^23


def _quantize(x: jax.Array, levels: int) -> jax.Array:
    """Nearest code of a float on the grid ``code/((levels−1)/2) − 1``, clipped to ``[0, levels)``.

    Equal, for every float32 input, to ``clip(round((x + 1)·scale), 0, levels − 1)`` (round half to
    even; NaN → 0, as XLA converts NaN to 0), written so that XLA:CPU keeps it vectorised: the clip
    is two compare-selects (no NaN-propagating min/max), and the rounding and the conversion are one
    add of 2^23 and a bit cast (for ``0 ≤ v < 2^22`` the sum's low mantissa bits are ``round(v)``).
    """
    scale = (levels - 1) / 2.0
    v = (x + 1.0) * scale
    v = jnp.where(v > 0, v, np.float32(0))  # also NaN → 0
    v = jnp.where(v < levels - 1, v, np.float32(levels - 1))
    bits = jax.lax.bitcast_convert_type(v + _ROUNDING_BIAS, jnp.int32)
    if levels <= 256:  # uint8 indices gather faster on CPU; the cast keeps the low byte = round(v)
        return bits.astype(jnp.uint8)
    return bits - _ROUNDING_BIAS_BITS


def _lookup(table: np.ndarray, index: jax.Array) -> jax.Array:
    """``table[index]`` for indices already known to be in range (clipped or uint8 into 256)."""
    return jnp.asarray(table).at[index].get(mode="promise_in_bounds")


def ffx_positions(material: FfxMaterial, x: jax.Array, selected: np.ndarray) -> jax.Array:
    """FFX at flat positions ``selected``. uint8 → uint16 (decimal) / uint8 (binary); float → float."""
    selected = selected.reshape(x.shape[1:])
    if x.dtype == jnp.uint8:
        out_dtype = jnp.uint16 if material.variant == "decimal" else jnp.uint8
        coded = _lookup(material.table.astype(out_dtype), x)
        return jnp.where(selected, coded, x.astype(out_dtype))
    values = material.code_grid()[material.table]
    return jnp.where(selected, _lookup(values, _quantize(x, 256)), x)


def ffx_inverse_positions(material: FfxMaterial, y: jax.Array, selected: np.ndarray) -> jax.Array:
    """Inverse FFX; invalid codes give NaN (float) or 0 (integer). See :func:`ffx_invalid`."""
    selected = selected.reshape(y.shape[1:])
    inverse = material.inverse_table
    if jnp.issubdtype(y.dtype, jnp.integer):
        values = np.maximum(inverse, 0).astype(np.uint8)
        decoded = _lookup(values, jnp.minimum(y.astype(jnp.int32), material.codes - 1))
        return jnp.where(selected, decoded, y.astype(jnp.uint8))
    values = np.where(inverse >= 0, pixel_grid()[np.maximum(inverse, 0)], np.nan).astype(np.float32)
    return jnp.where(selected, _lookup(values, _quantize(y, material.codes)), y)


def ffx_invalid(material: FfxMaterial, y: jax.Array, selected: np.ndarray) -> jax.Array:
    """bool, shape of ``y``: values :func:`ffx_inverse` cannot decode (not produced by ``ffx``)."""
    selected = selected.reshape(y.shape[1:])
    valid = jnp.asarray(material.inverse_table >= 0)
    if jnp.issubdtype(y.dtype, jnp.integer):
        codes = y.astype(jnp.int32)
        in_range = codes < material.codes
        bad = ~(in_range & valid[jnp.minimum(codes, material.codes - 1)])
        return jnp.where(selected, bad, codes > 255)
    return selected & ~valid[_quantize(y, material.codes)]


# --- public transforms ------------------------------------------------------------------------
_ANY_IMAGE = ("uint8", "uint16", "float16", "bfloat16", "float32")
_NP_DTYPES = ("uint8", "float16", "bfloat16", "float32")


def _shape_hw(x) -> tuple[int, int]:
    return x.shape[1], x.shape[2]


def _shuffle_core(material, x):
    return gather_positions(x, material.index_map(*_shape_hw(x)))


def _unshuffle_core(material, y):
    return gather_positions(y, np.argsort(material.index_map(*_shape_hw(y))).astype(np.int32))


def _negpos_core(material, x):
    return negate_positions(x, material.position_mask(*_shape_hw(x)))


def _ffx_core(material, x):
    return ffx_positions(material, x, material.position_mask(*_shape_hw(x)))


def _ffx_inverse_core(material, y):
    selected = material.position_mask(*_shape_hw(y))
    invalid = jnp.sum(ffx_invalid(material, y, selected), dtype=jnp.int32)
    return ffx_inverse_positions(material, y, selected), invalid


def block_shuffle(material: BlockShuffleMaterial, x: jax.Array) -> jax.Array:
    """Permute the ``M·M·C`` values of every block: ``out[k] = in[permutation[k]]``.

    Args:
      material: from :meth:`BlockShuffleMaterial.from_key`.
      x: ``[N, H, W, C]`` with ``M | H, W``; uint8, uint16 or float. Same shape and dtype out.
    """
    x = check_images(x, block_size=material.block_size, channels=material.channels,
                     what="block_shuffle", dtypes=_ANY_IMAGE)  # fmt: skip
    return run_static(_shuffle_core, material, x)


def block_unshuffle(material: BlockShuffleMaterial, y: jax.Array) -> jax.Array:
    """Exact inverse of :func:`block_shuffle`."""
    y = check_images(y, block_size=material.block_size, channels=material.channels,
                     what="block_unshuffle", dtypes=_ANY_IMAGE)  # fmt: skip
    return run_static(_unshuffle_core, material, y)


def negpos(material: NegPosMaterial, x: jax.Array) -> jax.Array:
    """Negative/positive: ``x → −x`` (float) or ``255 − x`` (uint8) at the key's positions.

    Self-inverse: ``negpos(m, negpos(m, x)) == x`` bit-exactly. Float grid values stay on the grid.
    """
    x = check_images(x, block_size=material.block_size, channels=material.channels,
                     what="negpos", dtypes=_NP_DTYPES)  # fmt: skip
    return run_static(_negpos_core, material, x)


negpos_inverse = negpos


def ffx(material: FfxMaterial, x: jax.Array) -> jax.Array:
    """FFX: at the key's positions the 8-bit value ``v`` becomes ``table[v]``.

    Args:
      material: from :meth:`FfxMaterial.from_key`.
      x: ``[N, H, W, C]``, uint8 or float32 in [-1, 1].

    Returns:
      uint8 in → uint16 (decimal, codes 0..999) or uint8 (binary). float32 in → float32: selected
      values are first *quantised* to the 8-bit grid ``v = round((x + 1)·127.5)``, then replaced by
      the code's float value (decimal ``t/499.5 − 1``, binary ``t/127.5 − 1``); other values pass
      unchanged. Exact on the grid: ``ffx_inverse(m, ffx(m, pixel_grid()[v])) == pixel_grid()[v]``.
    """
    x = check_images(x, block_size=material.block_size, channels=material.channels,
                     what="ffx", dtypes=("uint8", "float32"))  # fmt: skip
    return run_static(_ffx_core, material, x)


def ffx_inverse(material: FfxMaterial, y: jax.Array) -> jax.Array:
    """Inverse of :func:`ffx`: uint16/uint8 codes → uint8, float → float32 on the pixel grid.

    Values that are not codes of this key's table (possible only if ``y`` did not come from
    :func:`ffx` with this material) raise :class:`ShapeError` when ``y`` is concrete; under ``jit``
    they decode to NaN (float) or 0 (integer) — check with :func:`ffx_invalid` if needed.
    """
    dtypes = (
        ("uint16", "uint8", "float32") if material.variant == "decimal" else ("uint8", "float32")
    )
    y = check_images(y, block_size=material.block_size, channels=material.channels,
                     what="ffx_inverse", dtypes=dtypes)  # fmt: skip
    x, invalid = run_static(_ffx_inverse_core, material, y)
    if not isinstance(y, jax.core.Tracer) and int(invalid):
        raise ShapeError(
            f"ffx_inverse: {int(invalid)} values are not valid FFX codes of this key material "
            f"({material.variant} variant); the input was not produced by ffx() with this key or "
            "was modified afterwards. Under jit such values decode to NaN (float) / 0 (integer)"
        )
    return x
