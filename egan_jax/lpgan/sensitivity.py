"""How far plaintext training alone moves when its start moves by one fixed-point unit.

The secure step matches the float64 step to about 1e-4 relative in every forward tensor and to 0.2-2%
(unbiased) in every gradient and update (`egan_jax.lpgan.trace`). Whether the secure run's Fréchet
distance after N steps can then be within 10% of the plaintext run's depends on how sensitive the
plaintext trajectory itself is: this module trains the same plaintext model several times, from the
same seed, batches and latents, with the initial weights rounded stochastically to the masters'
fixed-point grid (2^-(f+8)), each rounding a different draw, and reports the spread of the FD and of
the final losses. If those runs (all "plaintext training with the same seed and steps", each as exact
as float64 allows) already differ by more than 10%, the per-seed gap is the trajectory's chaos, not a
protocol error.

Run: ``python -m egan_jax.lpgan.sensitivity --steps 300 --seeds 0,1,2 --draws 4``; with
``--secure-owner-seeds 101,102`` also the secure training of each seed with other share randomness;
``--secure-owner-seeds seed``: owner seed = seed, as the benchmark. ``--experiment`` picks the recipe
(default experiments/lpgan_digits.py, μ = −0.5; experiments/lpgan_digits_momentum.py, μ = +0.5).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np

from egan_jax.lpgan import train as T
from egan_jax.lpgan.model import plain_forward


def stochastic_round(value: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    """Round to the 2^-bits grid, up with probability equal to the remainder (unbiased)."""
    scaled = np.asarray(value, np.float64) * 2.0**bits
    low = np.floor(scaled)
    return (low + (rng.random(scaled.shape) < scaled - low)) / 2.0**bits


def plain_run(config: T.LpganConfig, images: np.ndarray, *, draw: int | None, dtype=jnp.float64):
    """Plaintext training; ``draw`` None: the exact initial weights, else one stochastic rounding of
    them to the master grid. Returns (generator params, per-step losses)."""
    from egan_jax.data import batch_at

    params = T.initial_params(config)
    if draw is not None:
        rng = np.random.default_rng([config.seed, 7, draw])
        bits = config.frac_bits + T.MASTER_EXTRA_BITS
        params = jax.tree.map(lambda v: stochastic_round(v, bits, rng), params)
    with jax.enable_x64(dtype == jnp.float64):
        step = jax.jit(T.make_plain_step(config))
        params = jax.tree.map(lambda v: jnp.asarray(v, dtype), params)
        momenta = jax.tree.map(jnp.zeros_like, params)
        losses = []
        for k in range(config.steps):
            real = jnp.asarray(batch_at(images, k, batch_size=config.batch_size, seed=config.seed))
            z_d, z_g = (jnp.asarray(z, dtype) for z in T.latents(config, k))
            lr = T.learning_rate_at(config, k)
            params, momenta, logits = step(params, momenta, real.astype(dtype), z_d, z_g, lr)
            losses.append(T.step_losses(config.loss, logits))
        return jax.tree.map(lambda v: np.asarray(v, np.float64), params["g"]), losses


def generator_fd(config: T.LpganConfig, g_params: dict, images, network, num_samples=1000) -> float:
    """Digits Fréchet distance of ``num_samples`` samples (latents from the seed; batch-norm
    statistics over batches of the training batch size) against ``images``."""
    from egan_jax.metrics import compute_fid

    g_layers = T.networks(config)["g"]
    z = np.random.default_rng([config.seed, 3]).normal(size=(num_samples, config.model.latent_dim))
    batch = config.batch_size
    fwd = jax.jit(lambda p, z: plain_forward(g_layers, p, z))
    p = {k: jnp.asarray(v, jnp.float32) for k, v in g_params.items()}
    samples = np.concatenate(
        [
            np.asarray(fwd(p, jnp.asarray(z[i : i + batch], jnp.float32)))
            for i in range(0, num_samples - num_samples % batch, batch)
        ]
    )
    return compute_fid(samples, images, network)


def secure_run(config: T.LpganConfig, images, network, owner_seed: int) -> dict:
    """Secure training (both servers in this process) with this share randomness; FD and losses."""
    from egan_jax.lpgan.owner import train_local

    g, records = train_local(config, owner_seed=owner_seed)
    tail = records[-max(1, config.steps // 10) :]
    return {
        "seed": config.seed,
        "variant": f"secure, owner seed {owner_seed}",
        "fd": generator_fd(config, g, images, network),
        "d_loss_last_10pct": float(np.mean([r["d_loss"] for r in tail])),
        "g_loss_last_10pct": float(np.mean([r["g_loss"] for r in tail])),
    }


def sensitivity(
    config: T.LpganConfig, seeds: list[int], draws: int, owner_seeds: tuple[int | str, ...] = ()
) -> dict:
    """``owner_seeds``: share seeds of the secure runs per seed; the string "seed" means the seed."""
    from egan_jax.data import load_images
    from egan_jax.metrics import DigitsClassifier

    images = load_images("digits", image_size=config.model.image_size, channels=1)
    network = DigitsClassifier.load_or_train()
    tail = max(1, config.steps // 10)
    runs = []
    for seed in seeds:
        cfg = dataclasses.replace(config, seed=seed)
        variants = [("float32", None, jnp.float32), ("float64", None, jnp.float64)]
        variants += [(f"float64 rounded #{d}", d, jnp.float64) for d in range(draws)]
        for name, draw, dtype in variants:
            g, losses = plain_run(cfg, images, draw=draw, dtype=dtype)
            runs.append(
                {
                    "seed": seed,
                    "variant": name,
                    "fd": generator_fd(cfg, g, images, network),
                    "d_loss_last_10pct": float(np.mean([r["d_loss"] for r in losses[-tail:]])),
                    "g_loss_last_10pct": float(np.mean([r["g_loss"] for r in losses[-tail:]])),
                }
            )
            print(json.dumps(runs[-1]), flush=True)
        for owner_seed in owner_seeds:
            runs.append(
                secure_run(cfg, images, network, seed if owner_seed == "seed" else owner_seed)
            )
            print(json.dumps(runs[-1]), flush=True)
    return {"steps": config.steps, "config": dataclasses.asdict(config), "runs": runs}


def main(argv=None) -> None:
    from egan_jax.lpgan.owner import load_experiment

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", default="experiments/lpgan_digits.py")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument(
        "--secure-owner-seeds",
        default="",
        help='also train securely with these share seeds ("seed": the seed, as the benchmark)',
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    config = load_experiment(args.experiment, steps=args.steps)
    owner_seeds = tuple(
        s.strip() if s.strip() == "seed" else int(s)
        for s in args.secure_owner_seeds.split(",")
        if s.strip()
    )
    result = sensitivity(config, [int(s) for s in args.seeds.split(",")], args.draws, owner_seeds)
    for seed in sorted({r["seed"] for r in result["runs"]}):
        fds = [r["fd"] for r in result["runs"] if r["seed"] == seed]
        print(
            f"seed {seed}: FD min {min(fds):.1f} max {max(fds):.1f} (max/min {max(fds) / min(fds):.2f})"
        )
        by_variant = {r["variant"]: r["fd"] for r in result["runs"] if r["seed"] == seed}
        for variant, fd in by_variant.items():
            if variant.startswith("secure") and "float32" in by_variant:
                print(f"  {variant}: FD {fd:.1f}, {fd / by_variant['float32']:.3f}× float32")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
