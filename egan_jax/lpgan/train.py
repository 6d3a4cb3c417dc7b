"""Secure GAN training step on shares, its plaintext twin, and the state the servers keep.

One step (as the engine's DCGAN step, one discriminator update then one generator update):
  fake = G(z_d); logits = D([real, fake]); D ← update(∂loss_D); fake = G(z_g); D(fake);
  backward through D (input gradient only) and G; G ← update(∂loss_G).

Loss: "nonsaturating" (default; the original GAN loss LP-GAN trains with): the gradient of the mean
loss with respect to a logit is (σ(l) − target)/N, so the loss needs one secure sigmoid on the logits
and nothing else; σ is bounded, so a fixed-point error cannot blow up, and the logs of the loss itself
are never computed on shares. "hinge": the gradient is an indicator (one comparison, exact) for D and
the constant −1/N for G (no communication at all): cheaper still, offered as the alternative.

Optimiser: SGD with momentum, chosen over Adam because its update is linear: the whole update is local
(public-constant products and truncation, no round, no byte), while Adam needs a secure inverse square
root of the second moment for every parameter at every step (18 rounds, ~0.23 KB per parameter per
party here). Fixed point at 16 fractional bits cannot hold a step lr·m near 1e-5, so each party
keeps master weights at 16 + 8 fractional bits and derives the working 16-bit weights by a local
truncation (mixed precision, as fp16 training keeps fp32 masters); and the loss gradient is scaled
by 2^loss_scale_bits (a free public shift) so that the small gradients reaching the generator keep
more significant bits, the scale coming off in the update (loss scaling, as in fp16 training).

Learning-rate schedule ("constant", "linear" or "cosine" decay towards 0 over ``steps``): the rate of
a step is a public number (both servers know the schedule and the step), so a schedule costs nothing
on shares; it is encoded with enough fractional bits to keep 11 significant bits however small it
gets, and the extra bits come off in the update's truncation (`sgd_update`). ``d_lr_scale`` runs the
discriminator at a fraction of the generator's rate (as two-time-scale GAN training does, here slower):
a public constant again, free on shares. A negative momentum (μ < 0, experiments/lpgan_digits.py)
damps the game's rotation: the plaintext trajectory is then no longer chaotic, so one seed's secure and
plaintext runs end at the same Fréchet distance (README, LP-GAN).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from egan_jax.errors import ConfigError
from egan_jax.lpgan.model import (
    ModelConfig,
    discriminator_layers,
    generator_layers,
    init_params,
    param_names,
    plain_forward,
    secure_backward,
    secure_forward,
)
from egan_jax.mpc import arith, compare, nonlinear, ring
from egan_jax.mpc.elementwise import check_backend
from egan_jax.mpc.protocols import Party

MASTER_EXTRA_BITS = 8
LOSSES = ("nonsaturating", "hinge")
LR_SCHEDULES = ("constant", "linear", "cosine")
LR_MANTISSA_BITS = 11


@dataclass(frozen=True)
class LpganConfig:
    """An LP-GAN run (data, model, optimiser, schedule); public, so both servers receive it."""

    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: str = "digits"
    steps: int = 200
    batch_size: int = 16
    learning_rate: float = 0.05
    lr_schedule: str = "constant"
    d_lr_scale: float = 1.0
    momentum: float = 0.5
    loss: str = "nonsaturating"
    seed: int = 0
    checkpoint_every: int = 1
    log_every: int = 10
    num_samples: int = 64
    frac_bits: int = ring.FRAC_BITS
    loss_scale_bits: int = 6
    local_backend: str = "numpy"  # element-wise share arithmetic: "numpy" (faster here) or "jax"

    def __post_init__(self):
        check_backend(self.local_backend)
        if self.loss not in LOSSES:
            raise ConfigError(f"loss={self.loss!r} is unknown; use one of {LOSSES}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"lr_schedule={self.lr_schedule!r} is unknown; use one of {LR_SCHEDULES}"
            )
        if not 1 <= self.batch_size <= 256 or self.steps < 0:
            raise ConfigError("batch_size must be in [1, 256] and steps >= 0")
        if not 0 <= self.loss_scale_bits <= self.frac_bits - MASTER_EXTRA_BITS + 8:
            raise ConfigError(f"loss_scale_bits must be in [0, 16], got {self.loss_scale_bits}")
        if not -1 < self.momentum < 1 or self.learning_rate <= 0 or self.d_lr_scale <= 0:
            raise ConfigError("need -1 < momentum < 1, learning_rate > 0 and d_lr_scale > 0")


def learning_rate_at(config: LpganConfig, step: int) -> float:
    """The (public) learning rate of step ``step`` (0-based): constant, or decayed linearly or by a
    half cosine from ``learning_rate`` at step 0 towards 0 after the last step (never 0 itself)."""
    if config.lr_schedule == "constant" or config.steps == 0:
        return config.learning_rate
    t = min(step, config.steps - 1) / config.steps
    if config.lr_schedule == "linear":
        return config.learning_rate * (1.0 - t)
    return config.learning_rate * 0.5 * (1.0 + np.cos(np.pi * t))


def _encode_rate(lr: float, frac_bits: int) -> tuple[int, int]:
    """A public rate as (integer, extra bits): lr ≈ integer / 2^(frac_bits + extra), with at least
    `LR_MANTISSA_BITS` significant bits (extra 0 for rates ≥ 2^(LR_MANTISSA_BITS-1-frac_bits))."""
    extra = max(0, LR_MANTISSA_BITS - 1 - int(np.floor(np.log2(lr * 2.0**frac_bits))))
    return int(round(lr * 2.0 ** (frac_bits + extra))), extra


def networks(config: LpganConfig) -> dict[str, list]:
    return {"g": generator_layers(config.model), "d": discriminator_layers(config.model)}


def initial_params(config: LpganConfig) -> dict[str, dict[str, np.ndarray]]:
    """The owner's plaintext initial weights (numpy, float64), a pure function of the seed."""
    rng = np.random.default_rng(config.seed)
    return {net: init_params(layers, rng) for net, layers in networks(config).items()}


