"""Keyed transform pipelines (images, latents) built from config data.

>>> pipe = Pipeline.from_config({"block": 4, "steps": ["shuffle", "np", "ffx"]}, key)
>>> y = pipe.forward(x)          # [N, H, W, C] float32 in [-1, 1] (or uint8)
>>> x_again = pipe.inverse(y)    # steps undone in reverse order

Config fields (JSON data, no key material): ``block`` (block size M, required), ``steps`` (names from
:data:`STEPS`, applied in order, each at most once), ``channels`` (default 3) and ``ffx_variant``
(``"decimal"`` default, or ``"binary"``). Step names map to transforms through the :data:`STEPS`
registry.

Execution is fused: every position permutation (block shuffle, channel shuffle) is composed on the
host into one full-image index map, the per-position operations (negative/positive, FFX) are
re-indexed to output positions, so a forward pass is one gather plus elementwise work, compiled once
per image shape with the material as constants. It computes exactly what applying the steps one by
one does (tests check bit equality).

:class:`LatentPipeline` does the same for latent vectors ``[N, D]`` from
``{"dim": D, "steps": [...], "radius": r, "margin": m}`` with steps from :data:`LATENT_STEPS`
(``perm``, ``sign``, ``offset``, ``halfspace``; ``latent.py`` explains why regions are needed).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from egan_jax.errors import ConfigError, ShapeError
from egan_jax.keys import SecretKey
from egan_jax.transforms import block, feature, latent
from egan_jax.transforms.common import KeyMaterial, check_images, near_miss, sharding_safe


@dataclasses.dataclass(frozen=True)
class Step:
    """A registry entry: how to derive a step's material and what the step does.

    ``kind`` is ``"permutation"`` (material has ``index_map(H, W)``) or ``"negate"`` / ``"ffx"``
    (material has ``position_mask(H, W)``); ``forward``/``inverse`` are the standalone functions.
    """

    make: Callable[[SecretKey, Mapping], KeyMaterial]
    kind: str
    forward: Callable
    inverse: Callable


STEPS: dict[str, Step] = {
    "shuffle": Step(
        lambda key, cfg: block.BlockShuffleMaterial.from_key(
            key, block_size=cfg["block"], channels=cfg["channels"]
        ),
        "permutation",
        block.block_shuffle,
        block.block_unshuffle,
    ),
    "np": Step(
        lambda key, cfg: block.NegPosMaterial.from_key(
            key, block_size=cfg["block"], channels=cfg["channels"]
        ),
        "negate",
        block.negpos,
        block.negpos,
    ),
    "ffx": Step(
        lambda key, cfg: block.FfxMaterial.from_key(
            key, block_size=cfg["block"], channels=cfg["channels"], variant=cfg["ffx_variant"]
        ),
        "ffx",
        block.ffx,
        block.ffx_inverse,
    ),
    "channel": Step(
        lambda key, cfg: feature.ChannelShuffleMaterial.from_key(key, channels=cfg["channels"]),
        "permutation",
        feature.channel_shuffle,
        feature.channel_unshuffle,
    ),
}

DEFAULTS = {"channels": 3, "ffx_variant": "decimal"}
FIELDS = ("block", "steps", "channels", "ffx_variant")


def validate_config(config: Mapping) -> dict:
    """The config with defaults filled in; :class:`ConfigError` naming the bad field otherwise."""
    if not isinstance(config, Mapping):
        raise ConfigError(
            f"a transform config must be a mapping with fields {FIELDS}, got {config!r}"
        )
    unknown = sorted(set(config) - set(FIELDS))
    if unknown:
        raise ConfigError(
            f"unknown transform config field(s) {unknown}; valid fields: {list(FIELDS)}"
        )
    if "block" not in config or "steps" not in config:
        raise ConfigError(
            "transform config needs 'block' (block size M) and 'steps' (list of names)"
        )
    cfg = {**DEFAULTS, **config}
    for name in ("block", "channels"):
        value = cfg[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"transform config field {name!r} must be a positive int, got {value!r}"
            )
    if cfg["ffx_variant"] not in block.FFX_CODES:
        raise ConfigError(
            f"transform config field 'ffx_variant' is {cfg['ffx_variant']!r}; "
            f"valid: {sorted(block.FFX_CODES)}"
        )
    steps = cfg["steps"]
    if isinstance(steps, str) or not isinstance(steps, list | tuple) or not steps:
        raise ConfigError(f"transform config field 'steps' must be a non-empty list, got {steps!r}")
    for step in steps:
        if step not in STEPS:
            raise ConfigError(
                f"transform config field 'steps' has unknown step {step!r}; valid: {sorted(STEPS)}"
            )
    repeated = sorted({s for s in steps if list(steps).count(s) > 1})
    if repeated:
        raise ConfigError(
            f"transform config field 'steps' repeats {repeated}; each step may appear once "
            "(a second FFX would re-quantise codes and lose the inverse)"
        )
    cfg["steps"] = list(steps)
    return cfg


@dataclasses.dataclass(frozen=True)
class Plan:
    """The fused form of a pipeline for one image size (host-side numpy constants)."""

    index_map: np.ndarray | None  # None: no permutation step
    ops: tuple[tuple[str, KeyMaterial, np.ndarray], ...]  # (kind, material, selected [H·W·C])


def build_plan(materials, height: int, width: int) -> Plan:
    """Compose permutations into one index map; re-index per-position ops to output positions."""
    index_map = None
    ops: list[tuple[str, KeyMaterial, np.ndarray]] = []
    for name, material in materials:
        kind = STEPS[name].kind
        if kind == "permutation":
            perm = material.index_map(height, width)
            index_map = perm if index_map is None else index_map[perm]
            ops = [(k, m, selected[perm]) for k, m, selected in ops]
        else:
            ops.append((kind, material, material.position_mask(height, width)))
    return Plan(index_map, tuple(ops))


def apply_plan(plan: Plan, x: jax.Array) -> jax.Array:
    y = x if plan.index_map is None else block.gather_positions(x, plan.index_map)
    for kind, material, selected in plan.ops:
        if kind == "negate":
            y = block.negate_positions(y, selected)
        else:
            y = block.ffx_positions(material, y, selected)
    return y


def invert_plan(plan: Plan, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The inverse and the number of undecodable FFX codes met on the way (0 for a valid input).

    The un-permuting gather comes first and the per-position inverses follow with their masks
    re-indexed to source positions (``selected[inverse_map]``): the same gather-then-elementwise
    shape as the forward pass, so XLA fuses it the same way.
    """
    invalid = jnp.zeros((), jnp.int32)
    ops = plan.ops
    if plan.index_map is not None:
        inverse_map = np.argsort(plan.index_map).astype(np.int32)
        y = block.gather_positions(y, inverse_map)
        ops = tuple((kind, material, selected[inverse_map]) for kind, material, selected in ops)
    for kind, material, selected in reversed(ops):
        if kind == "negate":
            y = block.negate_positions(y, selected)
        else:
            invalid = invalid + jnp.sum(block.ffx_invalid(material, y, selected), dtype=jnp.int32)
            y = block.ffx_inverse_positions(material, y, selected)
    return y, invalid


