"""SecretFlow SPU (the second peer) running the layers of bench_mpc's protocol table: ReLU,
sigmoid, batch-norm normalisation (batch statistics, secure inverse square root) and a 4×4 stride-2
convolution, on the same shapes and inputs as `bench.bench_mpc._cases` (NHWC, as ours).

Runs in its own venv (bench/.venv-spu: spu 0.9.5, which needs jax<=0.4.34 and numpy<2) and imports
nothing from egan_jax. Two SPU parties in two threads of one process over SPU's in-memory link
(`spu.utils.simulation.Simulator`), protocol SEMI2K (additive shares, Beaver triples from a trusted
first party), ring FM64, SPU's defaults (18 fractional bits). The functions are the plain JAX ones
(jax.nn.relu, jax.nn.sigmoid, lax.rsqrt, lax.conv_general_dilated), compiled by SPU.

Counting: SPU's own link statistics, printed by its profiler for party 0 ("Link details: total send
bytes …, send actions …"): bytes party 0 sends and the number of messages it sends (its rounds;
SEMI2K's protocols are symmetric). Online time: SPU's "execution took" (compiled program, without
the sharing of the inputs). Min over repeats.

Run: `bench/.venv-spu/bin/python bench/peer_spu.py [--quick] --out FILE.json`
Set-up: `python3.11 -m venv bench/.venv-spu && bench/.venv-spu/bin/pip install spu==0.9.5
"jax<=0.4.34" "jaxlib<=0.4.34" "numpy<2"`
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

DN = ("NHWC", "HWIO", "NHWC")
LINK = re.compile(r"Link details: total send bytes (\d+), recv bytes \d+, send actions (\d+)")
EXECUTION = re.compile(r"execution took ([0-9.e+-]+)s")


def _bn(x):
    mean = x.mean(axis=(0, 1, 2), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(0, 1, 2), keepdims=True)
    return (x - mean) * lax.rsqrt(var + 1e-5)


def _conv(x, w):
    return lax.conv_general_dilated(x, w, (2, 2), ((1, 1), (1, 1)), dimension_numbers=DN)


def cases(quick: bool) -> dict:
    """The inputs of bench_mpc's protocol table (same generator, same draws)."""
    rng = np.random.default_rng(0)
    rows, cols = (16, 256) if quick else (64, 1024)
    act = rng.normal(size=(rows, cols)) * 3
    rng.uniform(size=(rows, cols))  # bench_mpc's inv_sqrt input: keeps the later draws aligned
    b, hw, cin, cout = (8, 8, 8, 16) if quick else (64, 16, 32, 64)
    image = rng.normal(size=(b, hw, hw, cin))
    kernel = rng.normal(size=(4, 4, cin, cout)) / np.sqrt(16 * cin)
    rng.normal(size=(b, hw // 2, hw // 2, cout))
    rng.normal(size=(4, 4, cin, cout))
    bn_in = rng.normal(size=(b, hw // 2, hw // 2, cin)) * 2 + 0.5
    return {
        "relu": (jax.nn.relu, (act,)),
        "sigmoid": (jax.nn.sigmoid, (act,)),
        "batch_norm_normalize": (_bn, (bn_in,)),
        "conv2d_k4s2": (_conv, (image, kernel)),
    }


class _CaptureFds:
    """Captures the C-level stdout and stderr (SPU's profiler log) of the block into ``text``."""

    def __enter__(self):
        self._file = tempfile.TemporaryFile(mode="w+b")
        self._saved = [os.dup(1), os.dup(2)]
        for fd in (1, 2):
            os.dup2(self._file.fileno(), fd)
        return self

    def __exit__(self, *exc):
        for fd, saved in zip((1, 2), self._saved, strict=True):
            os.dup2(saved, fd)
            os.close(saved)
        self._file.seek(0)
        self.text = self._file.read().decode(errors="replace")
        self._file.close()


def measure(fn, inputs, repeats: int) -> dict:
    import spu.libspu as libspu
    import spu.utils.simulation as spsim

    config = libspu.RuntimeConfig(protocol=libspu.ProtocolKind.SEMI2K, field=libspu.FieldType.FM64)
    config.enable_pphlo_profile = True
    sim = spsim.Simulator(2, config)
    secure = spsim.sim_jax(sim, fn)
    times, link = [], None
    for _ in range(repeats + 1):  # the first call compiles
        with _CaptureFds() as log:
            got = np.asarray(secure(*inputs), np.float64)
        links = LINK.findall(log.text)
        runs = EXECUTION.findall(log.text)
        if not links or not runs:
            raise RuntimeError(f"no SPU profile in the log:\n{log.text[-2000:]}")
        link = links[-1]
        times.append(float(runs[-1]))
    with jax.experimental.enable_x64():
        expected = np.asarray(fn(*(jnp.asarray(v, jnp.float64) for v in inputs)))
    sent, rounds = int(link[0]), int(link[1])
    return {
        "input_shapes": [list(np.shape(v)) for v in inputs],
        "output_shape": list(got.shape),
        "online_s": min(times[1:]),
        "bytes_sent_per_party": sent,
        "rounds": rounds,
        "bytes_per_output_element_per_party": sent / got.size,
        "max_abs_error_vs_float64": float(np.max(np.abs(got - expected))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import spu

    rows = {
        name: measure(fn, inputs, args.repeats) for name, (fn, inputs) in cases(args.quick).items()
    }
    result = {
        "peer": "spu",
        "versions": {"spu": spu.__version__, "jax": jax.__version__, "numpy": np.__version__},
        "python": platform.python_version(),
        "setting": "two SPU parties (threads), in-memory link, SEMI2K, FM64, trusted first party",
        "precision_bits": 18,
        "quick": args.quick,
        "load_average_1_5_15": list(os.getloadavg()),
        "protocols": rows,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