def state_names(config: LpganConfig) -> list[str]:
    """Fixed order of every array a server keeps: master weights and momenta of both nets."""
    return [
        f"{net}.{kind}.{name}"
        for net, layers in networks(config).items()
        for kind in ("master", "momentum")
        for name in param_names(layers)
    ]


def encode_state(config: LpganConfig, params: dict) -> dict[str, np.ndarray]:
    """Plaintext weights -> the ring state (masters at f + 8 fractional bits, zero momenta)."""
    bits = config.frac_bits + MASTER_EXTRA_BITS
    state = {}
    for net, net_params in params.items():
        for name, value in net_params.items():
            state[f"{net}.master.{name}"] = ring.encode(value, bits)
            state[f"{net}.momentum.{name}"] = np.zeros(np.shape(value), np.uint64)
    return state


def share_state(state: dict, prg: ring.Prg) -> tuple[dict, dict]:
    halves = {k: ring.share(v, prg) for k, v in state.items()}
    return {k: h[0] for k, h in halves.items()}, {k: h[1] for k, h in halves.items()}


def decode_params(config: LpganConfig, state: dict, net: str) -> dict[str, np.ndarray]:
    """Reconstructed ring state -> plaintext weights of one net (float64)."""
    prefix = f"{net}.master."
    bits = config.frac_bits + MASTER_EXTRA_BITS
    return {
        k[len(prefix) :]: ring.decode(v, bits) for k, v in state.items() if k.startswith(prefix)
    }


def working_params(party: Party, state: dict, net: str) -> dict[str, np.ndarray]:
    prefix = f"{net}.master."
    return {
        k[len(prefix) :]: arith.truncate(party, v, MASTER_EXTRA_BITS)
        for k, v in state.items()
        if k.startswith(prefix)
    }


def sgd_update(
    party: Party, config: LpganConfig, state: dict, net: str, grads: dict, lr: float | None = None
) -> dict:
    """m ← μ·m + g; master ← master − lr·m (at f + 8 fractional bits). Local: no communication.

    g (and so m) carry the loss scale 2^loss_scale_bits; it comes off in the truncation of lr·m,
    with the rate's extra bits (`_encode_rate`). ``lr``: this step's rate (default the base rate)."""
    state = dict(state)
    rate, extra = _encode_rate(config.learning_rate if lr is None else lr, party.frac_bits)
    rate = np.uint64(rate)
    for name, grad in grads.items():
        m = arith.mul_public(party, state[f"{net}.momentum.{name}"], config.momentum) + grad
        state[f"{net}.momentum.{name}"] = m
        shift = party.frac_bits - MASTER_EXTRA_BITS + config.loss_scale_bits + extra
        step = arith.truncate(party, m * rate, shift)
        state[f"{net}.master.{name}"] = state[f"{net}.master.{name}"] - step
    return state


