"""Two-party protocol costs (egan_jax.mpc) beside the plaintext op, on the same machine, in one run.

Per protocol: online time (both parties in two threads of this process, in-process channel, so no
network latency: rounds are reported separately), bytes each party sends (frame bytes), rounds,
offline (dealer) time and bytes per party, the plaintext op's time (jitted float32 JAX), and the
largest error of the reconstructed result against float64 plaintext on the inputs rounded to the
fixed-point grid (the protocol's own error, without the input quantisation). The offline phase runs
ahead of the timed online run, from the plan recorded in a warm-up run. Timing: min over repeats.

LP-GAN (secure DCGAN, egan_jax.lpgan): per layer of the generator and discriminator, forward plus
backward on shares beside the plaintext layer's jitted forward plus VJP; one whole secure training
step beside the jitted plaintext step; and (``--train-steps N``) secure against plaintext training
from the same initial weights, batches and latents, scored by the digits Fréchet distance.
Peers (bench/peer_compare.py): CrypTen and SecretFlow SPU, each in its own venv (bench/.venv-crypten,
bench/.venv-spu; skipped with the set-up command when missing), run ReLU, sigmoid, batch norm and
the convolution on the same inputs; their bytes, rounds, time and error sit beside ours in
``peer_comparison``. ``dcgan_step`` is the secure DCGAN step against the plaintext step (goal ≤ 100×).

Run: `.venv/bin/python -m bench.bench_mpc [--quick] [--train-steps N --seeds 0,1,2 --jobs 3
[--experiment experiments/lpgan_digits.py --result lpgan_training]]`; writes bench/results/mpc.json
(mpc_quick.json with --quick; with --train-steps, <result>.json, lpgan_training.json by default).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from bench import peer_compare
from bench.common import time_min, write_result
from egan_jax.mpc import arith, compare, nonlinear, ring
from egan_jax.mpc.dealer import Dealer
from egan_jax.mpc.protocols import run_two_party

DN = ("NHWC", "HWIO", "NHWC")


def _bn_plain(x):
    mean = x.mean(axis=(0, 1, 2), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(0, 1, 2), keepdims=True)
    return (x - mean) * lax.rsqrt(var + 1e-5)


def _up_plain(x, w):
    def strided(u):
        return lax.conv_general_dilated(u, w, (2, 2), ((1, 1), (1, 1)), dimension_numbers=DN)

    shape = (x.shape[0], 2 * x.shape[1], 2 * x.shape[2], w.shape[2])
    return jax.vjp(strided, jnp.zeros(shape, x.dtype))[1](x)[0]


def _cases(quick: bool) -> dict:
    rng = np.random.default_rng(0)
    rows, cols = (16, 256) if quick else (64, 1024)
    act = rng.normal(size=(rows, cols)) * 3
    pos = np.exp(rng.uniform(np.log(1e-3), np.log(1e3), (rows, cols)))
    b, hw, cin, cout = (8, 8, 8, 16) if quick else (64, 16, 32, 64)
    image = rng.normal(size=(b, hw, hw, cin))
    kernel = rng.normal(size=(4, 4, cin, cout)) / np.sqrt(16 * cin)
    small = rng.normal(size=(b, hw // 2, hw // 2, cout))
    up_kernel = rng.normal(size=(4, 4, cin, cout)) / np.sqrt(16 * cout)
    bn_in = rng.normal(size=(b, hw // 2, hw // 2, cin)) * 2 + 0.5
    return {
        "mul": (arith.mul, (act, act[::-1]), lambda x, y: x * y),
        "relu": (lambda p, x: compare.relu(p, x)[0], (act,), jax.nn.relu),
        "sigmoid": (nonlinear.sigmoid, (act,), jax.nn.sigmoid),
        "tanh": (nonlinear.tanh, (act,), jnp.tanh),
        "inv_sqrt": (nonlinear.inv_sqrt, (pos,), lax.rsqrt),
        "batch_norm_normalize": (
            lambda p, x: nonlinear.batch_norm_normalize(p, x)[0],
            (bn_in,),
            _bn_plain,
        ),
        "conv2d_k4s2": (
            lambda p, x, w: arith.conv2d(p, x, w, stride=(2, 2), padding=((1, 1), (1, 1))),
            (image, kernel),
            lambda x, w: lax.conv_general_dilated(
                x, w, (2, 2), ((1, 1), (1, 1)), dimension_numbers=DN
            ),
        ),
        "conv_transpose2d_k4s2": (arith.conv_transpose2d, (small, up_kernel), _up_plain),
    }


def _measure(fn, inputs, plain, repeats: int) -> dict:
    prg = ring.Prg(1, domain=b"owner")
    shares = [ring.share(ring.encode(v), prg) for v in inputs]
    args0, args1 = tuple(s[0] for s in shares), tuple(s[1] for s in shares)
    warm = Dealer(2)
    first = run_two_party(fn, args0, args1, dealer=warm)  # compiles, records the dealer plan
    got = ring.decode(ring.reconstruct(*first.outputs))
    rounded = [ring.decode(ring.encode(v)) for v in inputs]  # what the parties compute on
    with jax.enable_x64(True):
        expected = np.asarray(jax.jit(plain)(*(jnp.asarray(v) for v in rounded)))
    online, offline, run = [], [], first
    for _ in range(repeats):
        dealer = Dealer(2)
        start = time.perf_counter()
        dealer.precompute(list(warm.plan))
        offline.append(time.perf_counter() - start)
        run = run_two_party(fn, args0, args1, dealer=dealer)
        online.append(run.seconds)
    plain32 = jax.jit(plain)
    inputs32 = [jnp.asarray(v, jnp.float32) for v in inputs]
    plain_s = time_min(lambda: plain32(*inputs32).block_until_ready(), repeats=max(repeats, 3))
    elements = int(np.size(got))
    sent = [c.bytes_sent for c in run.channel]
    return {
        "output_shape": list(np.shape(got)),
        "online_s": min(online),
        "offline_s": min(offline),
        "plaintext_s": plain_s,
        "online_over_plaintext": min(online) / plain_s,
        "bytes_sent_per_party": sent,
        "bytes_per_output_element_per_party": max(sent) / elements,
        "rounds": max(c.rounds for c in run.channel),
        "offline_bytes_per_party": list(warm.stats.bytes_to_party),
        "dealer_items": dict(warm.stats.by_kind),
        "max_abs_error_vs_float64_on_fixed_point_inputs": float(np.max(np.abs(got - expected))),
    }


def _share_all(values, seed):
    prg = ring.Prg(seed, domain=b"owner")
    shares = [ring.share(ring.encode(v), prg) for v in values]
    return [s[0] for s in shares], [s[1] for s in shares]


def _timed_two_party(fn, args0, args1, repeats):
    """(first run, min online seconds, min offline seconds) with the dealer's plan precomputed."""
    warm = Dealer(3)
    first = run_two_party(fn, args0, args1, dealer=warm)
    online, offline = [], []
    for _ in range(repeats):
        dealer = Dealer(3)
        start = time.perf_counter()
        dealer.precompute(list(warm.plan))
        offline.append(time.perf_counter() - start)
        online.append(run_two_party(fn, args0, args1, dealer=dealer).seconds)
    return first, warm, min(online), min(offline)


