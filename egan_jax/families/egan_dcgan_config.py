"""The EGAN-protected DCGAN's configuration: model, loss, unauthorized-variant and watermark
sections, and the registry of designs (where the key acts). Data only; `egan_dcgan` uses it and
re-exports every name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

BATCH_NORM_MODES = ("running", "batch")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    latent_dim: int = 128
    width: int = 64
    upsample: str = "vjp"
    design: str = "feature_lock"  # a key of DESIGNS (the measured best one, see the report)
    key_file: str | None = None  # None: the public demo key
    radius: float = 3.0  # latent_offset: offset norm radius·√D
    region_margin: float = 2.0  # latent_halfspace: ⟨u, z⟩ > margin
    feature_signs: bool = True  # feature_perm / feature_lock: also flip key-chosen channel signs
    offset_gap: float = 16.0  # feature_lock: the smallest gap between two key offsets
    # generator sites (models.dcgan.GENERATOR_SITES) with a deep lock: key permutations + signs
    # derived when the owner builds the model, never stored (egan_jax.deep_lock)
    deep_lock: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class SelfAdversarialConfig:
    weight: float = 1.0
    divergence: str = "l1"
    margin: float = 1.0
    features: str = "output"  # "output" | "generator" | "discriminator"
    generator_feature: str = "block3"
    discriminator_feature: str = "final"
    ntl_weight: float = 0.0  # the NTL product form, added when > 0


@dataclasses.dataclass(frozen=True)
class UnauthorizedConfig:
    fraction: float = 0.5  # share of the batch that also runs through unauthorized variants
    no_key: bool = True
    random_keys: int = 4
    near_keys: int = 2
    near_materials: int = 2
    # share of the unauthorized examples that get a near miss of the owner's material drawn fresh
    # every step (one transposition or one sign flip; feature designs only)
    fresh_near: float = 0.0
    batch_norm: str = "running"  # "running" (eval-mode statistics) or "batch"


@dataclasses.dataclass(frozen=True)
class WatermarkConfig:
    trigger_weight: float = 0.0  # black-box: 1 − SSIM(G(a(trigger z)), G(a z) with logo)
    trigger: str = "cdf"  # a key of watermark.TRIGGERS
    logo_size: int = 0  # 0: a quarter of the image side
    logo_weight: float = 0.0  # extra 1 − SSIM inside the logo region (what verification reads)
    # the trigger pass's batch norm: "running" matches verification (eval mode); "batch" is
    # IPR-GAN's (batch statistics, running averages untouched)
    batch_norm: str = "running"
    signature_weight: float = 0.0  # white-box: sign loss on batch-norm scales
    signature: str = "EGAN"


@dataclasses.dataclass(frozen=True)
class LossConfig:
    kind: str = "hinge"
    discriminator_steps: int = 1
    adversarial_weight: float = 1.0
    self_adversarial: SelfAdversarialConfig = SelfAdversarialConfig()
    unauthorized: UnauthorizedConfig = UnauthorizedConfig()
    watermark: WatermarkConfig = WatermarkConfig()


@dataclasses.dataclass(frozen=True)
class Design:
    """Where the key acts: `kind` is an `unauthorized.ADAPTERS` name; `transform` its config."""

    kind: str
    transform: Callable[[ModelConfig], dict]


DESIGNS: dict[str, Design] = {
    "latent_offset": Design(
        "latent", lambda m: {"dim": m.latent_dim, "steps": ["offset"], "radius": m.radius}
    ),
    "latent_halfspace": Design(
        "latent", lambda m: {"dim": m.latent_dim, "steps": ["halfspace"], "margin": m.region_margin}
    ),
    "latent_perm": Design("latent", lambda m: {"dim": m.latent_dim, "steps": ["perm", "sign"]}),
    "feature_perm": Design(
        "feature",
        lambda m: {"channels": 8 * m.width, "tag": "dcgan/linear", "flip_signs": m.feature_signs},
    ),
    "feature_lock": Design(
        "feature_lock",
        lambda m: {
            "channels": 8 * m.width,
            "tag": "dcgan/linear",
            "flip_signs": m.feature_signs,
            "offset_gap": m.offset_gap,
        },
    ),
}
FEATURE_KINDS = ("feature", "feature_lock")
