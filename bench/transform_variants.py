"""More formulations of the Kiya pipeline (shuffle → NP → FFX decimal) for bench_transforms.

Each factory takes ``(pipe, shape)`` and returns a function of the float32 batch (except
:func:`uint8_position_lut_factory`, which takes the same image as uint8 bytes). All are checked
bit-exact against the library by the benchmark before they are timed.

- (3c) the previous library code: flat gather, NP/FFX on the 4-D array, quantisation by
  ``clip(round(·))`` (NaN-propagating min/max and a saturating float → int conversion);
- (5) flat 2-D layout ``[N, H·W·C]`` for the whole pipeline and the compare-select / 2^23 rounding
  quantisation of the current library; (5b) the same with NP as an XOR of the sign bit (the
  library's NP since then); (5c) one packed int32 constant per position (source index, sign bit,
  FFX flag) instead of three constant arrays;
- (6) uint8 input: one byte gather, then one per-position table (NP, FFX and the byte → float
  conversion folded in) gives the float output directly (a different input type than the library's
  float path: the same image as bytes, 4× less data to read);
- (7) no gather for the shuffle: M·M·C static strided slices ``x6[:, :, r, :, s, c]`` stacked back;
- (8) the batch in two halves (one jit, concatenated): does XLA:CPU run them on both cores?
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from egan_jax.transforms import block
from egan_jax.transforms.block import pixel_grid, tile_positions
from egan_jax.transforms.compose import apply_plan


def plain_quantize(x, levels):
    """``clip(round((x + 1)·scale), 0, levels − 1)`` as the previous library wrote it."""
    scale = (levels - 1) / 2.0
    index_dtype = jnp.uint8 if levels <= 256 else jnp.int32
    return jnp.clip(jnp.round((x + 1.0) * scale), 0, levels - 1).astype(index_dtype)


def _lookup(table, index):
    return jnp.asarray(table).at[index].get(mode="promise_in_bounds")


def _ffx_parts(pipe):
    (_, _), (_, _), (_, cipher) = pipe.materials
    values = cipher.code_grid()[cipher.table].astype(np.float32)
    inverse = cipher.inverse_table
    inv_values = np.where(inverse >= 0, pixel_grid()[np.maximum(inverse, 0)], np.nan)
    return cipher, values, inv_values.astype(np.float32)


def previous_library_factory(pipe, shape):
    """(3c) the library before the quantisation change, forward and inverse."""
    _, h, w, _ = shape
    plan = pipe.plan(h, w)
    (_, _, negate), (_, _, selected) = plan.ops
    cipher, values, inv_values = _ffx_parts(pipe)
    inverse_map = np.argsort(plan.index_map).astype(np.int32)
    negate_src, selected_src = negate[inverse_map], selected[inverse_map]
    valid = np.asarray(cipher.inverse_table >= 0)

    def forward(x):
        y = block.gather_positions(x, plan.index_map)
        y = block.negate_positions(y, negate)
        sel = selected.reshape(x.shape[1:])
        return jnp.where(sel, _lookup(values, plain_quantize(y, 256)), y)

    def inverse(y):
        x = block.gather_positions(y, inverse_map)
        sel = selected_src.reshape(y.shape[1:])
        codes = plain_quantize(x, 1000)
        invalid = jnp.sum(sel & ~jnp.asarray(valid)[codes], dtype=jnp.int32)
        x = jnp.where(sel, _lookup(inv_values, codes), x)
        return block.negate_positions(x, negate_src), invalid

    return forward, inverse


def flat2d_factory(pipe, shape, *, xor_sign: bool = False):
    """(5) / (5b) everything on ``[N, H·W·C]``, reshaped once at the end."""
    _, h, w, _ = shape
    plan = pipe.plan(h, w)
    (_, _, negate), (_, _, selected) = plan.ops
    _, values, _ = _ffx_parts(pipe)
    sign_bits = np.where(negate, np.uint32(0x80000000), np.uint32(0))

    def forward(x):
        flat = x.reshape(x.shape[0], -1).at[:, plan.index_map].get(mode="promise_in_bounds")
        if xor_sign:
            bits = jax.lax.bitcast_convert_type(flat, jnp.uint32) ^ sign_bits
            flat = jax.lax.bitcast_convert_type(bits, jnp.float32)
        else:
            flat = jnp.where(negate, -flat, flat)
        coded = _lookup(values, block._quantize(flat, 256))
        return jnp.where(selected, coded, flat).reshape(x.shape)

    return forward


def uint8_position_lut_factory(pipe, shape):
    """(6) bytes in: ``out[q] = table[position(q), byte[index_map[q]]]``, floats out."""
    _, h, w, c = shape
    plan = pipe.plan(h, w)
    (_, shuffle), (_, negative), (_, cipher) = pipe.materials
    m = shuffle.block_size
    k = m * m * c
    grid = pixel_grid()
    byte = np.arange(256)
    negated = np.where(negative.mask[:, None], 255 - byte[None, :], byte[None, :])  # [k, 256]
    coded = cipher.code_grid()[cipher.table][negated]
    table = np.where(cipher.mask[:, None], coded, grid[negated]).astype(np.float32).reshape(-1)
    offsets = tile_positions(np.arange(k, dtype=np.int32) * 256, m, c, h, w)

    def forward(x_bytes):
        flat = x_bytes.reshape(x_bytes.shape[0], -1)
        gathered = flat.at[:, plan.index_map].get(mode="promise_in_bounds").astype(jnp.int32)
        return _lookup(table, gathered + offsets).reshape(x_bytes.shape)

    return forward


def strided_slices_factory(pipe, shape):
    """(7) the shuffle as M·M·C static strided slices, stacked back; NP/FFX as in the library."""
    _, h, w, c = shape
    plan = pipe.plan(h, w)
    (_, shuffle), _, _ = pipe.materials
    m = shuffle.block_size
    src = np.asarray(shuffle.permutation).reshape(m, m * c)  # source in-block index per output

    def forward(x):
        n = x.shape[0]
        x6 = x.reshape(n, h // m, m, w // m, m, c)
        rows = []
        for i in range(m):
            parts = []
            for jc in range(m * c):
                s = int(src[i, jc])
                parts.append(x6[:, :, s // (m * c), :, (s // c) % m, s % c])
            rows.append(jnp.stack(parts, axis=-1))  # [n, h/m, w/m, m·c]
        y = jnp.stack(rows, axis=2).reshape(x.shape)
        return apply_plan(type(plan)(None, plan.ops), y)

    return forward


def batch_halves_factory(pipe, shape):
    """(8) the library's fused pass on two halves of the batch, concatenated, in one jit."""
    _, h, w, _ = shape
    plan = pipe.plan(h, w)

    def forward(x):
        halves = jnp.split(x, 2) if x.shape[0] % 2 == 0 else [x]
        return jnp.concatenate([apply_plan(plan, part) for part in halves])

    return forward


def packed_control_factory(pipe, shape):
    """(5c) one int32 constant per output position: source index | NP sign bit | FFX flag bit."""
    _, h, w, _ = shape
    plan = pipe.plan(h, w)
    (_, _, negate), (_, _, selected) = plan.ops
    _, values, _ = _ffx_parts(pipe)
    assert plan.index_map.max() < 2**30
    control = (
        plan.index_map.astype(np.uint32)
        | np.where(negate, np.uint32(1 << 31), np.uint32(0))
        | np.where(selected, np.uint32(1 << 30), np.uint32(0))
    )

    def forward(x):
        ctrl = jnp.asarray(control)
        index = (ctrl & np.uint32(2**30 - 1)).astype(jnp.int32)
        flat = x.reshape(x.shape[0], -1).at[:, index].get(mode="promise_in_bounds")
        bits = jax.lax.bitcast_convert_type(flat, jnp.uint32) ^ (ctrl & np.uint32(1 << 31))
        flat = jax.lax.bitcast_convert_type(bits, jnp.float32)
        coded = _lookup(values, block._quantize(flat, 256))
        return jnp.where((ctrl & np.uint32(1 << 30)) != 0, coded, flat).reshape(x.shape)

    return forward