def _logit_grads(
    party: Party, loss: str, logits: np.ndarray, targets: np.ndarray, n: int
) -> np.ndarray:
    """Shares of ∂loss/∂logit for public 0/1 targets (one per row); the loss is a sum of per-pair
    terms averaged over n (the batch: a real and a fake logit make one term of the D loss)."""
    targets = targets.reshape(logits.shape)
    if loss == "nonsaturating":
        grad = nonlinear.sigmoid(party, logits) - ring.encode(targets, party.frac_bits) * np.uint64(
            party.id == 0
        )
        return arith.mul_public(party, grad, 1.0 / n)  # scaled by the caller
    # hinge: real (target 1): −[l < 1]; fake (target 0): [l > −1] = [−l < 1]
    sign = np.where(targets > 0, 1, -1).astype(np.int64)
    margin = party.add_public(ring.mul_int(logits, sign), -1.0)  # ±l − 1
    active = compare.msb(party, margin)  # [±l < 1], an integer share
    weight = ring.encode(-sign / n, party.frac_bits)
    return ring.mul_int(active, weight.view(np.int64))


def _generator_logit_grad(party: Party, loss: str, logits: np.ndarray) -> np.ndarray:
    if loss == "nonsaturating":
        return _logit_grads(party, loss, logits, np.ones(logits.shape[0]), logits.shape[0])
    return party.add_public(np.zeros_like(logits), -1.0 / logits.shape[0])  # −D(G(z)): constant


def secure_train_step(
    party: Party,
    config: LpganConfig,
    state: dict,
    real: np.ndarray,
    z_d: np.ndarray,
    z_g: np.ndarray,
    *,
    step: int = 0,
    trace: dict | None = None,
) -> tuple[dict, dict[str, np.ndarray]]:
    """One training step (number ``step``, 0-based: it sets the scheduled rate) on shares. Returns
    (new state shares, logit shares for the owner's losses): "real", "fake" (the discriminator
    step) and "generator" (the generator step). ``trace`` (a dict) also receives the shares of
    every intermediate tensor (`egan_jax.lpgan.trace`)."""
    nets = networks(config)
    g, d = nets["g"], nets["d"]
    n = real.shape[0]
    lr = learning_rate_at(config, step)
    g_params, d_params = working_params(party, state, "g"), working_params(party, state, "d")

    record = trace is not None
    acts: dict[str, list] = {k: [] for k in ("g_d", "d_d", "g_g", "d_g")} if record else {}
    fake, _ = secure_forward(party, g, g_params, z_d, outputs=acts.get("g_d"))
    logits, caches = secure_forward(
        party, d, d_params, np.concatenate([real, fake]), outputs=acts.get("d_d")
    )
    targets = np.concatenate([np.ones(n), np.zeros(n)])
    scale = np.uint64(1 << config.loss_scale_bits)
    d_loss_grad = _logit_grads(party, config.loss, logits, targets, n) * scale
    _, d_grads = secure_backward(party, d, d_params, caches, d_loss_grad)
    state = sgd_update(party, config, state, "d", d_grads, lr * config.d_lr_scale)

    new_d_params = working_params(party, state, "d")
    fake, g_caches = secure_forward(party, g, g_params, z_g, outputs=acts.get("g_g"))
    g_logits, d_caches = secure_forward(party, d, new_d_params, fake, outputs=acts.get("d_g"))
    g_loss_grad = _generator_logit_grad(party, config.loss, g_logits) * scale
    d_fake, _ = secure_backward(
        party, d, new_d_params, d_caches, g_loss_grad, input_grad=True, param_grads=False
    )
    _, g_grads = secure_backward(party, g, g_params, g_caches, d_fake)
    state = sgd_update(party, config, state, "g", g_grads, lr)
    outputs = {"real": logits[:n, 0], "fake": logits[n:, 0], "generator": g_logits[:, 0]}
    if record:
        trace.update({f"act.{k}.{i}": v for k, vs in acts.items() for i, v in enumerate(vs)})
        trace.update({"grad.d_logit": d_loss_grad, "grad.g_logit": g_loss_grad})
        trace["grad.fake_image"] = d_fake
        trace.update({f"grad.d.{k}": v for k, v in d_grads.items()})
        trace.update({f"grad.g.{k}": v for k, v in g_grads.items()})
    return state, outputs


