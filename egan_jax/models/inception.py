"""InceptionV3 as used by FID (pool3 features, 2048-d; 1008 logits), in Flax NNX.

The architecture is the FID variant of torchvision's InceptionV3 that pytorch-fid uses to reproduce
the original TensorFlow FID graph: average-pool branches exclude padding from the count, and the
last block (Mixed_7c) uses max pooling in its pool branch. Attribute names mirror PyTorch's, so the
weights map one to one. Checked against pytorch-fid 0.3.0's InceptionV3 (torch 2.13, random weights
and batch-norm statistics exported to .npz): pool3 and logits agree to 2e-7 relative, at 75 px
and with the resize from 64 px.

Weights are not bundled. Get the standard FID weights
`pt_inception-2015-12-05-6726825d.pth` from pytorch-fid's GitHub releases
(https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth),
and convert them once, anywhere PyTorch is installed, to a NumPy .npz keyed by PyTorch names:

    import numpy as np, torch
    state = torch.load("pt_inception-2015-12-05-6726825d.pth", map_location="cpu")
    np.savez("pt_inception-2015-12-05.npz", **{k: v.numpy() for k, v in state.items()})

then `InceptionFeatures("pt_inception-2015-12-05.npz")` is a feature network for
`egan_jax.metrics.compute_fid`. Input: images [N, H, W, 3] in [-1, 1] (H, W >= 75); they are
resized bilinearly to 299×299 (half-pixel centres, no antialiasing, as pytorch-fid) unless
`resize=False`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from egan_jax.errors import CheckpointError, ShapeError

Pair = tuple[int, int]


def _pair(value: int | Pair) -> Pair:
    return (value, value) if isinstance(value, int) else tuple(value)


class BasicConv2d(nnx.Module):
    """conv (no bias) + batch norm (eps 1e-3, running statistics) + ReLU."""

    def __init__(self, cin: int, cout: int, kernel, *, stride=1, padding=0, rngs: nnx.Rngs):
        pad_h, pad_w = _pair(padding)
        self.conv = nnx.Conv(
            cin,
            cout,
            _pair(kernel),
            strides=_pair(stride),
            padding=((pad_h, pad_h), (pad_w, pad_w)),
            use_bias=False,
            rngs=rngs,
        )
        self.bn = nnx.BatchNorm(cout, epsilon=1e-3, use_running_average=True, rngs=rngs)

    def __call__(self, x):
        return jax.nn.relu(self.bn(self.conv(x)))


def _avg_pool_3x3(x):  # torch avg_pool2d(3, 1, 1, count_include_pad=False)
    return nnx.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3_s2(x):
    return nnx.max_pool(x, (3, 3), (2, 2))


class InceptionA(nnx.Module):
    def __init__(self, cin: int, pool_features: int, *, rngs: nnx.Rngs):
        self.branch1x1 = BasicConv2d(cin, 64, 1, rngs=rngs)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1, rngs=rngs)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2, rngs=rngs)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1, rngs=rngs)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1, rngs=rngs)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1, rngs=rngs)
        self.branch_pool = BasicConv2d(cin, pool_features, 1, rngs=rngs)

    def __call__(self, x):
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        pool = self.branch_pool(_avg_pool_3x3(x))
        return jnp.concatenate([self.branch1x1(x), b5, b3, pool], axis=-1)


class InceptionB(nnx.Module):
    def __init__(self, cin: int, *, rngs: nnx.Rngs):
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2, rngs=rngs)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1, rngs=rngs)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1, rngs=rngs)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2, rngs=rngs)

    def __call__(self, x):
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return jnp.concatenate([self.branch3x3(x), b3, _max_pool_3x3_s2(x)], axis=-1)


class InceptionC(nnx.Module):
    def __init__(self, cin: int, channels_7x7: int, *, rngs: nnx.Rngs):
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(cin, 192, 1, rngs=rngs)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1, rngs=rngs)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3), rngs=rngs)
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0), rngs=rngs)
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1, rngs=rngs)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0), rngs=rngs)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3), rngs=rngs)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0), rngs=rngs)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3), rngs=rngs)
        self.branch_pool = BasicConv2d(cin, 192, 1, rngs=rngs)

    def __call__(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for layer in (
            self.branch7x7dbl_1,
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            d = layer(d)
        pool = self.branch_pool(_avg_pool_3x3(x))
        return jnp.concatenate([self.branch1x1(x), b7, d, pool], axis=-1)


class InceptionD(nnx.Module):
    def __init__(self, cin: int, *, rngs: nnx.Rngs):
        self.branch3x3_1 = BasicConv2d(cin, 192, 1, rngs=rngs)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2, rngs=rngs)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1, rngs=rngs)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3), rngs=rngs)
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0), rngs=rngs)
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2, rngs=rngs)

    def __call__(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class InceptionE(nnx.Module):
    """`max_pool_branch=False` is FIDInceptionE_1 (Mixed_7b), True is FIDInceptionE_2 (Mixed_7c)."""

    def __init__(self, cin: int, *, max_pool_branch: bool, rngs: nnx.Rngs):
        self.max_pool_branch = max_pool_branch
        self.branch1x1 = BasicConv2d(cin, 320, 1, rngs=rngs)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1, rngs=rngs)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1), rngs=rngs)
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0), rngs=rngs)
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1, rngs=rngs)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1, rngs=rngs)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1), rngs=rngs)
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0), rngs=rngs)
        self.branch_pool = BasicConv2d(cin, 192, 1, rngs=rngs)

    def __call__(self, x):
        b3 = self.branch3x3_1(x)
        b3 = jnp.concatenate([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], axis=-1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = jnp.concatenate([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], axis=-1)
        if self.max_pool_branch:
            pooled = nnx.max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)))
        else:
            pooled = _avg_pool_3x3(x)
        return jnp.concatenate([self.branch1x1(x), b3, d, self.branch_pool(pooled)], axis=-1)


class InceptionV3(nnx.Module):
    """FID InceptionV3: images [N, H, W, 3] in [-1, 1] -> pool3 [N, 2048] (and logits [N, 1008])."""

    def __init__(self, *, resize: bool = True, rngs: nnx.Rngs):
        self.resize = resize
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2, rngs=rngs)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3, rngs=rngs)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1, rngs=rngs)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1, rngs=rngs)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3, rngs=rngs)
        self.Mixed_5b = InceptionA(192, 32, rngs=rngs)
        self.Mixed_5c = InceptionA(256, 64, rngs=rngs)
        self.Mixed_5d = InceptionA(288, 64, rngs=rngs)
        self.Mixed_6a = InceptionB(288, rngs=rngs)
        self.Mixed_6b = InceptionC(768, 128, rngs=rngs)
        self.Mixed_6c = InceptionC(768, 160, rngs=rngs)
        self.Mixed_6d = InceptionC(768, 160, rngs=rngs)
        self.Mixed_6e = InceptionC(768, 192, rngs=rngs)
        self.Mixed_7a = InceptionD(768, rngs=rngs)
        self.Mixed_7b = InceptionE(1280, max_pool_branch=False, rngs=rngs)
        self.Mixed_7c = InceptionE(2048, max_pool_branch=True, rngs=rngs)
        self.fc = nnx.Linear(2048, 1008, rngs=rngs)

    def __call__(self, images: jax.Array, *, return_logits: bool = False):
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ShapeError(f"InceptionV3 needs RGB images [N, H, W, 3], got {images.shape}.")
        x = images
        if self.resize:
            x = jax.image.resize(x, (x.shape[0], 299, 299, 3), "linear", antialias=False)
        if min(x.shape[1:3]) < 75:
            raise ShapeError(f"InceptionV3 needs H, W >= 75 (or resize=True), got {x.shape}.")
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = _max_pool_3x3_s2(x)
        x = _max_pool_3x3_s2(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        pool3 = x.mean(axis=(1, 2))
        if return_logits:
            return pool3, self.fc(pool3)
        return pool3


# --- PyTorch-named .npz weights --------------------------------------------------------------

_LEAF_TO_TORCH = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean"}
_LEAF_TO_TORCH["var"] = "running_var"


def _torch_name(path: Sequence) -> str:
    return ".".join(str(p) for p in path[:-1]) + "." + _LEAF_TO_TORCH[path[-1]]


def _to_torch_layout(leaf: str, value: np.ndarray) -> np.ndarray:
    if leaf == "kernel":  # HWIO -> OIHW, (in, out) -> (out, in)
        return value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T
    return value


def _from_torch_layout(leaf: str, value: np.ndarray) -> np.ndarray:
    if leaf == "kernel":
        return value.transpose(2, 3, 1, 0) if value.ndim == 4 else value.T
    return value


def export_torch_npz(model: InceptionV3, path: str | os.PathLike) -> None:
    """Write the model's weights as a PyTorch-named .npz (the format `load_inception` reads)."""
    flat = nnx.to_flat_state(nnx.state(model))
    arrays = {_torch_name(p): _to_torch_layout(p[-1], np.asarray(v.get_value())) for p, v in flat}
    np.savez(path, **arrays)


