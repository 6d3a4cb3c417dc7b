"""Throughput of the Kiya pipeline (block shuffle → negative/positive → FFX decimal, M = 4), float32.

Side by side in one run, per shape (256×32×32×3 and 64×128×128×3):
- formulations of the same transform, each checked bit-exact against the library before timing:
  (1) straightforward reshape/6-D transpose with the material as traced arguments,
  (2) the same with the material as compile-time constants,
  (3) the library default: one flat gather through a precomputed full-image index map, then
      per-position elementwise NP/FFX (egan_jax.transforms.Pipeline, jitted),
  (3b) flat gather + one combined NP/FFX lookup table per block position,
  (4) no 6-D transpose: [N, H/M, M, W/M, M·C] and per-row takes along the merged axis;
  (3c, 5–8) in bench/transform_variants.py: the previous library code, a flat 2-D layout, uint8
  input with one per-position table, static strided slices, the batch in two halves;
- the inverse (library and (2));
- (a) a jitted device copy of the same array (bandwidth bound), (b) the numpy reference one image at
  a time (vectorised within the image), (c) one DCGAN train step (egan_jax.families.dcgan, width
  64) on the same batch.
Min of N runs after warm-up. Writes bench/results/transforms.json.
Run: `.venv/bin/python -m bench.bench_transforms [--quick]`.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from bench import transform_variants as tv
from bench.common import time_min, write_result
from egan_jax.keys import SecretKey
from egan_jax.transforms import Pipeline, decimal_grid, pixel_grid
from egan_jax.transforms import reference as ref
from egan_jax.transforms.block import tile_positions

M = 4
SHAPES = ((256, 32, 32, 3), (64, 128, 128, 3))
CONFIG = {"block": M, "steps": ["shuffle", "np", "ffx"], "ffx_variant": "decimal"}


def _quantize(x, levels):
    return jnp.clip(jnp.round((x + 1.0) * ((levels - 1) / 2.0)), 0, levels - 1).astype(jnp.int32)


def _to_blocks(x):
    n, h, w, c = x.shape
    return (
        x.reshape(n, h // M, M, w // M, M, c)
        .transpose(0, 1, 3, 2, 4, 5)
        .reshape(n, h // M, w // M, -1)
    )


def _from_blocks(b, shape):
    n, h, w, c = shape
    return b.reshape(n, h // M, w // M, M, M, c).transpose(0, 1, 3, 2, 4, 5).reshape(shape)


def transpose_forward(x, perm, sign, ffx_mask, values):
    b = jnp.take(_to_blocks(x), perm, axis=-1) * sign
    return _from_blocks(jnp.where(ffx_mask, jnp.asarray(values)[_quantize(b, 256)], b), x.shape)


def transpose_inverse(y, inv_perm, sign, ffx_mask, inv_values):
    b = _to_blocks(y)
    b = jnp.where(ffx_mask, jnp.asarray(inv_values)[_quantize(b, 1000)], b) * sign
    return _from_blocks(jnp.take(b, inv_perm, axis=-1), y.shape)


def material_arrays(pipe):
    (_, shuffle), (_, negative), (_, cipher) = pipe.materials
    sign = np.where(negative.mask, np.float32(-1), np.float32(1))
    values = decimal_grid()[cipher.table]
    inverse = cipher.inverse_table
    inv_values = np.where(inverse >= 0, pixel_grid()[np.maximum(inverse, 0)], np.nan).astype(
        np.float32
    )
    return shuffle.permutation, sign, cipher.mask, values, inv_values


def lut_forward_factory(pipe, shape):
    """(3b): gather, then one [M·M·C, 256] table (NP folded into FFX) indexed by position and value."""
    perm, sign, ffx_mask, values, _ = material_arrays(pipe)
    _, h, w, c = shape
    k = perm.size
    table = values[
        np.clip(np.round((sign[:, None] * pixel_grid()[None, :] + 1) * 127.5), 0, 255).astype(int)
    ]
    index_map = pipe.plan(h, w).index_map
    offsets = tile_positions(np.arange(k) * 256, M, c, h, w).reshape(h, w, c)
    sign_full = tile_positions(sign, M, c, h, w).reshape(h, w, c)
    ffx_full = tile_positions(ffx_mask, M, c, h, w).reshape(h, w, c)
    table = table.reshape(-1).astype(np.float32)

    def forward(x):
        y = jnp.take(x.reshape(x.shape[0], -1), index_map, axis=1).reshape(x.shape)
        coded = jnp.asarray(table)[offsets + _quantize(y, 256)]
        return jnp.where(ffx_full, coded, y * sign_full)

    return forward


def take_forward_factory(pipe, shape):
    """(3a): the library's formulation with plain jnp.take and int32 table indices (its first version)."""
    perm, sign, ffx_mask, values, _ = material_arrays(pipe)
    _, h, w, c = shape
    index_map = pipe.plan(h, w).index_map
    negate = tile_positions(sign < 0, M, c, h, w).reshape(h, w, c)
    ffx_full = tile_positions(ffx_mask, M, c, h, w).reshape(h, w, c)

    def forward(x):
        y = jnp.take(x.reshape(x.shape[0], -1), index_map, axis=1).reshape(x.shape)
        y = jnp.where(negate, -y, y)
        return jnp.where(ffx_full, jnp.asarray(values)[_quantize(y, 256)], y)

    return forward