def lpgan_layers(quick: bool, repeats: int) -> dict:
    """Forward + backward of every layer of the secure DCGAN at its real shapes."""
    from egan_jax.lpgan.model import ModelConfig
    from egan_jax.lpgan.train import LpganConfig, initial_params, networks

    model = ModelConfig(latent_dim=8, width=4, image_size=16) if quick else ModelConfig()
    config = LpganConfig(model=model, batch_size=4 if quick else 16)
    rng = np.random.default_rng(0)
    params = initial_params(config)
    rows = {}
    for net, layers in networks(config).items():
        shape = (
            (config.batch_size, model.latent_dim)
            if net == "g"
            else (2 * config.batch_size, model.image_size, model.image_size, model.channels)
        )
        x = rng.normal(size=shape) * 0.5
        for i, layer in enumerate(layers):
            p = {k: params[net][f"{i}.{k}"] for k in layer.param_shapes()}
            names = sorted(p)
            y_plain = np.asarray(layer.plain(p, jnp.asarray(x, jnp.float32)))
            dy = rng.normal(size=y_plain.shape) * 0.01
            a0, a1 = _share_all([x, dy, *(p[k] for k in names)], 4)

            def fn(party, x, dy, *ps, layer=layer, names=names):
                q = dict(zip(names, ps, strict=True))
                y, cache = layer.forward(party, q, x)
                return y, layer.backward(party, q, cache, dy)

            first, warm, online, offline = _timed_two_party(fn, a0, a1, repeats)
            plain = jax.jit(lambda p, x, dy, layer=layer: jax.vjp(layer.plain, p, x)[1](dy))
            pj = {k: jnp.asarray(v, jnp.float32) for k, v in p.items()}
            xj, dyj = jnp.asarray(x, jnp.float32), jnp.asarray(dy, jnp.float32)
            plain_s = time_min(
                lambda f=plain, a=(pj, xj, dyj): jax.block_until_ready(f(*a)),
                repeats=max(repeats, 3),
            )
            sent = max(c.bytes_sent for c in first.channel)
            rows[f"{net}{i}_{type(layer).__name__}"] = {
                "input_shape": list(x.shape),
                "online_s": online,
                "offline_s": offline,
                "plaintext_fwd_bwd_s": plain_s,
                "online_over_plaintext": online / plain_s,
                "bytes_sent_per_party": sent,
                "rounds": max(c.rounds for c in first.channel),
                "offline_bytes_per_party": max(warm.stats.bytes_to_party),
            }
            x = y_plain
    return rows


