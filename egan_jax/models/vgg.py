"""VGG19 feature network (torchvision's `vgg19().features`) for the SRGAN content loss, Flax NNX.

`VGG19Features(layer="relu5_4")` maps images [N, H, W, 3] in [-1, 1] to the feature map of `layer`
(names "conv{b}_{i}" / "relu{b}_{i}" / "pool{b}", b = 1..5 blocks of 2, 2, 4, 4, 4 convs). Inputs are
taken to [0, 1] and normalised with the ImageNet mean and std, as torchvision's weights expect. Only
the convs up to `layer` are built. SRGAN's content loss uses relu5_4 (the paper's φ5,4; Ledig et al.
2017); some later work (ESRGAN) takes conv5_4, before the activation — both are available.

Weights are not bundled (they cannot be downloaded here). Convert torchvision's ImageNet release once,
anywhere PyTorch and torchvision are installed, to a NumPy .npz keyed by the state dict's names:

    import numpy as np, torchvision
    model = torchvision.models.vgg19(weights="IMAGENET1K_V1")  # vgg19-dcbb9e9d.pth
    state = model.state_dict()
    np.savez("vgg19_features.npz",
             **{k: v.numpy() for k, v in state.items() if k.startswith("features.")})

The file holds `features.{i}.weight` [out, in, 3, 3] and `features.{i}.bias` [out] for the conv
indices i of `torchvision.models.vgg19().features` (0, 2, 5, 7, 10, …, 34); `load_vgg19(path)`
transposes the kernels to HWIO. A file with only the convs up to the chosen layer is enough.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from egan_jax.errors import CheckpointError, ConfigError

BLOCKS = (2, 2, 4, 4, 4)  # convs per block, VGG19 configuration "E"
WIDTHS = (64, 128, 256, 512, 512)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def _layer_plan() -> list[tuple[str, int | None]]:
    """Every layer of `features` in order as (name, torchvision index of its conv or None)."""
    plan: list[tuple[str, int | None]] = []
    index = 0
    for block, count in enumerate(BLOCKS, start=1):
        for i in range(1, count + 1):
            plan.append((f"conv{block}_{i}", index))
            plan.append((f"relu{block}_{i}", None))
            index += 2
        plan.append((f"pool{block}", None))
        index += 1
    return plan


LAYER_NAMES = tuple(name for name, _ in _layer_plan())


def _plan_until(layer: str) -> list[tuple[str, int | None]]:
    if layer not in LAYER_NAMES:
        raise ConfigError(f"VGG19 has no layer {layer!r}; use one of {', '.join(LAYER_NAMES)}.")
    plan = _layer_plan()
    return plan[: LAYER_NAMES.index(layer) + 1]


def conv_indices(layer: str = "relu5_4") -> list[int]:
    """torchvision `features` indices of the convs needed to compute `layer`."""
    return [index for _, index in _plan_until(layer) if index is not None]


class VGG19Features(nnx.Module):
    """images [N, H, W, 3] in [-1, 1] -> features of `layer` [N, H', W', C'] (see module doc)."""

    def __init__(self, *, layer: str = "relu5_4", rngs: nnx.Rngs):
        self.layer = layer
        self.plan = tuple(_plan_until(layer))
        cin, convs = 3, []
        for name, index in self.plan:
            if index is None:
                continue
            cout = WIDTHS[int(name[4]) - 1]
            convs.append(nnx.Conv(cin, cout, (3, 3), padding=((1, 1), (1, 1)), rngs=rngs))
            cin = cout
        self.convs = nnx.List(convs)

    def __call__(self, images: jax.Array) -> jax.Array:
        chex.assert_rank(images, 4)
        chex.assert_axis_dimension(images, 3, 3)
        h = ((images + 1.0) / 2.0 - IMAGENET_MEAN) / IMAGENET_STD
        conv = iter(self.convs)
        for name, _ in self.plan:
            if name.startswith("conv"):
                h = next(conv)(h)
            elif name.startswith("relu"):
                h = jax.nn.relu(h)
            else:
                h = nnx.max_pool(h, (2, 2), (2, 2))
        return h


def torch_state(model: VGG19Features) -> dict[str, np.ndarray]:
    """The model's weights in torchvision's layout and names (the format `load_vgg19` reads)."""
    indices = conv_indices(model.layer)
    state = {}
    for index, conv in zip(indices, model.convs, strict=True):
        state[f"features.{index}.weight"] = np.asarray(conv.kernel[...]).transpose(3, 2, 0, 1)
        state[f"features.{index}.bias"] = np.asarray(conv.bias[...])
    return state


def load_vgg19(path: str | os.PathLike, *, layer: str = "relu5_4") -> VGG19Features:
    """A `VGG19Features(layer=layer)` with weights from a torchvision-named .npz (module doc)."""
    if not os.path.isfile(path):
        raise CheckpointError(
            f"VGG19 weights file {os.fspath(path)!r} does not exist; convert torchvision's "
            "vgg19 ImageNet weights to .npz as egan_jax.models.vgg explains, or leave the "
            "content network unset to train with the pixel loss."
        )
    model = nnx.eval_shape(lambda: VGG19Features(layer=layer, rngs=nnx.Rngs(0)))
    with np.load(path) as weights:
        for index, conv in zip(conv_indices(layer), model.convs, strict=True):
            names = (f"features.{index}.weight", f"features.{index}.bias")
            missing = [n for n in names if n not in weights.files]
            if missing:
                raise CheckpointError(
                    f"{os.fspath(path)!r} lacks {missing} needed for layer {layer!r}; it should "
                    "hold torchvision's vgg19 `features.*` state dict (see egan_jax.models.vgg)."
                )
            kernel = weights[names[0]].transpose(2, 3, 1, 0)
            bias = weights[names[1]]
            if kernel.shape != conv.kernel.shape or bias.shape != conv.bias.shape:
                raise CheckpointError(
                    f"{names[0]} has shape {weights[names[0]].shape} in {os.fspath(path)!r}; "
                    f"VGG19 expects {tuple(conv.kernel.shape[i] for i in (3, 2, 0, 1))}: is it a "
                    "vgg19 (not vgg16 / vgg19_bn) state dict?"
                )
            conv.kernel = nnx.Param(jnp.asarray(kernel, jnp.float32))
            conv.bias = nnx.Param(jnp.asarray(bias, jnp.float32))
    return model


def content_loss(
    features_fn: Callable[[jax.Array], jax.Array],
    predictions: jax.Array,
    targets: jax.Array,
    *,
    feature_scale: float = 1.0,
) -> jax.Array:
    """Perceptual (content) loss: mean over features of (s·φ(pred) − s·φ(target))², per example.

    Args:
      features_fn: any feature network, images [N, H, W, C] -> features [N, ...] (e.g. a
        `VGG19Features`). Its parameters get no gradient from this loss only if the caller does not
        differentiate with respect to them; the target features are stop-gradiented.
      predictions: [N, H, W, C] generated images in [-1, 1].
      targets: [N, H, W, C] reference images in [-1, 1].
      feature_scale: s; Ledig et al. rescale VGG features by 1/12.75.

    Returns:
      [N] per-example loss. Reference: Ledig et al., "Photo-Realistic Single Image Super-Resolution
      Using a GAN" (CVPR 2017), eq. 5; Johnson et al. (ECCV 2016).
    """
    chex.assert_equal_shape((predictions, targets))
    both = features_fn(jnp.concatenate([predictions, targets]))
    count = predictions.shape[0]
    pred_features = both[:count] * feature_scale
    target_features = jax.lax.stop_gradient(both[count:]) * feature_scale
    diff = jnp.square(pred_features - target_features)
    return jnp.mean(diff.reshape(count, -1), axis=1)