def near_miss_step(
    materials: tuple[tuple[str, KeyMaterial], ...], rng_seed: int, step: str | None = None
) -> tuple[tuple[str, KeyMaterial], ...]:
    """``materials`` with one step's material changed minimally (default: the first step)."""
    names = [name for name, _ in materials]
    target = names[0] if step is None else step
    if target not in names:
        raise ConfigError(f"near_miss step {target!r} is not in this pipeline's steps {names}")
    return tuple((name, near_miss(m, rng_seed) if name == target else m) for name, m in materials)


class Pipeline:
    """Keyed image transforms applied in order (``forward``) and undone in reverse (``inverse``)."""

    def __init__(
        self, config: Mapping, materials: tuple[tuple[str, KeyMaterial], ...], fingerprint: str
    ):
        self._config = validate_config(config)
        self.materials = tuple(materials)
        self.fingerprint = fingerprint
        self._plans: dict[tuple[int, int], Plan] = {}
        self._forward = jax.jit(
            lambda x: sharding_safe(functools.partial(apply_plan, self.plan(*x.shape[1:3])), x)
        )
        self._inverse = jax.jit(
            lambda y: sharding_safe(functools.partial(invert_plan, self.plan(*y.shape[1:3])), y)
        )

    @classmethod
    def from_config(cls, config: Mapping, key: SecretKey) -> Pipeline:
        """Derive every step's material from ``key`` (host side, once)."""
        cfg = validate_config(config)
        materials = tuple((name, STEPS[name].make(key, cfg)) for name in cfg["steps"])
        return cls(cfg, materials, key.fingerprint)

    @property
    def config(self) -> dict:
        """JSON-able config (no key material); ``from_config(p.config, key)`` rebuilds ``p``."""
        return {**self._config, "steps": list(self._config["steps"])}

    @property
    def block_size(self) -> int:
        return self._config["block"]

    def plan(self, height: int, width: int) -> Plan:
        if (height, width) not in self._plans:
            self._plans[(height, width)] = build_plan(self.materials, height, width)
        return self._plans[(height, width)]

    def _check(self, x, what: str, dtypes: tuple[str, ...]):
        cfg = self._config
        return check_images(
            x, block_size=cfg["block"], channels=cfg["channels"], what=what, dtypes=dtypes
        )

    def forward(self, x: jax.Array) -> jax.Array:
        """Apply the steps in order. ``x``: ``[N, H, W, C]`` uint8 or float32 in [-1, 1]."""
        return self._forward(self._check(x, "Pipeline.forward", ("uint8", "float32")))

    def inverse(self, y: jax.Array) -> jax.Array:
        """Undo :meth:`forward`; undecodable FFX codes raise when ``y`` is concrete (NaN/0 under jit)."""
        y = self._check(y, "Pipeline.inverse", ("uint8", "uint16", "float32"))
        x, invalid = self._inverse(y)
        if not isinstance(y, jax.core.Tracer) and int(invalid):
            raise ShapeError(
                f"Pipeline.inverse: {int(invalid)} values are not valid FFX codes for this key; the "
                "input was not produced by this pipeline's forward() or was modified afterwards"
            )
        return x

    def near_miss(self, rng_seed: int, step: str | None = None) -> Pipeline:
        """This pipeline with one step's material changed minimally (default: the first step)."""
        materials = near_miss_step(self.materials, rng_seed, step)
        return Pipeline(self._config, materials, self.fingerprint + "~near")

    def __repr__(self) -> str:
        cfg = self._config
        return f"Pipeline(steps={cfg['steps']}, block={cfg['block']}, fingerprint={self.fingerprint!r})"