def secure_step_inputs(quick: bool) -> dict:
    """The benchmarks' secure DCGAN step set-up: config, plaintext params and inputs, and each
    party's arguments (state shares + input shares) for `T.secure_train_step`."""
    from egan_jax.lpgan import train as T
    from egan_jax.lpgan.model import ModelConfig

    model = ModelConfig(latent_dim=8, width=4, image_size=16) if quick else ModelConfig()
    config = T.LpganConfig(model=model, batch_size=4 if quick else 16)
    params = T.initial_params(config)
    rng = np.random.default_rng(0)
    real = np.tanh(rng.normal(size=(config.batch_size, model.image_size, model.image_size, 1)))
    z_d, z_g = T.latents(config, 0)
    s0, s1 = T.share_state(T.encode_state(config, params), ring.Prg(5, domain=b"owner"))
    a0, a1 = _share_all([real, z_d, z_g], 6)
    return {
        "config": config,
        "params": params,
        "plain_inputs": (real, z_d, z_g),
        "party_args": ((s0, *a0), (s1, *a1)),
    }


def lpgan_step(quick: bool, repeats: int) -> dict:
    """One secure training step (online, dealer plan precomputed) vs the jitted plaintext step."""
    from egan_jax.lpgan import train as T

    setup = secure_step_inputs(quick)
    config, params = setup["config"], setup["params"]
    model = config.model
    real, z_d, z_g = setup["plain_inputs"]
    (s0, *a0), (s1, *a1) = setup["party_args"]
    first, warm, online, offline = _timed_two_party(
        lambda party, st, *xs: T.secure_train_step(party, config, st, *xs),
        (s0, *a0),
        (s1, *a1),
        max(1, repeats // 2),
    )
    step = jax.jit(T.make_plain_step(config))
    pj = jax.tree.map(lambda v: jnp.asarray(v, jnp.float32), params)
    mj = jax.tree.map(jnp.zeros_like, pj)
    inputs = [jnp.asarray(v, jnp.float32) for v in (real, z_d, z_g)]
    plain_s = time_min(lambda: jax.block_until_ready(step(pj, mj, *inputs)), repeats=5)
    return {
        "model": {"width": model.width, "image_size": model.image_size, "batch": config.batch_size},
        "online_s": online,
        "offline_s": offline,
        "plaintext_s": plain_s,
        "online_over_plaintext": online / plain_s,
        "online_plus_offline_over_plaintext": (online + offline) / plain_s,
        "bytes_sent_per_party": max(c.bytes_sent for c in first.channel),
        "rounds": max(c.rounds for c in first.channel),
        "offline_bytes_per_party": max(warm.stats.bytes_to_party),
        "dealer_items": dict(warm.stats.by_kind),
    }


def lpgan_training(
    steps: int,
    num_samples: int = 1000,
    seed: int = 0,
    experiment: str = "experiments/lpgan_digits.py",
) -> dict:
    """Secure vs plaintext training (same seed, weights, batches, latents, steps) on the digits;
    digits Fréchet distance of samples from each generator against the training images."""
    import dataclasses

    from egan_jax.data import batch_at, load_images
    from egan_jax.lpgan import train as T
    from egan_jax.lpgan.model import plain_forward
    from egan_jax.lpgan.owner import load_experiment, train_local
    from egan_jax.metrics import DigitsClassifier, compute_fid

    config = dataclasses.replace(load_experiment(experiment), steps=steps, seed=seed)
    start = time.perf_counter()
    secure_g, records = train_local(config, owner_seed=seed)
    secure_s = time.perf_counter() - start
    images = load_images("digits", image_size=32, channels=1)
    step = jax.jit(T.make_plain_step(config))
    params = jax.tree.map(lambda v: jnp.asarray(v, jnp.float32), T.initial_params(config))
    momenta = jax.tree.map(jnp.zeros_like, params)
    plain_losses = []
    for k in range(steps):
        real = batch_at(images, k, batch_size=config.batch_size, seed=config.seed)
        z_d, z_g = T.latents(config, k)
        lr = T.learning_rate_at(config, k)
        params, momenta, logits = step(params, momenta, real, z_d, z_g, lr)
        plain_losses.append(T.step_losses(config.loss, logits))
    g_layers = T.networks(config)["g"]
    z = np.random.default_rng([config.seed, 3]).normal(size=(num_samples, config.model.latent_dim))
    batch = config.batch_size  # batch-norm statistics over the training batch size, as trained

    def draw(g_params):
        fwd = jax.jit(lambda p, z: plain_forward(g_layers, p, z))
        p = {k: jnp.asarray(v, jnp.float32) for k, v in g_params.items()}
        return np.concatenate(
            [
                np.asarray(fwd(p, jnp.asarray(z[i : i + batch], jnp.float32)))
                for i in range(0, num_samples - num_samples % batch, batch)
            ]
        )

    network = DigitsClassifier.load_or_train()
    initial = T.initial_params(config)["g"]
    fd = {
        name: compute_fid(draw(g), images, network)
        for name, g in (("secure", secure_g), ("plaintext", params["g"]), ("initial", initial))
    }
    tail = max(1, steps // 10)
    return {
        "steps": steps,
        "seed": seed,
        "experiment": experiment,
        "load_average_1_5_15": list(os.getloadavg()),
        "config": dataclasses.asdict(config),
        "digits_fd": fd,
        "secure_over_plaintext_fd": fd["secure"] / fd["plaintext"],
        "secure_training_s": secure_s,
        "secure_step_s_median": float(np.median([r["seconds"] for r in records])),
        "bytes_sent_per_party_per_step": records[-1]["bytes_sent"],
        "rounds_per_step": records[-1]["rounds"],
        "final_losses_mean_last_10pct": {
            "secure": {
                k: float(np.mean([r[k] for r in records[-tail:]])) for k in ("d_loss", "g_loss")
            },
            "plaintext": {
                k: float(np.mean([r[k] for r in plain_losses[-tail:]]))
                for k in ("d_loss", "g_loss")
            },
        },
    }


def lpgan_training_seeds(
    steps: int,
    seeds: list[int],
    jobs: int = 1,
    experiment: str = "experiments/lpgan_digits.py",
) -> dict:
    """`lpgan_training` for each seed (weights, data order, latents, share randomness), then the
    mean ± sample standard deviation of the secure and plaintext FD and of their ratio. ``jobs``
    seeds run at once, each in its own (spawned) process."""
    if jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            n = len(seeds)
            runs = list(pool.map(lpgan_training, [steps] * n, [1000] * n, seeds, [experiment] * n))
    else:
        runs = [lpgan_training(steps, seed=seed, experiment=experiment) for seed in seeds]

    def stats(values):
        values = np.asarray(values, np.float64)
        sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        return {"mean": float(values.mean()), "sd": sd, "values": values.tolist()}

    summary = {
        "steps": steps,
        "experiment": experiment,
        "seeds": list(seeds),
        "digits_fd_secure": stats([r["digits_fd"]["secure"] for r in runs]),
        "digits_fd_plaintext": stats([r["digits_fd"]["plaintext"] for r in runs]),
        "secure_over_plaintext_fd": stats([r["secure_over_plaintext_fd"] for r in runs]),
        "secure_step_s_median": stats([r["secure_step_s_median"] for r in runs]),
        "jobs": jobs,
    }
    return {"summary": summary, "runs": runs}


def run(quick: bool = False) -> dict:
    repeats = 2 if quick else 5
    protocols = {}
    for name, (fn, inputs, plain) in _cases(quick).items():
        protocols[name] = {
            "input_shapes": [list(v.shape) for v in inputs],
            **_measure(fn, inputs, plain, repeats),
        }
    lpgan = {"layers": lpgan_layers(quick, repeats), "step": lpgan_step(quick, repeats)}
    peers = {name: peer_compare.run_peer(name, quick) for name in peer_compare.PEERS}
    ratio = lpgan["step"]["online_over_plaintext"]
    result = {
        "quick": quick,
        "frac_bits": ring.FRAC_BITS,
        "setting": "both parties in one process (two threads), in-process channel, trusted dealer",
        "load_average_1_5_15": list(os.getloadavg()),
        "protocols": protocols,
        "lpgan": lpgan,
        "peers": peers,
        "peer_comparison": peer_compare.comparison(protocols, peers),
        "dcgan_step": {
            "secure_online_s": lpgan["step"]["online_s"],
            "plaintext_s": lpgan["step"]["plaintext_s"],
            "secure_over_plaintext": ratio,
            "goal_at_most_100x_met": ratio <= 100,
        },
        "summary": {
            name: {
                "online_ms": round(1e3 * r["online_s"], 2),
                "plaintext_ms": round(1e3 * r["plaintext_s"], 3),
                "bytes_per_elem": round(r["bytes_per_output_element_per_party"], 1),
                "rounds": r["rounds"],
                "offline_ms": round(1e3 * r["offline_s"], 2),
            }
            for name, r in protocols.items()
        },
    }
    result["lpgan_summary"] = {
        name: {
            "online_ms": round(1e3 * r["online_s"], 1),
            "plaintext_ms": round(1e3 * r["plaintext_fwd_bwd_s"], 2),
            "bytes_per_party": r["bytes_sent_per_party"],
            "rounds": r["rounds"],
        }
        for name, r in lpgan["layers"].items()
    }
    write_result("mpc_quick" if quick else "mpc", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--train-steps", type=int, default=0, help="secure vs plaintext training")
    parser.add_argument(
        "--seeds", default="0", help="comma-separated seeds for --train-steps (e.g. 0,1,2)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="seeds trained at once (processes)")
    parser.add_argument("--experiment", default="experiments/lpgan_digits.py")
    parser.add_argument("--result", default="lpgan_training", help="result name for --train-steps")
    args = parser.parse_args()
    if args.train_steps:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        training = lpgan_training_seeds(args.train_steps, seeds, args.jobs, args.experiment)
        write_result(args.result, training)
        print(json.dumps(training["summary"], indent=2))
    else:
        out = run(args.quick)
        for name, peer in out["peers"].items():
            if "protocols" not in peer:
                print(f"peer {name}: {peer}")
        print(json.dumps(out["peer_comparison"], indent=2))
        print(json.dumps({**out["summary"], "dcgan_step": out["dcgan_step"]}, indent=2))