def secure_generate(party: Party, config: LpganConfig, state: dict, z: np.ndarray) -> np.ndarray:
    """Shares of G(z) (batch statistics in batch norm, as in training)."""
    images, _ = secure_forward(party, networks(config)["g"], working_params(party, state, "g"), z)
    return images


# ---- the plaintext twin ---------------------------------------------------------------------


def logit_losses(loss: str, real, fake, generator) -> dict[str, float]:
    """Mean losses from logits (what the owner computes from its reconstructed logits)."""
    real, fake, generator = (np.asarray(v, np.float64) for v in (real, fake, generator))
    if loss == "nonsaturating":
        softplus = lambda t: np.logaddexp(0.0, t)  # noqa: E731
        d = np.mean(softplus(-real) + softplus(fake))
        g = np.mean(softplus(-generator))
    else:
        d = np.mean(np.maximum(0, 1 - real) + np.maximum(0, 1 + fake))
        g = np.mean(-generator)
    return {"d_loss": float(d), "g_loss": float(g)}


def step_losses(loss: str, logits) -> dict[str, float]:
    """`logit_losses` from a step's logits by name ("real", "fake", "generator"). Never by position:
    a jitted step returns its dict with the keys sorted (fake, generator, real)."""
    return logit_losses(loss, logits["real"], logits["fake"], logits["generator"])


def _plain_losses(loss: str):
    if loss == "nonsaturating":
        d_loss = lambda r, f: jnp.mean(jax.nn.softplus(-r) + jax.nn.softplus(f))  # noqa: E731
        return d_loss, lambda f: jnp.mean(jax.nn.softplus(-f))
    d_loss = lambda r, f: jnp.mean(jax.nn.relu(1 - r) + jax.nn.relu(1 + f))  # noqa: E731
    return d_loss, lambda f: jnp.mean(-f)


def make_plain_step(config: LpganConfig):
    """The same step in plaintext JAX (float; jit it): (params, momenta, real, z_d, z_g[, lr]) ->
    (params, momenta, logits dict). params/momenta: {"g": {...}, "d": {...}}; lr: this step's rate,
    `learning_rate_at` (default the base rate)."""
    nets = networks(config)
    g, d = nets["g"], nets["d"]
    d_loss, g_loss = _plain_losses(config.loss)
    mu = config.momentum

    def update(params, momenta, grads, lr):
        momenta = jax.tree.map(lambda m, gr: mu * m + gr, momenta, grads)
        return jax.tree.map(lambda p, m: p - lr * m, params, momenta), momenta

    def step(params, momenta, real, z_d, z_g, lr=None):
        lr = config.learning_rate if lr is None else lr
        n = real.shape[0]
        fake = plain_forward(g, params["g"], z_d)

        def d_objective(dp):
            logits = plain_forward(d, dp, jnp.concatenate([real, fake]))[:, 0]
            return d_loss(logits[:n], logits[n:]), logits

        (_, logits), d_grads = jax.value_and_grad(d_objective, has_aux=True)(params["d"])
        new_d, mom_d = update(params["d"], momenta["d"], d_grads, lr * config.d_lr_scale)

        def g_objective(gp):
            g_logits = plain_forward(d, new_d, plain_forward(g, gp, z_g))[:, 0]
            return g_loss(g_logits), g_logits

        (_, g_logits), g_grads = jax.value_and_grad(g_objective, has_aux=True)(params["g"])
        new_g, mom_g = update(params["g"], momenta["g"], g_grads, lr)
        out = {"real": logits[:n], "fake": logits[n:], "generator": g_logits}
        return {"g": new_g, "d": new_d}, {"g": mom_g, "d": mom_d}, out

    return step


def latents(config: LpganConfig, step: int, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The owner's latent draws (z_d, z_g) for a step: a pure function of (seed, step)."""
    rng = np.random.default_rng([config.seed, 1, step])
    n = config.batch_size if n is None else n
    return (
        rng.normal(size=(n, config.model.latent_dim)),
        rng.normal(size=(n, config.model.latent_dim)),
    )
