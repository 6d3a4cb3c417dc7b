"""CycleGAN (Zhu et al., ICCV 2017) ResNet generator and 70×70 PatchGAN, Flax NNX.

Follows the reference PyTorch code (junyanz/pytorch-CycleGAN-and-pix2pix, `ResnetGenerator` and
`NLayerDiscriminator`) with instance norm without affine parameters (its default `--norm instance`).
Two deliberate differences, both for speed on XLA:CPU:
- The two ×2 up-samplers are `resample.Upsample2x` (kernel 4, the VJP of a strided conv with its own
  custom VJP) instead of `ConvTranspose2d(kernel 3, output_padding 1)`: REFERENCE.md §2 measured stock
  transposed-conv kernel gradients ~30× slower than other convs here. `upsample="resize_conv"`
  (nearest ×2 + 3×3 conv) is the other fast option.
- Convs followed by instance norm have no bias (the norm subtracts the per-channel mean, so a bias
  there is a no-op; PyTorch's code keeps one).

`Generator`: images [N, H, W, C] in [-1, 1] (H, W multiples of 4) -> images of the same shape, tanh.
`feature_transform` is applied to the feature map after the first 7×7 conv + norm + ReLU (identity
by default); `return_features=True` also returns the feature maps by name.
`PatchDiscriminator`: images [N, H, W, C] -> patch logits [N, H/8 − 2, W/8 − 2] (70×70 receptive
field each; 14×14 at 128 px).
"""

from __future__ import annotations

from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
from flax import nnx

from egan_jax.deep_lock import NO_LOCK
from egan_jax.errors import ConfigError
from egan_jax.models.layers import NarrowOutputConv, check_channels_and_width
from egan_jax.models.resample import Stride2Conv, Upsample2x

FeatureTransform = Callable[[jax.Array], jax.Array]
UPSAMPLE_KINDS = ("vjp", "resize_conv")
# The reference initialises every conv with N(0, 0.02) (`init_type="normal"`, `init_gain=0.02`):
# the generators then start near the zero image instead of saturating tanh.
KERNEL_INIT = nnx.initializers.normal(0.02)


def _identity(x: jax.Array) -> jax.Array:
    return x


def generator_site_channels(*, width: int, num_blocks: int) -> dict[str, int]:
    """The generator's deep-lock sites (`egan_jax.deep_lock`) and their channel counts.

    ``down{i}``: after down-sampling conv i + instance norm + ReLU; ``block{i}``: inside residual
    block i's branch, after its first conv + norm + ReLU, before the second conv; ``up{i}``: after
    up-sampler i + norm + ReLU. A permutation + sign flip there re-labels the next conv's input
    weights (instance norm has no affine and is odd, so at ``down2`` — the start of the residual
    stream — it re-labels the whole trunk), so the owner's locked network trains as a plain one.
    """
    sites = {"down1": 2 * width, "down2": 4 * width}
    sites.update({f"block{i + 1}": 4 * width for i in range(num_blocks)})
    sites.update({"up1": 2 * width, "up2": width})
    return sites


def instance_norm(x: jax.Array, *, epsilon: float = 1e-5) -> jax.Array:
    """Per-example, per-channel normalisation over H and W (PyTorch `InstanceNorm2d()`)."""
    mean = jnp.mean(x, axis=(1, 2), keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + epsilon)


def reflect_pad(x: jax.Array, pad: int) -> jax.Array:
    return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def _conv(cin, cout, kernel, rngs, *, stride=1, padding=0, bias=False):
    if stride == 2:  # same parameters as nnx.Conv; its input gradient avoids XLA:CPU's slow path
        return Stride2Conv(
            cin, cout, kernel, padding=padding, use_bias=bias, kernel_init=KERNEL_INIT, rngs=rngs
        )
    return nnx.Conv(
        cin,
        cout,
        (kernel, kernel),
        strides=(stride, stride),
        padding=((padding, padding), (padding, padding)),
        use_bias=bias,
        kernel_init=KERNEL_INIT,
        rngs=rngs,
    )


class ResnetBlock(nnx.Module):
    """x + IN(conv(pad(ReLU(IN(conv(pad(x))))))), reflect padding 1, 3×3 convs."""

    def __init__(self, width: int, *, rngs: nnx.Rngs):
        self.conv1 = _conv(width, width, 3, rngs)
        self.conv2 = _conv(width, width, 3, rngs)

    def __call__(self, x: jax.Array, lock: FeatureTransform = _identity) -> jax.Array:
        """`lock`: the deep lock of this block's site, applied inside the branch."""
        h = lock(jax.nn.relu(instance_norm(self.conv1(reflect_pad(x, 1)))))
        return x + instance_norm(self.conv2(reflect_pad(h, 1)))


class ResizeConvUpsample(nnx.Module):
    """Nearest-neighbour ×2 then a 3×3 conv (zero padding 1)."""

    def __init__(self, cin: int, cout: int, *, rngs: nnx.Rngs):
        self.conv = _conv(cin, cout, 3, rngs, padding=1)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.conv(jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2))


