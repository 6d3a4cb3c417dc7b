"""Plain numpy reference implementations of the block transforms, written straight from the definition.

``*_blocks`` functions loop over images and blocks and treat each block as its ``M·M·C`` vector, the
way the papers describe the scheme; they share nothing with the JAX code except the material arrays,
so tests can check the JAX implementation against them. :func:`pipeline_per_image` is the numpy
baseline of the benchmark: one image at a time, vectorised within the image.
"""

from __future__ import annotations

import numpy as np

_GRID = ((2.0 * np.arange(256) - 255.0) / 255.0).astype(np.float32)
_DECIMAL_GRID = ((2.0 * np.arange(1000) - 999.0) / 999.0).astype(np.float32)


def _code_grid(variant: str) -> np.ndarray:
    return _DECIMAL_GRID if variant == "decimal" else _GRID


def _quantize(values: np.ndarray, levels: int) -> np.ndarray:
    scale = np.float32((levels - 1) / 2.0)
    return np.clip(np.round((values + np.float32(1.0)) * scale), 0, levels - 1).astype(np.int64)


def _for_each_block(x: np.ndarray, block_size: int, fn) -> np.ndarray:
    """Apply ``fn(vector [M·M·C]) -> vector`` to every block of every image, in a Python loop."""
    n, height, width, channels = x.shape
    m = block_size
    out = None
    for i in range(n):
        for by in range(0, height, m):
            for bx in range(0, width, m):
                vector = fn(x[i, by : by + m, bx : bx + m, :].reshape(-1))
                if out is None:
                    out = np.empty(x.shape, vector.dtype)
                out[i, by : by + m, bx : bx + m, :] = vector.reshape(m, m, channels)
    return out


def shuffle_blocks(x: np.ndarray, permutation: np.ndarray, block_size: int) -> np.ndarray:
    return _for_each_block(x, block_size, lambda b: b[permutation])


def unshuffle_blocks(y: np.ndarray, permutation: np.ndarray, block_size: int) -> np.ndarray:
    def undo(b):
        out = np.empty_like(b)
        out[permutation] = b
        return out

    return _for_each_block(y, block_size, undo)


def negpos_blocks(x: np.ndarray, mask: np.ndarray, block_size: int) -> np.ndarray:
    def flip(b):
        b = b.copy()
        b[mask] = (255 - b[mask]) if b.dtype == np.uint8 else -b[mask]
        return b

    return _for_each_block(x, block_size, flip)


def ffx_blocks(
    x: np.ndarray, mask: np.ndarray, table: np.ndarray, variant: str, block_size: int
) -> np.ndarray:
    def encrypt(b):
        if b.dtype == np.uint8:
            out = b.astype(np.uint16 if variant == "decimal" else np.uint8)
            out[mask] = table[b[mask]]
            return out
        out = b.copy()
        out[mask] = _code_grid(variant)[table[_quantize(b[mask], 256)]]
        return out

    return _for_each_block(x, block_size, encrypt)


def ffx_inverse_blocks(
    y: np.ndarray, mask: np.ndarray, table: np.ndarray, variant: str, block_size: int
) -> np.ndarray:
    codes = 1000 if variant == "decimal" else 256
    inverse = {int(t): v for v, t in enumerate(table)}

    def decrypt(b):
        if b.dtype != np.float32:
            out = b.astype(np.uint8)
            out[mask] = [inverse[int(t)] for t in b[mask]]
            return out
        out = b.copy()
        out[mask] = [_GRID[inverse[int(t)]] for t in _quantize(b[mask], codes)]
        return out

    return _for_each_block(y, block_size, decrypt)


def channel_shuffle_pixels(x: np.ndarray, permutation: np.ndarray) -> np.ndarray:
    return x[..., permutation]


def apply_steps(x: np.ndarray, materials, block_size: int) -> np.ndarray:
    """A pipeline's forward pass, step by step, with the per-block loops above."""
    for name, m in materials:
        if name == "shuffle":
            x = shuffle_blocks(x, m.permutation, block_size)
        elif name == "np":
            x = negpos_blocks(x, m.mask, block_size)
        elif name == "ffx":
            x = ffx_blocks(x, m.mask, m.table, m.variant, block_size)
        elif name == "channel":
            x = channel_shuffle_pixels(x, m.permutation)
        else:
            raise ValueError(f"reference has no step {name!r}")
    return x


# --- benchmark baseline: one image at a time, vectorised within the image ---------------------
def pipeline_per_image(x: np.ndarray, permutation, np_mask, ffx_mask, table, block_size: int):
    """Float shuffle → NP → FFX (decimal codes) with numpy, looping over the images of ``x``."""
    _, height, width, channels = x.shape
    m = block_size
    sign = np.where(np_mask, np.float32(-1), np.float32(1))
    values = _DECIMAL_GRID[table]
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        blocks = x[i].reshape(height // m, m, width // m, m, channels).transpose(0, 2, 1, 3, 4)
        blocks = blocks.reshape(height // m, width // m, m * m * channels)[..., permutation] * sign
        coded = values[_quantize(blocks, 256)]
        blocks = np.where(ffx_mask, coded, blocks)
        out[i] = (
            blocks.reshape(height // m, width // m, m, m, channels)
            .transpose(0, 2, 1, 3, 4)
            .reshape(height, width, channels)
        )
    return out
