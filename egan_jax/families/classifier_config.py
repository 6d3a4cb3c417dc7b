"""The key-protected classifier family's configuration: the keyed input transform, the model and
the loss sections. Data only; `families.classifier` uses it and re-exports every name.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class TransformConfig:
    """The keyed input transform; ``steps=()`` trains an unprotected model (no key needed)."""

    block: int = 4
    steps: tuple[str, ...] = ("shuffle", "np", "ffx")
    ffx_variant: str = "decimal"
    key_file: str | None = None


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    arch: str = "cnn"  # resnet18 | cnn | convmixer | vit
    width: int = 32
    depth: int = 0  # 0: the architecture's default
    patch_size: int = 4  # convmixer / vit; = transform.block to lock without retraining
    heads: int = 0  # vit; 0: chosen from the width
    # cnn / resnet18: > 0 puts a learned per-position value embedding over this many levels first
    # (models.classifier_embedding; 1000 for decimal FFX codes, 256 for 8-bit values); its positions
    # repeat with model.transform.block. Used for the plain model too (same architecture).
    input_codes: int = 0
    input_raw: bool = False  # with input_codes: the network also sees the raw input; embedding at 0
    # cnn / resnet18: > 0 puts a per-position pixel MLP with this many hidden units first
    # (models.classifier_position_mlp: a first layer per block position); used for the plain model too
    input_mlp: int = 0
    baseline: bool = True  # also train an unprotected twin on plain images (same batches)
    # lockable models only: start the protected model as the baseline locked with the key, so the
    # two train in lockstep and the correct key's accuracy equals the baseline's (0 points lost)
    matched_init: bool = False
    # cnn / resnet18 sites (models.classifiers.deep_lock_sites) where the owner's key permutes and
    # sign-flips channels; derived from the key file when built, never stored (classifier_deep_lock);
    # ("all",): every site of the arch in a protected run
    deep_lock: tuple[str, ...] = ()
    transform: TransformConfig = TransformConfig()


@dataclasses.dataclass(frozen=True)
class LossConfig:
    label_smoothing: float = 0.0
    optimizer: str = "adam"  # adam (optim.b1/b2) | sgd (momentum below)
    momentum: float = 0.9
    weight_decay: float = 0.0  # L2 added to the gradient
    # random translation of the plain images by up to this many pixels (edge padding) before the
    # keyed transform, the same for the protected model and its twin; 0: none
    augment_shift: int = 0
    # > 0: also push the protected model's predictions on unauthorized inputs (plain images, random
    # training keys) to uniform with this weight (egan_jax.classifier_unauthorized); 0: the paper's
    unauthorized_weight: float = 0.0
    unauthorized_keys: int = 16  # random training keys for that term
    # "keys": those training keys; "fresh": new random material per example and step
    unauthorized_material: str = "keys"
    test_split: str = "test"
    random_keys: int = 10
    near_miss_keys: int = 3  # per transform step
    eval_batch_size: int = 250
