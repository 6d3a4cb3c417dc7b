"""DCGAN train step (G + D update, hinge loss, Adam 2e-4 β (0.5, 0.999)), side by side:

- JAX with `Upsample2x` (the custom-VJP ×2 up-sampler, egan_jax's default),
- JAX with stock `nnx.ConvTranspose` (same network otherwise),
- PyTorch 2.13 CPU, the same network, as a subprocess in bench/.venv-torch (bench/torch_dcgan.py).

Batch 64, width 64, 32 px, 3 channels by default. Timing is min-of-N after warm-up; the three are
measured in interleaved rounds so that background load hits them alike. Writes
bench/results/dcgan_step.json. Run: `.venv/bin/python -m bench.bench_dcgan [--quick]`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from bench.common import quick_flag, run_json, write_result
from egan_jax import losses
from egan_jax.models import Discriminator, Generator

TORCH_PYTHON = Path(__file__).resolve().parent / ".venv-torch" / "bin" / "python"
TORCH_SCRIPT = Path(__file__).resolve().parent / "torch_dcgan.py"
SETUP = (
    "python3.11 -m venv bench/.venv-torch && bench/.venv-torch/bin/pip install torch==2.13.0 numpy"
)


def make_jax_step(
    *, upsample: str, batch: int, width: int, image_size: int, channels: int, latent_dim: int = 128
):
    """Models, optimisers, a fixed real batch and a jitted step `() -> losses` (blocks on result)."""
    rngs = nnx.Rngs(0)
    sizes = dict(image_size=image_size, channels=channels, width=width)
    generator = Generator(latent_dim=latent_dim, upsample=upsample, rngs=rngs, **sizes)
    discriminator = Discriminator(rngs=rngs, **sizes)
    adam = optax.adam(2e-4, b1=0.5, b2=0.999)
    opt_g = nnx.Optimizer(generator, adam, wrt=nnx.Param)
    opt_d = nnx.Optimizer(discriminator, adam, wrt=nnx.Param)
    real = jax.random.uniform(
        jax.random.key(1), (batch, image_size, image_size, channels), minval=-1.0, maxval=1.0
    )

    def train_step(generator, discriminator, opt_g, opt_d, real, key):
        key_d, key_g = jax.random.split(key)
        n = real.shape[0]
        fake = jax.lax.stop_gradient(generator(jax.random.normal(key_d, (n, latent_dim))))

        def d_loss(discriminator):
            logits = discriminator(jnp.concatenate([real, fake]))
            return jnp.mean(losses.hinge_discriminator(logits[:n], logits[n:]))

        loss_d, grads_d = nnx.value_and_grad(d_loss)(discriminator)
        opt_d.update(discriminator, grads_d)

        def g_loss(generator, discriminator):
            # discriminator is an argument, not a closure: its power iteration updates `u`.
            fake = generator(jax.random.normal(key_g, (n, latent_dim)))
            return jnp.mean(losses.hinge_generator(discriminator(fake)))

        loss_g, grads_g = nnx.value_and_grad(g_loss)(generator, discriminator)
        opt_g.update(generator, grads_g)
        return loss_d, loss_g

    keys = iter(jax.random.split(jax.random.key(2), 100_000))
    # as egan_jax.train runs a step: one jax.jit over the split state (nnx.jit would walk the
    # module graph in Python on every call)
    graphdef, state = nnx.split((generator, discriminator, opt_g, opt_d))

    @jax.jit
    def train_state(state, real, key):
        modules = nnx.merge(graphdef, state)
        losses_ = train_step(*modules, real, key)
        return nnx.state(modules), losses_

    holder = [state]

    def step():
        holder[0], losses_ = train_state(holder[0], real, next(keys))
        return jax.block_until_ready(losses_)

    return step


def time_wall_and_cpu(fn, *, repeats: int, warmup: int) -> tuple[float, float]:
    """(min wall seconds, min process-CPU seconds) of `fn()` over `repeats` after `warmup` calls.

    CPU time (all threads of this process) is reported beside wall time because this machine is
    shared: other processes inflate wall time far more than the CPU time the step itself uses.
    """
    for _ in range(warmup):
        fn()
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu_start)
    return min(walls), min(cpus)


def run_torch(
    *, batch: int, width: int, image_size: int, channels: int, repeats: int, warmup: int
) -> dict:
    if not TORCH_PYTHON.exists():
        raise RuntimeError(f"PyTorch venv missing: {SETUP}")
    command = [
        str(TORCH_PYTHON),
        str(TORCH_SCRIPT),
        "--batch",
        str(batch),
        "--width",
        str(width),
        "--image-size",
        str(image_size),
        "--channels",
        str(channels),
        "--repeats",
        str(repeats),
        "--warmup",
        str(warmup),
    ]
    return run_json(command)


def run(
    quick: bool = False,
    *,
    batch: int = 64,
    width: int = 64,
    image_size: int = 32,
    channels: int = 3,
) -> dict:
    rounds, repeats, warmup = (1, 3, 1) if quick else (3, 5, 1)
    load_at_start = os.getloadavg()
    shape = dict(batch=batch, width=width, image_size=image_size, channels=channels)
    steps = {name: make_jax_step(upsample=name, **shape) for name in ("vjp", "conv_transpose")}
    names = ("jax_upsample2x", "jax_conv_transpose", "torch")
    best = {name: float("inf") for name in names}
    best_cpu = {name: float("inf") for name in names}
    torch_info = {}
    for _ in range(rounds):  # interleaved, so background load hits all three alike
        for name, upsample in (("jax_upsample2x", "vjp"), ("jax_conv_transpose", "conv_transpose")):
            wall, cpu = time_wall_and_cpu(steps[upsample], repeats=repeats, warmup=warmup)
            best[name], best_cpu[name] = min(best[name], wall), min(best_cpu[name], cpu)
        torch_info = run_torch(**shape, repeats=repeats, warmup=warmup + 1)
        best["torch"] = min(best["torch"], torch_info["step_s"])
        best_cpu["torch"] = min(best_cpu["torch"], torch_info["cpu_s"])
    steps_per_s = {name: 1.0 / seconds for name, seconds in best.items()}
    summary = {
        "step_s": best,
        "cpu_s_per_step": best_cpu,
        "steps_per_s": steps_per_s,
        "ratio_jax_upsample2x_over_torch": steps_per_s["jax_upsample2x"] / steps_per_s["torch"],
        "ratio_jax_conv_transpose_over_torch": (
            steps_per_s["jax_conv_transpose"] / steps_per_s["torch"]
        ),
        "ratio_upsample2x_over_conv_transpose": (
            steps_per_s["jax_upsample2x"] / steps_per_s["jax_conv_transpose"]
        ),
        "cpu_ratio_jax_upsample2x_over_torch": best_cpu["torch"] / best_cpu["jax_upsample2x"],
        "target_jax_over_torch": 1.2,
        "load_average_at_start": load_at_start,
    }
    result = {
        "benchmark": "dcgan_step",
        "config": {
            **shape,
            "latent_dim": 128,
            "loss": "hinge",
            "adam": [2e-4, 0.5, 0.999],
            "rounds": rounds,
            "repeats": repeats,
            "warmup": warmup,
            "timing": "min wall and min process CPU time per step",
        },
        "torch": {"version": torch_info.get("torch"), "threads": torch_info.get("threads")},
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "load_average_at_end": os.getloadavg(),
        "summary": summary,
    }
    path = write_result("dcgan_step", result)
    result["path"] = str(path)
    return result


def main() -> None:
    result = run(quick=quick_flag(__doc__.splitlines()[0]))
    summary = result["summary"]
    for name, seconds in summary["step_s"].items():
        cpu = summary["cpu_s_per_step"][name]
        print(
            f"{name:20s} {seconds * 1e3:8.1f} ms/step  {1 / seconds:6.2f} steps/s  "
            f"{cpu * 1e3:8.1f} CPU-ms/step"
        )
    ratios = (
        ("JAX Upsample2x / PyTorch steps/s", "ratio_jax_upsample2x_over_torch"),
        ("JAX ConvTranspose / PyTorch steps/s", "ratio_jax_conv_transpose_over_torch"),
        ("Upsample2x / ConvTranspose steps/s", "ratio_upsample2x_over_conv_transpose"),
        ("JAX Upsample2x / PyTorch by CPU time", "cpu_ratio_jax_upsample2x_over_torch"),
    )
    for label, key in ratios:
        print(f"{label:38s} {summary[key]:.2f}x")
    print(
        f"load average at start / end: {summary['load_average_at_start']} / "
        f"{result['load_average_at_end']}"
    )
    print(f"wrote {result['path']}")


if __name__ == "__main__":
    main()