def interleaved_min(fns: dict, arg, *, rounds: int, warmup: int = 2) -> dict:
    """Min wall time (s) of each ``fn(arg)``, the functions timed in turn each round.

    Interleaving makes background load hit every variant alike (a shared 2-core machine).
    """
    for fn in fns.values():
        for _ in range(warmup):
            jax.block_until_ready(fn(arg))
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(arg))
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def rows_forward_factory(pipe, shape):
    """(4): view [N, H/M, M, W/M, M·C]; each output row = selects over takes from the input rows."""
    perm, sign, ffx_mask, values, _ = material_arrays(pipe)
    _, h, w, c = shape
    src_row = (perm // (M * c)).reshape(M, M * c)
    src_col = (perm % (M * c)).reshape(M, M * c)
    sign_rows = sign.reshape(M, M * c)[:, None, :]
    ffx_rows = ffx_mask.reshape(M, M * c)[:, None, :]

    def forward(x):
        n = x.shape[0]
        v = x.reshape(n, h // M, M, w // M, M * c)
        rows = []
        for out_row in range(M):
            acc = None
            for in_row in range(M):
                hit = src_row[out_row] == in_row
                if hit.any():
                    taken = jnp.take(v[:, :, in_row], np.where(hit, src_col[out_row], 0), axis=-1)
                    acc = taken if acc is None else jnp.where(hit, taken, acc)
            acc = acc * sign_rows[out_row]
            rows.append(jnp.where(ffx_rows[out_row], jnp.asarray(values)[_quantize(acc, 256)], acc))
        return jnp.stack(rows, axis=2).reshape(x.shape)

    return forward


def dcgan_step_factory(shape):
    """A jitted DCGAN train step (the library's family, width 64) on a batch of this shape."""
    if importlib.util.find_spec("egan_jax.families.dcgan") is None:
        return None
    from flax import nnx

    from egan_jax.config import apply_overrides
    from egan_jax.families.dcgan import FAMILY

    n, h, _, c = shape
    config = apply_overrides(
        FAMILY.default_config(),
        [f"data.image_size={h}", f"data.channels={c}", f"train.batch_size={n}"],
    )
    models = FAMILY.build_models(config, nnx.Rngs(0))
    optimizers = FAMILY.build_optimizers(config, models)
    step = nnx.jit(FAMILY.make_train_step(config))
    batch = {"images": jax.random.uniform(jax.random.key(1), shape, minval=-1.0, maxval=1.0)}
    keys = iter(jax.random.split(jax.random.key(2), 1000))
    return lambda: jax.block_until_ready(step(models, optimizers, batch, next(keys)))


def bench_shape(shape, *, repeats: int, step_repeats: int, with_step: bool) -> dict:
    key = SecretKey.from_bytes(bytes(range(32)))
    pipe = Pipeline.from_config(CONFIG, key)
    perm, sign, ffx_mask, values, inv_values = material_arrays(pipe)
    rng = np.random.default_rng(0)
    x_bytes_np = rng.integers(0, 256, shape).astype(np.uint8)
    x_np = pixel_grid()[x_bytes_np]
    x = jax.device_put(x_np)
    expected = np.asarray(jax.jit(pipe.forward)(x))

    consts = dict(sign=sign, ffx_mask=ffx_mask, values=values)
    previous_forward, previous_inverse = tv.previous_library_factory(pipe, shape)
    forward = {
        "1_transpose_traced": functools.partial(
            jax.jit(transpose_forward), perm=perm, **{k: jnp.asarray(v) for k, v in consts.items()}
        ),
        "2_transpose_static": jax.jit(functools.partial(transpose_forward, perm=perm, **consts)),
        "3_flat_gather_library": jax.jit(pipe.forward),
        "3a_flat_gather_take_int32": jax.jit(take_forward_factory(pipe, shape)),
        "3b_flat_gather_position_lut": jax.jit(lut_forward_factory(pipe, shape)),
        "4_merged_axis_rows": jax.jit(rows_forward_factory(pipe, shape)),
        "3c_previous_library": jax.jit(previous_forward),
        "5_flat2d_fast_quantize": jax.jit(tv.flat2d_factory(pipe, shape)),
        "5b_flat2d_xor_sign": jax.jit(tv.flat2d_factory(pipe, shape, xor_sign=True)),
        "5c_packed_control_word": jax.jit(tv.packed_control_factory(pipe, shape)),
        "7_static_strided_slices": jax.jit(tv.strided_slices_factory(pipe, shape)),
        "8_batch_halves": jax.jit(tv.batch_halves_factory(pipe, shape)),
    }
    inv_consts = dict(
        inv_perm=np.argsort(perm), sign=sign, ffx_mask=ffx_mask, inv_values=inv_values
    )
    inverse = {
        "2_transpose_static": jax.jit(functools.partial(transpose_inverse, **inv_consts)),
        "3_flat_gather_library": jax.jit(pipe.inverse),
        "3c_previous_library": jax.jit(lambda a: previous_inverse(a)[0]),
    }
    exact = {
        name: bool(np.array_equal(np.asarray(fn(x)), expected)) for name, fn in forward.items()
    }
    # (6) takes the same image as bytes: exact if it equals the library on the grid floats
    x_bytes = jax.device_put(x_bytes_np)
    from_bytes = jax.jit(tv.uint8_position_lut_factory(pipe, shape))
    exact["6_uint8_in_position_lut"] = bool(
        np.array_equal(np.asarray(from_bytes(x_bytes)), expected)
    )
    y = jax.device_put(expected)
    exact.update(
        {f"inverse/{n}": bool(np.array_equal(np.asarray(f(y)), x_np)) for n, f in inverse.items()}
    )
    numpy_out = ref.pipeline_per_image(
        x_np, perm, sign < 0, ffx_mask, pipe.materials[2][1].table, M
    )
    exact["numpy_per_image"] = bool(np.array_equal(numpy_out, expected))

    forward["library_eager_with_checks"] = pipe.forward
    forward["device_copy"] = jax.jit(lambda a: a + 0)
    table = pipe.materials[2][1].table
    forward["numpy_per_image"] = lambda _: ref.pipeline_per_image(
        x_np, perm, sign < 0, ffx_mask, table, M
    )
    best = interleaved_min(forward, x, rounds=repeats)
    ms = {f"forward/{name}": 1e3 * t for name, t in best.items()}
    bytes_best = interleaved_min({"lut": from_bytes, "copy": forward["device_copy"]}, x_bytes,
                                 rounds=repeats)  # fmt: skip
    ms["forward/6_uint8_in_position_lut"] = 1e3 * bytes_best["lut"]
    ms["baseline/device_copy_uint8"] = 1e3 * bytes_best["copy"]
    ms["baseline/device_copy"] = ms.pop("forward/device_copy")
    ms["baseline/numpy_per_image"] = ms.pop("forward/numpy_per_image")
    best = interleaved_min(inverse, y, rounds=repeats)
    ms.update({f"inverse/{name}": 1e3 * t for name, t in best.items()})
    notes = []
    step = dcgan_step_factory(shape) if with_step else None
    if step is not None:
        ms["baseline/dcgan_train_step"] = 1e3 * time_min(step, repeats=step_repeats, warmup=1)
    else:
        notes.append("DCGAN step skipped (egan_jax.families.dcgan absent or --no-step)")

    same_input = [
        k for k in ms if k.startswith("forward/") and "eager" not in k and "uint8" not in k
    ]
    fastest = min((ms[k], k) for k in same_input)[1]
    default = ms["forward/3_flat_gather_library"]
    ratios = {
        "numpy_per_image / library": ms["baseline/numpy_per_image"] / default,
        "library / device_copy": default / ms["baseline/device_copy"],
        "2_transpose_static / library": ms["forward/2_transpose_static"] / default,
        "1_transpose_traced / library": ms["forward/1_transpose_traced"] / default,
        "library_inverse / library_forward": ms["inverse/3_flat_gather_library"] / default,
        "numpy_per_image / library_inverse": ms["baseline/numpy_per_image"]
        / ms["inverse/3_flat_gather_library"],
        "3c_previous_library / library": ms["forward/3c_previous_library"] / default,
        "inverse 3c_previous_library / library": ms["inverse/3c_previous_library"]
        / ms["inverse/3_flat_gather_library"],
        "numpy_per_image / 6_uint8_in_position_lut": ms["baseline/numpy_per_image"]
        / ms["forward/6_uint8_in_position_lut"],
        # the ceiling of "numpy_per_image / library": a transform can read and write the batch no
        # faster than a plain copy of it (float32 in, float32 out)
        "numpy_per_image / device_copy (ceiling)": ms["baseline/numpy_per_image"]
        / ms["baseline/device_copy"],
    }
    if "baseline/dcgan_train_step" in ms:
        ratios["library / dcgan_train_step (%)"] = 100 * default / ms["baseline/dcgan_train_step"]
    return {"ms": ms, "exact": exact, "ratios": ratios, "fastest_forward": fastest, "notes": notes}


def run(quick: bool = False, with_step: bool = True) -> dict:
    repeats, step_repeats = (5, 1) if quick else (20, 1)
    shapes = {}
    load_before = os.getloadavg()
    for shape in SHAPES:
        name = "x".join(map(str, shape))
        print(f"-- {name}", flush=True)
        shapes[name] = result = bench_shape(
            shape, repeats=repeats, step_repeats=step_repeats, with_step=with_step
        )
        for label, value in result["ms"].items():
            print(f"  {label:45s} {value:10.3f} ms")
        for label, value in result["ratios"].items():
            print(f"  ratio {label:39s} {value:10.4g}")
        print(f"  exact: {result['exact']}", flush=True)
    summary = {
        name: {
            "library_forward_ms": r["ms"]["forward/3_flat_gather_library"],
            "library_inverse_ms": r["ms"]["inverse/3_flat_gather_library"],
            "fastest_forward": r["fastest_forward"],
            **{k: float(f"{v:.4g}") for k, v in r["ratios"].items()},
        }
        for name, r in shapes.items()
    }
    result = {
        "config": CONFIG,
        "quick": quick,
        "repeats": repeats,
        "load_average_1_5_15": {"before": load_before, "after": os.getloadavg()},
        "shapes": shapes,
        "summary": summary,
    }
    path = write_result("transforms", result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-step", action="store_true", help="skip the DCGAN train step")
    args = parser.parse_args()
    run(quick=args.quick, with_step=not args.no_step)
