"""Secure vs plaintext training, tensor by tensor: where a fixed-point error biases the step.

For each step along the float64 plaintext trajectory (teacher forcing: the secure step starts from the
plaintext weights and momenta of that step, same batch and latents), one secure step and one float64
plaintext step; every intermediate tensor is compared: each layer's forward output (generator and
discriminator, in the D step and the G step), the logit gradients, the generated image's gradient,
every parameter gradient and every parameter update. Per tensor:

- ``rel``: ||secure − plain|| / ||plain|| (relative L2 error);
- ``bias``: mean(secure − plain) / rms(plain) (a signed offset);
- ``gain``: <secure, plain> / <plain, plain>, the size of the secure tensor along the plaintext one:
  above 1 the secure step systematically moves further than the plaintext step, below 1 less;
- ``sign_flips``: the fraction of elements whose sign differs (for a pre-activation: how many
  ReLU/LeakyReLU derivative bits flip).

Run: ``python -m egan_jax.lpgan.trace --steps 20 [--seed 0] [--json out.json]``.
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
from egan_jax.mpc import ring
from egan_jax.mpc.dealer import Dealer
from egan_jax.mpc.protocols import run_two_party


def plain_trace(config: T.LpganConfig, params: dict, momenta: dict, real, z_d, z_g, step: int = 0):
    """The float64 plaintext step (number ``step``: its scheduled rate) with the tensors
    `secure_trace` records, and the new state."""
    nets = T.networks(config)
    g, d = nets["g"], nets["d"]
    d_loss, g_loss = T._plain_losses(config.loss)
    lr, mu = T.learning_rate_at(config, step), config.momentum
    n = real.shape[0]
    out: dict[str, np.ndarray] = {}
    with jax.enable_x64(True):
        p = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), params)
        m = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), momenta)
        fake, acts = plain_forward(g, p["g"], jnp.asarray(z_d), collect=True)
        out.update({f"act.g_d.{i}": a for i, a in enumerate(acts)})
        _, acts = plain_forward(d, p["d"], jnp.concatenate([jnp.asarray(real), fake]), collect=True)
        out.update({f"act.d_d.{i}": a for i, a in enumerate(acts)})
        logits = acts[-1][:, 0]
        out["grad.d_logit"] = jax.grad(lambda lg: d_loss(lg[:n], lg[n:]))(logits)

        def d_objective(dp):
            lg = plain_forward(d, dp, jnp.concatenate([jnp.asarray(real), fake]))[:, 0]
            return d_loss(lg[:n], lg[n:])

        d_grads = jax.grad(d_objective)(p["d"])
        m_d = jax.tree.map(lambda a, b: mu * a + b, m["d"], d_grads)
        new_d = jax.tree.map(lambda a, b: a - lr * config.d_lr_scale * b, p["d"], m_d)
        fake_g, acts = plain_forward(g, p["g"], jnp.asarray(z_g), collect=True)
        out.update({f"act.g_g.{i}": a for i, a in enumerate(acts)})
        _, acts = plain_forward(d, new_d, fake_g, collect=True)
        out.update({f"act.d_g.{i}": a for i, a in enumerate(acts)})
        out["grad.g_logit"] = jax.grad(g_loss)(acts[-1][:, 0])
        out["grad.fake_image"] = jax.grad(lambda x: g_loss(plain_forward(d, new_d, x)[:, 0]))(
            fake_g
        )
        g_grads = jax.grad(
            lambda gp: g_loss(plain_forward(d, new_d, plain_forward(g, gp, z_g))[:, 0])
        )(p["g"])
        m_g = jax.tree.map(lambda a, b: mu * a + b, m["g"], g_grads)
        new_g = jax.tree.map(lambda a, b: a - lr * b, p["g"], m_g)
        out.update({f"grad.d.{k}": v for k, v in d_grads.items()})
        out.update({f"grad.g.{k}": v for k, v in g_grads.items()})
        new = {"g": new_g, "d": new_d}
        for net in ("g", "d"):
            out.update({f"update.{net}.{k}": new[net][k] - p[net][k] for k in p[net]})
        out["logits.real"], out["logits.fake"] = logits[:n], logits[n:]
        out["logits.generator"] = acts[-1][:, 0]
        state = (
            jax.tree.map(np.asarray, new),
            {"g": jax.tree.map(np.asarray, m_g), "d": jax.tree.map(np.asarray, m_d)},
        )
        return {k: np.asarray(v, np.float64) for k, v in out.items()}, state


def secure_trace(
    config: T.LpganConfig, params: dict, momenta: dict, real, z_d, z_g, seed=0, step: int = 0
):
    """One secure step (number ``step``, two threads) from these plaintext weights and momenta;
    the decoded tensors."""
    f, scale = config.frac_bits, 2.0**config.loss_scale_bits
    state = T.encode_state(config, params)
    for net, net_m in momenta.items():
        for k, v in net_m.items():
            state[f"{net}.momentum.{k}"] = ring.encode(np.asarray(v) * scale, f)
    prg = ring.Prg(seed, domain=b"owner")
    s0, s1 = T.share_state(state, prg)
    data = [ring.share(ring.encode(np.asarray(v), f), prg) for v in (real, z_d, z_g)]

    def fn(party, st, *xs):
        trace: dict = {}
        st, logits = T.secure_train_step(party, config, st, *xs, step=step, trace=trace)
        return st, logits, trace

    run = run_two_party(
        fn,
        (s0, *(x[0] for x in data)),
        (s1, *(x[1] for x in data)),
        dealer=Dealer(seed),
        frac_bits=f,
        timeout=600,
    )
    (st0, lg0, tr0), (st1, lg1, tr1) = run.outputs
    out = {}
    for k in tr0:
        value = ring.decode(ring.reconstruct(tr0[k], tr1[k]), f)
        out[k] = value / scale if k.startswith("grad.") else value
    out["grad.d_logit"] = out["grad.d_logit"][:, 0]
    out["grad.g_logit"] = out["grad.g_logit"][:, 0]
    new = {k: ring.reconstruct(st0[k], st1[k]) for k in st0}
    for net in ("g", "d"):
        after = T.decode_params(config, new, net)
        out.update({f"update.{net}.{k}": after[k] - params[net][k] for k in after})
    for k in lg0:
        out[f"logits.{k}"] = ring.decode(ring.reconstruct(lg0[k], lg1[k]), f)
    return out


def compare(secure: dict, plain: dict) -> dict[str, dict[str, float]]:
    """Per tensor: relative L2 error, signed bias (mean error / rms) and gain (projection)."""
    rows = {}
    for k, p in plain.items():
        s = np.asarray(secure[k], np.float64).reshape(p.shape)
        pp = float(np.sum(p * p))
        rms = np.sqrt(pp / p.size)
        rows[k] = {
            "rel": float(np.linalg.norm(s - p) / max(np.sqrt(pp), 1e-30)),
            "bias": float(np.mean(s - p) / max(rms, 1e-30)),
            "gain": float(np.sum(s * p) / max(pp, 1e-30)),
            "rms": float(rms),
            "sign_flips": float(np.mean(np.sign(s) != np.sign(p))),
        }
    return rows


def _fixed(value, bits: int) -> np.ndarray:
    return ring.decode(ring.encode(np.asarray(value, np.float64), bits), bits)


def run_trace(config: T.LpganConfig, steps: int, start: int = 0, every: int = 1) -> dict:
    """Teacher-forced per-tensor comparison at steps start, start + every, ... (``steps`` of them)
    of the float64 plaintext trajectory."""
    from egan_jax.data import batch_at, load_images

    images = load_images(
        config.dataset, image_size=config.model.image_size, channels=config.model.channels
    )
    params = T.initial_params(config)
    momenta = jax.tree.map(np.zeros_like, params)
    per_step = []
    f, scale = config.frac_bits, 2.0**config.loss_scale_bits
    with jax.enable_x64(True):
        plain_step = jax.jit(T.make_plain_step(config))
    traced = {start + every * i for i in range(steps)}
    for k in range(start + every * (steps - 1) + 1):
        real = batch_at(images, k, batch_size=config.batch_size, seed=config.seed)
        if k not in traced:
            with jax.enable_x64(True):
                lr = T.learning_rate_at(config, k)
                params, momenta, _ = plain_step(params, momenta, real, *T.latents(config, k), lr)
            params, momenta = jax.tree.map(np.asarray, (params, momenta))
            continue
        real = np.asarray(
            batch_at(images, k, batch_size=config.batch_size, seed=config.seed), np.float64
        )
        z_d, z_g = T.latents(config, k)
        # the secure step's inputs are fixed point: start the plaintext step from the same values
        params = jax.tree.map(lambda v: _fixed(v, f + T.MASTER_EXTRA_BITS), params)
        momenta = jax.tree.map(lambda v: _fixed(v * scale, f) / scale, momenta)
        real, z_d, z_g = _fixed(real, f), _fixed(z_d, f), _fixed(z_g, f)
        plain, (new_params, new_momenta) = plain_trace(
            config, params, momenta, real, z_d, z_g, step=k
        )
        secure = secure_trace(config, params, momenta, real, z_d, z_g, seed=k, step=k)
        rows = compare(secure, plain)
        losses = {
            name: T.logit_losses(
                config.loss, *(v[f"logits.{n}"] for n in ("real", "fake", "generator"))
            )
            for name, v in (("secure", secure), ("plain", plain))
        }
        per_step.append({"step": k, "rows": rows, "losses": losses})
        params, momenta = new_params, new_momenta
    keys = list(per_step[0]["rows"])
    summary = {
        k: {
            m: float(np.mean([s["rows"][k][m] for s in per_step]))
            for m in ("rel", "bias", "gain", "rms", "sign_flips")
        }
        for k in keys
    }
    return {"steps": steps, "summary": summary, "per_step": per_step}


def _print(summary: dict, per_step: list) -> None:
    print(f"{'tensor':28s} {'rel':>8s} {'bias':>9s} {'gain':>8s} {'rms':>9s} {'flips':>9s}")
    for k, r in summary.items():
        print(
            f"{k:28s} {r['rel']:8.4f} {r['bias']:+9.4f} {r['gain']:8.4f} {r['rms']:9.2e}"
            f" {r['sign_flips']:9.2e}"
        )
    for s in per_step:
        ls = s["losses"]
        print(
            f"step {s['step']:3d} d_loss secure {ls['secure']['d_loss']:.4f} plain {ls['plain']['d_loss']:.4f}"
            f"  g_loss secure {ls['secure']['g_loss']:.4f} plain {ls['plain']['g_loss']:.4f}"
        )


def main(argv=None) -> None:
    from egan_jax.lpgan.owner import load_experiment

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", default="experiments/lpgan_digits.py")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--start", type=int, default=0, help="first traced step")
    parser.add_argument("--every", type=int, default=1, help="plaintext steps between traces")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    config = dataclasses.replace(load_experiment(args.experiment), seed=args.seed)
    result = run_trace(config, args.steps, args.start, args.every)
    _print(result["summary"], result["per_step"])
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
