"""EGAN protection losses: feature divergences, the bounded self-adversarial term, the NTL-style
product form, and their composition with the task loss from config data.

Every loss is a pure function in the style of `optax.losses`: arrays with a leading batch axis N,
keyword-only hyperparameters, a per-example result of shape [N] that the caller reduces. EGAN
(Zhu et al., Mathematics 2025) publishes only the idea — maximise the feature divergence between
authorized and unauthorized inputs — so every choice here (distances, margin, product form) is ours.

The self-adversarial term is bounded: `−min(d, margin)`. Without the bound the generator could lower
its loss forever by inflating unauthorized features; with it, the term is flat (zero gradient) once
the two feature sets are `margin` apart, and the task loss decides everything else.

`compose(config)` turns `{"task": 1.0, "self_adversarial": {"weight": 0.5, "divergence": "l1",
"margin": 1.0, "features": "output"}}` into one function of named inputs returning the weighted sum
(a scalar) and each term's mean. Names go through registries (`DIVERGENCES`, `TERMS`, `FEATURES`);
unknown names raise `ConfigError` listing the valid ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import chex
import jax
import jax.numpy as jnp

from egan_jax.errors import ConfigError

Divergence = Callable[..., jax.Array]


def _flat(x: jax.Array) -> jax.Array:
    return x.reshape(x.shape[0], -1)


def _check_pair(a: jax.Array, b: jax.Array) -> None:
    chex.assert_equal_shape([a, b])
    if a.ndim < 2:
        raise ConfigError(
            f"feature divergences need a batch axis and at least one feature axis, got shape "
            f"{a.shape}; pass features [N, ...]"
        )


def l1_divergence(features_a: jax.Array, features_b: jax.Array) -> jax.Array:
    """Mean absolute difference per example.

    Args:
      features_a, features_b: [N, ...] paired features (example i of one is paired with i of the
        other, e.g. the same latent through the authorized and an unauthorized path).

    Returns:
      [N]: mean over the non-batch axes of |a − b|.
    """
    _check_pair(features_a, features_b)
    return jnp.mean(jnp.abs(_flat(features_a) - _flat(features_b)), axis=1)


def l2_divergence(features_a: jax.Array, features_b: jax.Array) -> jax.Array:
    """Mean squared difference per example: [N, ...] × 2 -> [N]."""
    _check_pair(features_a, features_b)
    return jnp.mean(jnp.square(_flat(features_a) - _flat(features_b)), axis=1)


def cosine_divergence(
    features_a: jax.Array, features_b: jax.Array, *, epsilon: float = 1e-8
) -> jax.Array:
    """Cosine distance per example, 1 − cos(a, b) ∈ [0, 2], of the flattened features.

    Args:
      features_a, features_b: [N, ...] paired features.
      epsilon: added to the norms so that zero vectors give distance 1, not NaN.

    Returns:
      [N].
    """
    _check_pair(features_a, features_b)
    a, b = _flat(features_a), _flat(features_b)
    dot = jnp.sum(a * b, axis=1)
    norms = jnp.linalg.norm(a, axis=1) * jnp.linalg.norm(b, axis=1)
    return 1.0 - dot / (norms + epsilon)


def mmd_divergence(
    features_a: jax.Array,
    features_b: jax.Array,
    *,
    kernels: int = 5,
    kernel_multiplier: float = 2.0,
) -> jax.Array:
    """Gaussian-kernel MMD² between the two feature *sets* (a batch-level quantity).

    The kernel is a sum of `kernels` Gaussians whose bandwidths are the mean pairwise squared
    distance of the pooled batch times `kernel_multiplier ** (i − kernels // 2)` (the bandwidth
    is data-driven and not differentiated through), as in non-transferable learning (Wang et al.,
    ICLR 2022) and Long et al. (DAN, ICML 2015). Biased estimate: mean K_aa + mean K_bb − 2 mean K_ab.

    Args:
      features_a: [N, ...]; features_b: [M, ...] with the same feature shape (N may differ from M).

    Returns:
      [N]: the batch's MMD² broadcast to every example of `features_a`, so that it composes with
      per-example terms; its mean is the MMD².
    """
    a, b = _flat(features_a), _flat(features_b)
    chex.assert_equal_shape_suffix([a, b], 1)
    pooled = jnp.concatenate([a, b])
    squared = jnp.sum(jnp.square(pooled[:, None, :] - pooled[None, :, :]), axis=-1)
    count = pooled.shape[0]
    bandwidth = jax.lax.stop_gradient(jnp.sum(squared) / (count * count - count) + 1e-12)
    scales = bandwidth * kernel_multiplier ** (jnp.arange(kernels) - kernels // 2)
    kernel = jnp.sum(jnp.exp(-squared[None] / scales[:, None, None]), axis=0)
    n = a.shape[0]
    k_aa, k_bb, k_ab = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    mmd = jnp.mean(k_aa) + jnp.mean(k_bb) - 2.0 * jnp.mean(k_ab)
    return jnp.broadcast_to(mmd, (n,))


DIVERGENCES: dict[str, Divergence] = {
    "l1": l1_divergence,
    "l2": l2_divergence,
    "cosine": cosine_divergence,
    "mmd": mmd_divergence,
}


def get_divergence(name: str) -> Divergence:
    try:
        return DIVERGENCES[name]
    except KeyError:
        raise ConfigError(
            f"unknown divergence {name!r}; valid divergences: {sorted(DIVERGENCES)}"
        ) from None


def self_adversarial(
    features_auth: jax.Array,
    features_unauth: jax.Array,
    *,
    divergence: str = "l1",
    margin: float = 1.0,
) -> jax.Array:
    """The bounded self-adversarial term −min(d(φ_a, φ_u), margin), per example.

    Minimising it maximises the divergence between features of authorized and unauthorized
    inputs until they are `margin` apart; beyond that its gradient is zero.

    Args:
      features_auth: [N, ...] features of G(a_k(x)).
      features_unauth: [N, ...] features of G(u(x)) for the same x (MMD: any [M, ...]).
      divergence: a key of `DIVERGENCES`.
      margin: the bound m > 0, in the divergence's units.

    Returns:
      [N], values in [−margin, 0].
    """
    if not margin > 0:
        raise ConfigError(f"self_adversarial margin must be positive, got {margin!r}")
    distance = get_divergence(divergence)(features_auth, features_unauth)
    return -jnp.minimum(distance, margin)


def ntl_product(
    features_auth: jax.Array,
    features_unauth: jax.Array,
    unauthorized_task: jax.Array,
    *,
    divergence: str = "mmd",
    alpha: float = 0.1,
    beta: float = 0.1,
) -> jax.Array:
    """The non-transferable-learning product form −clamp(α·T_u, 0, 1)·clamp(β·d, 0, 1).

    NTL (Wang et al., ICLR 2022) multiplies the unauthorized task loss T_u (here: the generator's
    adversarial loss on unauthorized outputs, high when the discriminator rejects them) by the
    feature divergence; both factors are clamped, so the term is bounded in [−1, 0].

    Args:
      features_auth, features_unauth: paired features [N, ...].
      unauthorized_task: [N] task loss on the unauthorized outputs.
      divergence: a key of `DIVERGENCES`; alpha, beta: the two scales (0.1 in NTL).

    Returns:
      [N].
    """
    chex.assert_rank(unauthorized_task, 1)
    distance = get_divergence(divergence)(features_auth, features_unauth)
    return -jnp.clip(alpha * unauthorized_task, 0.0, 1.0) * jnp.clip(beta * distance, 0.0, 1.0)


# --- composition from config --------------------------------------------------------------------
FEATURES = ("output", "generator", "discriminator")


@dataclasses.dataclass(frozen=True)
class Term:
    """A config term: its loss from named inputs and the hyperparameters it accepts."""

    fn: Callable[..., jax.Array]
    hyper: tuple[str, ...]
    uses_features: bool


def _task(inputs: Mapping[str, Any]) -> jax.Array:
    return inputs["task"]


def _self_adversarial_term(inputs, *, features="output", **hyper):
    auth, unauth = inputs["features"][features]
    return self_adversarial(auth, unauth, **hyper)


def _ntl_term(inputs, *, features="output", **hyper):
    auth, unauth = inputs["features"][features]
    return ntl_product(auth, unauth, inputs["unauthorized_task"], **hyper)


TERMS: dict[str, Term] = {
    "task": Term(_task, (), False),
    "self_adversarial": Term(_self_adversarial_term, ("divergence", "margin", "features"), True),
    "ntl": Term(_ntl_term, ("divergence", "alpha", "beta", "features"), True),
}


def _parse_term(name: str, spec: Any) -> tuple[float, dict[str, Any]]:
    if name not in TERMS:
        raise ConfigError(f"unknown protection loss term {name!r}; valid terms: {sorted(TERMS)}")
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        return float(spec), {}
    if not isinstance(spec, Mapping) or "weight" not in spec:
        raise ConfigError(
            f"loss term {name!r} must be a weight or a mapping with 'weight', got {spec!r}"
        )
    hyper = {k: v for k, v in spec.items() if k != "weight"}
    unknown = sorted(set(hyper) - set(TERMS[name].hyper))
    if unknown:
        raise ConfigError(
            f"loss term {name!r} has unknown field(s) {unknown}; valid: "
            f"{['weight', *TERMS[name].hyper]}"
        )
    if "divergence" in hyper:
        get_divergence(hyper["divergence"])
    if hyper.get("features", "output") not in FEATURES:
        raise ConfigError(
            f"loss term {name!r} has features={hyper['features']!r}; valid: {list(FEATURES)}"
        )
    return float(spec["weight"]), hyper


def required_features(config: Mapping[str, Any]) -> set[str]:
    """Which feature kinds (`FEATURES`) the composed objective reads, for terms of weight ≠ 0."""
    needed = set()
    for name, spec in config.items():
        weight, hyper = _parse_term(name, spec)
        if weight and TERMS[name].uses_features:
            needed.add(hyper.get("features", "output"))
    return needed


def compose(config: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], tuple[jax.Array, dict]]:
    """One objective from a config of weighted terms (validated here, once).

    The returned function takes `inputs` with "task" ([N] per-example task loss), "features"
    (`{kind: (features_auth, features_unauth)}` for the kinds `required_features` names) and,
    for "ntl", "unauthorized_task" ([M]); it returns `(Σ weight·mean(term), {name: mean(term)})`.
    """
    if not isinstance(config, Mapping) or not config:
        raise ConfigError(
            f"a protection objective needs a non-empty mapping of terms, got {config!r}"
        )
    parsed = {name: _parse_term(name, spec) for name, spec in config.items()}

    def objective(inputs: Mapping[str, Any]) -> tuple[jax.Array, dict[str, jax.Array]]:
        total = jnp.zeros((), jnp.float32)
        parts = {}
        for name, (weight, hyper) in parsed.items():
            if weight == 0:
                continue
            value = jnp.mean(TERMS[name].fn(inputs, **hyper))
            parts[name] = value
            total = total + weight * value
        return total, parts

    return objective