def load_inception(path: str | os.PathLike, *, resize: bool = True) -> InceptionV3:
    """An InceptionV3 with weights from a PyTorch-named .npz (see the module docstring)."""
    try:
        arrays = dict(np.load(path))
    except (OSError, ValueError) as error:
        raise CheckpointError(
            f"cannot read Inception weights {str(path)!r} ({error}); convert "
            "pt_inception-2015-12-05-6726825d.pth to .npz as egan_jax.models.inception explains."
        ) from error
    model = nnx.eval_shape(lambda: InceptionV3(resize=resize, rngs=nnx.Rngs(0)))
    state = nnx.state(model)
    for path_, variable in nnx.to_flat_state(state):
        name = _torch_name(path_)
        if name not in arrays:
            raise CheckpointError(
                f"Inception weights {str(path)!r} lack {name!r}; is this the FID InceptionV3 "
                "(pt_inception-2015-12-05) converted with torch names?"
            )
        value = _from_torch_layout(path_[-1], arrays[name])
        if value.shape != variable.shape:
            raise CheckpointError(
                f"Inception weight {name!r} has shape {value.shape}, expected {variable.shape}."
            )
        variable.set_value(jnp.asarray(value, jnp.float32))
    nnx.update(model, state)
    return model


@nnx.jit
def _pool3(model, images):
    return model(images)


class InceptionFeatures:
    """FeatureNetwork: images [N, H, W, 3] in [-1, 1] -> FID pool3 features [N, 2048]."""

    def __init__(self, weights_path: str | os.PathLike, *, resize: bool = True):
        self.model = load_inception(weights_path, resize=resize)

    def __call__(self, images) -> np.ndarray:
        return np.asarray(_pool3(self.model, jnp.asarray(images, jnp.float32)))