# --- latent pipelines ---------------------------------------------------------------------------
LATENT_STEPS: dict[str, Step] = {
    "perm": Step(
        lambda key, cfg: latent.LatentPermMaterial.from_key(key, dim=cfg["dim"]),
        "latent",
        latent.latent_permute,
        latent.latent_unpermute,
    ),
    "sign": Step(
        lambda key, cfg: latent.LatentSignMaterial.from_key(key, dim=cfg["dim"]),
        "latent",
        latent.latent_sign_flip,
        latent.latent_sign_flip,
    ),
    "offset": Step(
        lambda key, cfg: latent.LatentOffsetMaterial.from_key(
            key, dim=cfg["dim"], radius=cfg["radius"]
        ),
        "latent",
        latent.latent_offset,
        latent.latent_offset_inverse,
    ),
    "halfspace": Step(
        lambda key, cfg: latent.LatentHalfSpaceMaterial.from_key(
            key, dim=cfg["dim"], margin=cfg["margin"]
        ),
        "latent",
        latent.latent_halfspace,
        latent.latent_halfspace_inverse,
    ),
}
LATENT_DEFAULTS = {"radius": 1.0, "margin": 2.0}
LATENT_FIELDS = ("dim", "steps", "radius", "margin")


def validate_latent_config(config: Mapping) -> dict:
    """The latent config with defaults filled in; :class:`ConfigError` naming the bad field."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"a latent config must be a mapping with fields {LATENT_FIELDS}")
    unknown = sorted(set(config) - set(LATENT_FIELDS))
    if unknown:
        raise ConfigError(
            f"unknown latent config field(s) {unknown}; valid fields: {list(LATENT_FIELDS)}"
        )
    if "dim" not in config or "steps" not in config:
        raise ConfigError("latent config needs 'dim' (latent size D) and 'steps' (list of names)")
    cfg = {**LATENT_DEFAULTS, **config}
    if isinstance(cfg["dim"], bool) or not isinstance(cfg["dim"], int) or cfg["dim"] < 1:
        raise ConfigError(f"latent config field 'dim' must be a positive int, got {cfg['dim']!r}")
    for name in ("radius", "margin"):
        value = cfg[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ConfigError(
                f"latent config field {name!r} must be a positive number, got {value!r}"
            )
        cfg[name] = float(value)
    steps = cfg["steps"]
    if isinstance(steps, str) or not isinstance(steps, list | tuple) or not steps:
        raise ConfigError(f"latent config field 'steps' must be a non-empty list, got {steps!r}")
    for step in steps:
        if step not in LATENT_STEPS:
            raise ConfigError(
                f"latent config field 'steps' has unknown step {step!r}; valid: {sorted(LATENT_STEPS)}"
            )
    cfg["steps"] = list(steps)
    return cfg


class LatentPipeline:
    """Keyed latent transforms from config, e.g. ``{"dim": 128, "steps": ["perm", "offset"]}``."""

    def __init__(self, config: Mapping, materials, fingerprint: str):
        self._config = validate_latent_config(config)
        self.materials = tuple(materials)
        self.fingerprint = fingerprint

    @classmethod
    def from_config(cls, config: Mapping, key: SecretKey) -> LatentPipeline:
        cfg = validate_latent_config(config)
        materials = tuple((name, LATENT_STEPS[name].make(key, cfg)) for name in cfg["steps"])
        return cls(cfg, materials, key.fingerprint)

    @property
    def config(self) -> dict:
        return {**self._config, "steps": list(self._config["steps"])}

    def forward(self, z: jax.Array) -> jax.Array:
        """Apply the steps in order to latents ``[N, D]`` float32."""
        for name, material in self.materials:
            z = LATENT_STEPS[name].forward(material, z)
        return z

    def inverse(self, y: jax.Array) -> jax.Array:
        for name, material in reversed(self.materials):
            y = LATENT_STEPS[name].inverse(material, y)
        return y

    def near_miss(self, rng_seed: int, step: str | None = None) -> LatentPipeline:
        """This pipeline with one step's material changed minimally (default: the first step)."""
        materials = near_miss_step(self.materials, rng_seed, step)
        return LatentPipeline(self._config, materials, self.fingerprint + "~near")

    def __repr__(self) -> str:
        cfg = self._config
        return f"LatentPipeline(steps={cfg['steps']}, dim={cfg['dim']}, fingerprint={self.fingerprint!r})"