class Generator(nnx.Module):
    """ResNet generator: c7s1-w, d2w, d4w, `num_blocks`×R4w, u2w, uw, c7s1-C, tanh.

    `deep_lock` (`egan_jax.deep_lock`; identity by default, an instance attribute set by the EGAN
    family from the owner's key, never stored) is called at each `generator_site_channels` site.
    """

    def __init__(
        self,
        *,
        channels: int = 3,
        width: int = 64,
        num_blocks: int = 9,
        upsample: str = "vjp",
        feature_transform: FeatureTransform | None = None,
        rngs: nnx.Rngs,
    ):
        if channels < 1 or width < 1 or num_blocks < 0:
            raise ConfigError(
                f"channels={channels}, width={width} must be positive and num_blocks={num_blocks} "
                "non-negative; use e.g. channels=3, width=64, num_blocks=9 (or 6)."
            )
        if upsample not in UPSAMPLE_KINDS:
            raise ConfigError(f"upsample={upsample!r} is unknown; use one of {UPSAMPLE_KINDS}.")
        self.channels = channels
        self.feature_transform = feature_transform or _identity
        self.head = _conv(channels, width, 7, rngs)
        self.downs = nnx.List(
            [
                _conv(width, 2 * width, 3, rngs, stride=2, padding=1),
                _conv(2 * width, 4 * width, 3, rngs, stride=2, padding=1),
            ]
        )
        self.blocks = nnx.List([ResnetBlock(4 * width, rngs=rngs) for _ in range(num_blocks)])
        if upsample == "vjp":
            make_up = lambda cin, cout: Upsample2x(
                cin, cout, use_bias=False, kernel_init=KERNEL_INIT, rngs=rngs
            )
        else:
            make_up = lambda cin, cout: ResizeConvUpsample(cin, cout, rngs=rngs)
        self.ups = nnx.List([make_up(4 * width, 2 * width), make_up(2 * width, width)])
        self.tail = NarrowOutputConv(width, channels, 7, kernel_init=KERNEL_INIT, rngs=rngs)
        self.deep_lock = NO_LOCK

    def __call__(
        self, x: jax.Array, *, return_features: bool = False
    ) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
        chex.assert_rank(x, 4)
        chex.assert_axis_dimension(x, 3, self.channels)
        if x.shape[1] % 4 or x.shape[2] % 4:
            raise ConfigError(
                f"the CycleGAN generator needs H and W divisible by 4, got {x.shape[1:3]}; "
                "crop or resize the images (e.g. to 128 or 256)."
            )
        features: dict[str, jax.Array] = {}
        h = jax.nn.relu(instance_norm(self.head(reflect_pad(x, 3))))
        h = self.feature_transform(h)
        features["head"] = h
        lock = self.deep_lock
        for i, down in enumerate(self.downs):
            h = lock(f"down{i + 1}", jax.nn.relu(instance_norm(down(h))))
            features[f"down{i + 1}"] = h
        for i, block in enumerate(self.blocks):
            h = block(h, lambda t, site=f"block{i + 1}": lock(site, t))
        features["trunk"] = h
        for i, up in enumerate(self.ups):
            h = lock(f"up{i + 1}", jax.nn.relu(instance_norm(up(h))))
            features[f"up{i + 1}"] = h
        images = jnp.tanh(self.tail(reflect_pad(h, 3)))
        if return_features:
            return images, features
        return images


class PatchDiscriminator(nnx.Module):
    """70×70 PatchGAN (n_layers=3): C64(s2, no norm), C128(s2), C256(s2), C512(s1), conv -> 1.

    4×4 convs with zero padding 1, instance norm after all but the first and last, LeakyReLU 0.2.
    Returns patch logits [N, h, w] (the channel axis of size 1 dropped).
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
        self.convs = nnx.List(
            [
                _conv(channels, width, 4, rngs, stride=2, padding=1, bias=True),
                _conv(width, 2 * width, 4, rngs, stride=2, padding=1),
                _conv(2 * width, 4 * width, 4, rngs, stride=2, padding=1),
                _conv(4 * width, 8 * width, 4, rngs, stride=1, padding=1),
            ]
        )
        self.head = _conv(8 * width, 1, 4, rngs, stride=1, padding=1, bias=True)

    def __call__(
        self, x: jax.Array, *, return_features: bool = False
    ) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
        chex.assert_rank(x, 4)
        chex.assert_axis_dimension(x, 3, self.channels)
        if x.shape[1] < 32 or x.shape[2] < 32:
            raise ConfigError(
                f"the PatchGAN needs inputs of at least 32×32 px, got {x.shape[1:3]}."
            )
        features: dict[str, jax.Array] = {}
        h = x
        for i, conv in enumerate(self.convs):
            h = conv(h)
            if i > 0:
                h = instance_norm(h)
            h = jax.nn.leaky_relu(h, self.negative_slope)
            features[f"conv{i + 1}"] = h
        logits = self.head(h)[..., 0]
        if return_features:
            return logits, features
        return logits
