"""SRGAN (Ledig et al., CVPR 2017) as in the IPR-GAN baseline (REFERENCE.md §4), Flax NNX.

`Generator` is SRResNet: LR images [N, h, w, C] in [-1, 1] -> SR images [N, s·h, s·w, C]. The output
non-linearity is tanh by default (so outputs stay in the library's [-1, 1] range, as in Ledig et al.);
`output="identity"` gives the plain linear output that some re-implementations use with MSE.

`Discriminator` is the VGG-style 8-conv network. Instead of IPR-GAN's flatten of a fixed 96-px input,
it averages the last feature map over space before the 1024-unit dense layer (as IPR-GAN's
`AdaptiveAvgPool2d(1)` + 1×1 convs), so it accepts any input size that survives four ×2 reductions
(≥ 16 px): training crops and whole evaluation images alike.

Batch norm uses PyTorch's defaults (momentum 0.1, i.e. nnx momentum 0.9; ε 1e-5) so that runs compare
with the PyTorch reference. Both models can return intermediate feature maps (name -> NHWC array) for
the EGAN feature-divergence terms; the generator's `feature_transform` is applied to the feature map
after the first conv + PReLU (identity by default) and everything after it — the residual trunk and
the global skip — sees the transformed map, so a keyed permutation inserted there changes the output.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
from flax import nnx

from egan_jax.deep_lock import NO_LOCK
from egan_jax.errors import ConfigError

# narrow_output_conv lives in layers (CycleGAN uses it too); re-exported for srgan's callers.
from egan_jax.models.layers import NarrowOutputConv, check_channels_and_width
from egan_jax.models.layers import narrow_output_conv as narrow_output_conv
from egan_jax.models.resample import Stride2Conv

FeatureTransform = Callable[[jax.Array], jax.Array]

# PyTorch BatchNorm2d defaults: running = 0.9 · running + 0.1 · batch; nnx's momentum is the 0.9.
_BN = dict(momentum=0.9, epsilon=1e-5)
OUTPUTS = ("tanh", "identity")
SKIPS = ("none", "bicubic", "bicubic_detail", "bicubic_gated")
# `skip="bicubic_gated"`: the LR local standard deviation (3×3, mean over channels) at which the
# gate that removes the residual's cell mean falls to 1/e (images in [-1, 1]; on the bundled photo
# tiles where bicubic reaches ≥ 40 dB the median is 0.006, elsewhere 0.089)
FLAT_CONTRAST = 0.02
NORMS = ("batch", "none")


def _identity(x: jax.Array) -> jax.Array:
    return x


def generator_site_channels(*, width: int, num_blocks: int, scale: int = 4) -> dict[str, int]:
    """The generator's deep-lock sites (`egan_jax.deep_lock`) and their channel counts.

    ``block{i}``: inside residual block i's branch, after conv + BN + PReLU and before the second
    conv; ``up{i}``: after up-sampler i's PReLU, before the next conv. At each, a channel
    permutation + sign flip is a re-labelling of the next conv's input weights (PReLU and BN are
    per channel), so the owner's locked network trains as a plain one; the residual stream is
    left alone.
    """
    sites = {f"block{i + 1}": width for i in range(num_blocks)}
    sites.update({f"up{i + 1}": width for i in range(int(math.log2(scale)))})
    return sites


def depth_to_space(x: jax.Array, block: int) -> jax.Array:
    """PyTorch `PixelShuffle(block)` in NHWC: [N, H, W, C·b²] -> [N, H·b, W·b, C].

    Input channel c·b² + i·b + j goes to output channel c at offset (i, j) of each b×b cell, the same
    order as PyTorch, so converted sub-pixel weights keep their meaning.
    """
    n, h, w, c = x.shape
    out = c // (block * block)
    x = x.reshape(n, h, w, out, block, block)
    x = x.transpose(0, 1, 4, 2, 5, 3)
    return x.reshape(n, h * block, w * block, out)


def flatness(lr: jax.Array, scale: float = FLAT_CONTRAST) -> jax.Array:
    """[N, h, w, C] -> [N, h, w, 1] in (0, 1]: exp(−(s / scale)²), s the 3×3 local standard
    deviation of each LR pixel (edge-padded), averaged over channels; 1 where the image is flat."""
    padded = jnp.pad(lr, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = lr.shape[1:3]
    window = jnp.stack([padded[:, i : i + h, j : j + w] for i in range(3) for j in range(3)])
    deviation = jnp.mean(jnp.std(window, axis=0), axis=-1, keepdims=True)
    return jnp.exp(-jnp.square(deviation / scale))


def _cell_mean(x: jax.Array, cell: int) -> jax.Array:
    """Each pixel replaced by the mean of its cell×cell block (x's sides multiples of cell)."""
    n, height, width, c = x.shape
    means = x.reshape(n, height // cell, cell, width // cell, cell, c).mean(axis=(2, 4))
    return jnp.repeat(jnp.repeat(means, cell, axis=1), cell, axis=2)


class PReLU(nnx.Module):
    """Per-channel PReLU (PyTorch `nn.PReLU(num_parameters=C)`, slopes initialised to 0.25)."""

    def __init__(self, num_features: int, *, init: float = 0.25):
        self.slope = nnx.Param(jnp.full((num_features,), init, jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.where(x >= 0, x, self.slope[...] * x)


def _conv(cin: int, cout: int, kernel: int, rngs: nnx.Rngs, *, stride: int = 1, bias=True):
    pad = kernel // 2
    if stride == 2:  # same parameters as nnx.Conv; its input gradient avoids XLA:CPU's slow path
        return Stride2Conv(cin, cout, kernel, padding=pad, use_bias=bias, rngs=rngs)
    return nnx.Conv(
        cin,
        cout,
        (kernel, kernel),
        strides=(stride, stride),
        padding=((pad, pad), (pad, pad)),
        use_bias=bias,
        rngs=rngs,
    )


def _norm(width: int, norm: str, rngs: nnx.Rngs) -> nnx.Module | None:
    return nnx.BatchNorm(width, rngs=rngs, **_BN) if norm == "batch" else None


def _apply(norm: nnx.Module | None, x: jax.Array) -> jax.Array:
    return x if norm is None else norm(x)


class ResidualBlock(nnx.Module):
    """x + scale · BN(conv(PReLU(BN(conv(x))))), 3×3 convs of `width` channels.

    `norm="none"` drops both batch norms (the convs then get biases), as EDSR (Lim et al. 2017);
    `residual_scale` < 1 (EDSR: 0.1) damps each block's branch, which keeps a BN-free trunk stable.
    """

    def __init__(
        self, width: int, *, norm: str = "batch", residual_scale: float = 1.0, rngs: nnx.Rngs
    ):
        bias = norm == "none"
        self.residual_scale = residual_scale
        self.conv1 = _conv(width, width, 3, rngs, bias=bias)
        self.bn1 = _norm(width, norm, rngs)
        self.act = PReLU(width)
        self.conv2 = _conv(width, width, 3, rngs, bias=bias)
        self.bn2 = _norm(width, norm, rngs)

    def __call__(self, x: jax.Array, lock: FeatureTransform = _identity) -> jax.Array:
        """`lock`: the deep lock of this block's site, applied inside the branch."""
        branch = _apply(self.bn2, self.conv2(lock(self.act(_apply(self.bn1, self.conv1(x))))))
        return x + branch if self.residual_scale == 1.0 else x + self.residual_scale * branch


class SubPixelUpsample(nnx.Module):
    """×2: 3×3 conv width -> 4·width, `depth_to_space(2)`, PReLU."""

    def __init__(self, width: int, *, rngs: nnx.Rngs):
        self.conv = _conv(width, 4 * width, 3, rngs)
        self.act = PReLU(width)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.act(depth_to_space(self.conv(x), 2))


class Generator(nnx.Module):
    """SRResNet: LR [N, h, w, channels] in [-1, 1] -> SR [N, scale·h, scale·w, channels].

    9×9 conv -> width + PReLU (`feature_transform` here), `num_blocks` residual blocks, 3×3 conv +
    BN, global skip, log2(scale) sub-pixel ×2 up-samplers, 9×9 conv -> channels, then `output`
    ("tanh" or "identity").

    `skip="bicubic"` (ours, not in Ledig et al.; the residual-learning idea of VDSR, Kim et al.
    2016) adds a bicubic up-sampling of the input to the network's output, which then only learns
    the residual: the tail conv starts at zero, so an untrained generator already equals bicubic
    and training starts from its quality instead of from noise. The sum is clipped to [-1, 1]
    and `output` applies to the residual ("tanh" bounds it, "identity" leaves it linear).
    `skip="bicubic_detail"` also removes the residual's mean over each scale×scale cell (one LR
    pixel), so the network adds only detail finer than the LR grid: a flat region, where bicubic
    is already exact, stays exactly bicubic instead of getting the small colour offset a learned
    residual leaves there. `skip="bicubic_gated"` removes that mean only in proportion to how flat
    the LR image is around each pixel (`flatness`): textured regions keep the plain bicubic skip's
    free residual.

    `norm="none"` (EDSR, Lim et al. 2017: batch norm hurts SR) removes every batch norm of the
    generator; `residual_scale` multiplies each residual block's branch (EDSR: 0.1).

    `deep_lock` (`egan_jax.deep_lock`; identity by default, an instance attribute set by the EGAN
    family from the owner's key, never stored) is called at each `generator_site_channels` site.
    """

    def __init__(
        self,
        *,
        scale: int = 4,
        channels: int = 3,
        width: int = 64,
        num_blocks: int = 16,
        output: str = "tanh",
        skip: str = "none",
        norm: str = "batch",
        residual_scale: float = 1.0,
        feature_transform: FeatureTransform | None = None,
        rngs: nnx.Rngs,
    ):
        if scale < 2 or scale & (scale - 1):
            raise ConfigError(f"scale={scale} must be a power of two ≥ 2 (e.g. 4).")
        if channels < 1 or width < 1 or num_blocks < 0:
            raise ConfigError(
                f"channels={channels}, width={width} must be positive and num_blocks={num_blocks} "
                "non-negative; use e.g. channels=3, width=64, num_blocks=16."
            )
        if output not in OUTPUTS:
            raise ConfigError(f"output={output!r} is unknown; use one of {OUTPUTS}.")
        if skip not in SKIPS:
            raise ConfigError(f"skip={skip!r} is unknown; use one of {SKIPS}.")
        if norm not in NORMS:
            raise ConfigError(f"norm={norm!r} is unknown; use one of {NORMS}.")
        if not 0.0 < residual_scale <= 1.0:
            raise ConfigError(f"residual_scale={residual_scale} must be in (0, 1]; EDSR uses 0.1.")
        self.scale = scale
        self.skip = skip
        self.channels = channels
        self.output = output
        self.feature_transform = feature_transform or _identity
        self.head = _conv(channels, width, 9, rngs)
        self.head_act = PReLU(width)
        self.blocks = nnx.List(
            [
                ResidualBlock(width, norm=norm, residual_scale=residual_scale, rngs=rngs)
                for _ in range(num_blocks)
            ]
        )
        self.trunk_conv = _conv(width, width, 3, rngs, bias=norm == "none")
        self.trunk_bn = _norm(width, norm, rngs)
        self.upsamplers = nnx.List(
            [SubPixelUpsample(width, rngs=rngs) for _ in range(int(math.log2(scale)))]
        )
        zeros = nnx.initializers.zeros if skip != "none" else None
        self.tail = NarrowOutputConv(width, channels, 9, padding=4, kernel_init=zeros, rngs=rngs)
        self.deep_lock = NO_LOCK

    def __call__(
        self, lr: jax.Array, *, return_features: bool = False
    ) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
        chex.assert_rank(lr, 4)
        chex.assert_axis_dimension(lr, 3, self.channels)
        features: dict[str, jax.Array] = {}
        head = self.feature_transform(self.head_act(self.head(lr)))
        features["head"] = head
        h = head
        lock = self.deep_lock
        for i, block in enumerate(self.blocks):
            h = block(h, lambda t, site=f"block{i + 1}": lock(site, t))
        h = head + _apply(self.trunk_bn, self.trunk_conv(h))
        features["trunk"] = h
        for i, up in enumerate(self.upsamplers):
            h = lock(f"up{i + 1}", up(h))
            features[f"up{i + 1}"] = h
        sr = self.tail(h)
        if self.output == "tanh":
            sr = jnp.tanh(sr)
        if self.skip == "bicubic_detail":
            sr = sr - _cell_mean(sr, self.scale)
        if self.skip == "bicubic_gated":  # only where the LR image is flat
            gate = jnp.repeat(jnp.repeat(flatness(lr), self.scale, 1), self.scale, 2)
            sr = sr - jax.lax.stop_gradient(gate) * _cell_mean(sr, self.scale)
        if self.skip != "none":
            n, height, width, c = lr.shape
            up = jax.image.resize(lr, (n, height * self.scale, width * self.scale, c), "bicubic")
            sr = jnp.clip(up + sr, -1.0, 1.0)
        if return_features:
            return sr, features
        return sr


class Discriminator(nnx.Module):
    """VGG-style: images [N, H, W, channels] (H, W ≥ 16) -> logits [N].

    Eight 3×3 convs w, w(s2), 2w, 2w(s2), 4w, 4w(s2), 8w, 8w(s2) (w = `width`, 64 in the paper),
    batch norm after all but the first, LeakyReLU 0.2; global average pooling; dense 1024 (scaled
    with w: 16w), LeakyReLU 0.2, dense 1.
    """

    def __init__(
        self,
        *,
        channels: int = 3,
        width: int = 64,
        negative_slope: float = 0.2,
        rngs: nnx.Rngs,
    ):
        check_channels_and_width(channels, width)
        self.channels = channels
        self.negative_slope = negative_slope
        widths = [width, width, 2 * width, 2 * width, 4 * width, 4 * width, 8 * width, 8 * width]
        cins = [channels, *widths[:-1]]
        self.convs = nnx.List(
            [
                _conv(cin, cout, 3, rngs, stride=1 + i % 2, bias=i == 0)
                for i, (cin, cout) in enumerate(zip(cins, widths, strict=True))
            ]
        )
        self.norms = nnx.List([nnx.BatchNorm(c, rngs=rngs, **_BN) for c in widths[1:]])
        self.dense = nnx.Linear(8 * width, 16 * width, rngs=rngs)
        self.head = nnx.Linear(16 * width, 1, rngs=rngs)

    def __call__(
        self, x: jax.Array, *, return_features: bool = False
    ) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
        chex.assert_rank(x, 4)
        chex.assert_axis_dimension(x, 3, self.channels)
        if x.shape[1] < 16 or x.shape[2] < 16:
            raise ConfigError(
                f"the SRGAN discriminator needs inputs of at least 16×16 px, got {x.shape[1:3]}."
            )
        act = lambda t: jax.nn.leaky_relu(t, self.negative_slope)
        features: dict[str, jax.Array] = {}
        h = act(self.convs[0](x))
        features["conv1"] = h
        for i, (conv, norm) in enumerate(zip(self.convs[1:], self.norms, strict=True)):
            h = act(norm(conv(h)))
            features[f"conv{i + 2}"] = h
        h = act(self.dense(jnp.mean(h, axis=(1, 2))))
        logits = self.head(h)[:, 0]
        if return_features:
            return logits, features
        return logits
