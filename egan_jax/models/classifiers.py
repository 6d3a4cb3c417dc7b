"""Image classifiers for the key-protected classifier family (AprilPyone & Kiya), Flax NNX.

Every model maps images ``[N, H, W, C]`` in [-1, 1] to logits ``[N, num_classes]``:

* :class:`ResNet18` — the CIFAR-style ResNet-18 (3×3 stem, no max-pool, four stages of two basic
  blocks with batch norm), ``width`` the first stage's width (64 in the paper setting);
* :class:`SmallCNN` — three [conv 3×3, batch norm, ReLU, max-pool 2] stages, a quick baseline;
* :class:`ConvMixer` and :class:`ViT` — patch-embedding models whose first layer, ``patch_embedding``,
  is a convolution with kernel = stride = ``patch_size``. With patch size = the transform's block
  size M, a block-wise pixel shuffle / negative-positive transform acts on each patch vector as a
  signed permutation that the embedding kernel can absorb (see ``egan_jax.classifier_lock``), so the
  input goes straight into that convolution: no normalisation or padding before it.

:func:`build_classifier` is the registry lookup the classifier family uses (``model.arch``).

Deep-lock sites (``egan_jax.deep_lock``; :func:`deep_lock_sites` lists them with their channel
counts): the CNN after each stage (``stage1``…``stage3``, after the max-pool, where a sign flip does
not commute), ResNet-18 inside each basic block's residual branch after its first activation
(``block0``…; the residual stream itself is not re-labelled by a channel permutation of one
branch). Models hold ``self.deep_lock`` (`NO_LOCK` unless the owner's key sets it).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
from flax import nnx

from egan_jax.deep_lock import NO_LOCK
from egan_jax.errors import ConfigError

BN_MOMENTUM = 0.9  # short runs on small data: running statistics must settle within ~50 steps


def _batch_norm(features: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
    return nnx.BatchNorm(features, momentum=BN_MOMENTUM, rngs=rngs)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"classifier {name}={value!r} must be a positive integer")


def _check_input(x: jax.Array, image_size: int | None, channels: int) -> None:
    chex.assert_rank(x, 4)
    chex.assert_axis_dimension(x, 3, channels)
    if image_size is not None:
        chex.assert_axis_dimension(x, 1, image_size)
        chex.assert_axis_dimension(x, 2, image_size)


class BasicBlock(nnx.Module):
    """Two 3×3 convs with batch norm; a 1×1 strided projection on the shortcut when shapes change."""

    def __init__(self, in_features: int, out_features: int, stride: int, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(
            in_features, out_features, (3, 3), strides=stride, use_bias=False, rngs=rngs
        )
        self.norm1 = _batch_norm(out_features, rngs)
        self.conv2 = nnx.Conv(out_features, out_features, (3, 3), use_bias=False, rngs=rngs)
        self.norm2 = _batch_norm(out_features, rngs)
        self.projection = stride != 1 or in_features != out_features
        self.shortcut = nnx.data(
            nnx.Sequential(
                nnx.Conv(
                    in_features, out_features, (1, 1), strides=stride, use_bias=False, rngs=rngs
                ),
                _batch_norm(out_features, rngs),
            )
            if self.projection
            else None
        )

    def __call__(self, x: jax.Array, lock=NO_LOCK, site: str = "") -> jax.Array:
        h = lock(site, jax.nn.relu(self.norm1(self.conv1(x))))
        h = self.norm2(self.conv2(h))
        return jax.nn.relu(h + (self.shortcut(x) if self.projection else x))


class ResNet18(nnx.Module):
    """CIFAR-style ResNet-18: 3×3 stem, stages w, 2w, 4w, 8w (strides 1, 2, 2, 2), average pool.

    ``blocks_per_stage`` is 2 for ResNet-18; tests use 1 and a small ``width``.
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        channels: int = 3,
        width: int = 64,
        blocks_per_stage: int = 2,
        rngs: nnx.Rngs,
    ):
        _check_positive(
            num_classes=num_classes, channels=channels, width=width, depth=blocks_per_stage
        )
        self.channels = channels
        self.stem = nnx.Conv(channels, width, (3, 3), use_bias=False, rngs=rngs)
        self.stem_norm = _batch_norm(width, rngs)
        blocks = []
        in_features = width
        for stage, multiplier in enumerate((1, 2, 4, 8)):
            for index in range(blocks_per_stage):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(BasicBlock(in_features, width * multiplier, stride, rngs=rngs))
                in_features = width * multiplier
        self.blocks = nnx.List(blocks)
        self.head = nnx.Linear(in_features, num_classes, rngs=rngs)
        self.deep_lock = NO_LOCK

    def __call__(self, x: jax.Array) -> jax.Array:
        _check_input(x, None, self.channels)
        h = jax.nn.relu(self.stem_norm(self.stem(x)))
        for i, block in enumerate(self.blocks):
            h = block(h, self.deep_lock, f"block{i}")
        return self.head(jnp.mean(h, axis=(1, 2)))


class SmallCNN(nnx.Module):
    """Three [conv 3×3, batch norm, ReLU, max-pool 2] stages w, 2w, 4w; global average; linear."""

    def __init__(
        self, *, num_classes: int = 10, channels: int = 3, width: int = 32, rngs: nnx.Rngs
    ):
        _check_positive(num_classes=num_classes, channels=channels, width=width)
        self.channels = channels
        widths = (channels, width, 2 * width, 4 * width)
        self.convs = nnx.List(
            [
                nnx.Conv(widths[i], widths[i + 1], (3, 3), use_bias=False, rngs=rngs)
                for i in range(3)
            ]
        )
        self.norms = nnx.List([_batch_norm(widths[i + 1], rngs) for i in range(3)])
        self.head = nnx.Linear(widths[-1], num_classes, rngs=rngs)
        self.deep_lock = NO_LOCK

    def __call__(self, x: jax.Array) -> jax.Array:
        _check_input(x, None, self.channels)
        h = x
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            h = jax.nn.relu(norm(conv(h)))
            h = self.deep_lock(f"stage{i + 1}", nnx.max_pool(h, (2, 2), strides=(2, 2)))
        return self.head(jnp.mean(h, axis=(1, 2)))


def _patch_embedding(channels: int, dim: int, patch_size: int, rngs: nnx.Rngs) -> nnx.Conv:
    return nnx.Conv(
        channels, dim, (patch_size, patch_size), strides=patch_size, padding="VALID", rngs=rngs
    )


class ConvMixer(nnx.Module):
    """ConvMixer (Trockman & Kolter, 2022): patch embedding, then ``depth`` mixer blocks.

    Embedding conv (kernel = stride = ``patch_size``), GELU, batch norm; each block a residual
    depthwise ``kernel_size`` conv (GELU, batch norm) and a pointwise conv (GELU, batch norm);
    global average pool; linear.
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        channels: int = 3,
        dim: int = 256,
        depth: int = 8,
        patch_size: int = 4,
        kernel_size: int = 5,
        rngs: nnx.Rngs,
    ):
        _check_positive(
            num_classes=num_classes,
            channels=channels,
            dim=dim,
            depth=depth,
            patch_size=patch_size,
            kernel_size=kernel_size,
        )
        self.channels = channels
        self.patch_size = patch_size
        self.patch_embedding = _patch_embedding(channels, dim, patch_size, rngs)
        self.embedding_norm = _batch_norm(dim, rngs)
        self.depthwise = nnx.List(
            [
                nnx.Conv(dim, dim, (kernel_size, kernel_size), feature_group_count=dim, rngs=rngs)
                for _ in range(depth)
            ]
        )
        self.depthwise_norms = nnx.List([_batch_norm(dim, rngs) for _ in range(depth)])
        self.pointwise = nnx.List([nnx.Conv(dim, dim, (1, 1), rngs=rngs) for _ in range(depth)])
        self.pointwise_norms = nnx.List([_batch_norm(dim, rngs) for _ in range(depth)])
        self.head = nnx.Linear(dim, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        _check_input(x, None, self.channels)
        h = self.embedding_norm(jax.nn.gelu(self.patch_embedding(x)))
        for depthwise, dw_norm, pointwise, pw_norm in zip(
            self.depthwise,
            self.depthwise_norms,
            self.pointwise,
            self.pointwise_norms,
            strict=True,
        ):
            h = h + dw_norm(jax.nn.gelu(depthwise(h)))
            h = pw_norm(jax.nn.gelu(pointwise(h)))
        return self.head(jnp.mean(h, axis=(1, 2)))


class EncoderBlock(nnx.Module):
    """Pre-norm transformer block: x + MHA(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, *, rngs: nnx.Rngs):
        self.attention_norm = nnx.LayerNorm(dim, rngs=rngs)
        self.attention = nnx.MultiHeadAttention(heads, dim, decode=False, rngs=rngs)
        self.mlp_norm = nnx.LayerNorm(dim, rngs=rngs)
        self.mlp_in = nnx.Linear(dim, mlp_dim, rngs=rngs)
        self.mlp_out = nnx.Linear(mlp_dim, dim, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x + self.attention(self.attention_norm(x))
        return x + self.mlp_out(jax.nn.gelu(self.mlp_in(self.mlp_norm(x))))


class ViT(nnx.Module):
    """A small Vision Transformer: patch embedding conv (kernel = stride = ``patch_size``), learned
    position embeddings, ``depth`` pre-norm encoder blocks, final layer norm, mean over tokens, linear.
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        channels: int = 3,
        image_size: int = 32,
        patch_size: int = 4,
        dim: int = 192,
        depth: int = 6,
        heads: int = 3,
        mlp_ratio: int = 2,
        rngs: nnx.Rngs,
    ):
        _check_positive(
            num_classes=num_classes,
            channels=channels,
            image_size=image_size,
            patch_size=patch_size,
            dim=dim,
            depth=depth,
            heads=heads,
            mlp_ratio=mlp_ratio,
        )
        if image_size % patch_size:
            raise ConfigError(
                f"ViT image_size={image_size} is not a multiple of patch_size={patch_size}; "
                "choose a patch size that divides the image size (e.g. 2, 4, 8 for 32)"
            )
        if dim % heads:
            raise ConfigError(
                f"ViT dim={dim} is not divisible by heads={heads}; pick heads dividing the width"
            )
        self.channels = channels
        self.image_size = image_size
        self.patch_size = patch_size
        tokens = (image_size // patch_size) ** 2
        self.patch_embedding = _patch_embedding(channels, dim, patch_size, rngs)
        self.position_embedding = nnx.Param(
            0.02 * jax.random.normal(rngs.params(), (1, tokens, dim), jnp.float32)
        )
        self.blocks = nnx.List(
            [EncoderBlock(dim, heads, mlp_ratio * dim, rngs=rngs) for _ in range(depth)]
        )
        self.final_norm = nnx.LayerNorm(dim, rngs=rngs)
        self.head = nnx.Linear(dim, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        _check_input(x, self.image_size, self.channels)
        h = self.patch_embedding(x)
        h = h.reshape(h.shape[0], -1, h.shape[-1]) + self.position_embedding[...]
        for block in self.blocks:
            h = block(h)
        return self.head(jnp.mean(self.final_norm(h), axis=1))


def _default_heads(width: int) -> int:
    """The largest divisor of ``width`` not above ``min(8, width // 16)`` (at least 1)."""
    limit = max(1, min(8, width // 16))
    return max(h for h in range(1, limit + 1) if width % h == 0)


# arch -> builder(num_classes, image_size, channels, width, depth, patch_size, heads, rngs)
_BUILDERS = {
    "resnet18": lambda n, s, c, w, d, p, h, rngs: ResNet18(
        num_classes=n, channels=c, width=w, blocks_per_stage=d or 2, rngs=rngs
    ),
    "cnn": lambda n, s, c, w, d, p, h, rngs: SmallCNN(
        num_classes=n, channels=c, width=w, rngs=rngs
    ),
    "convmixer": lambda n, s, c, w, d, p, h, rngs: ConvMixer(
        num_classes=n, channels=c, dim=w, depth=d or 8, patch_size=p, rngs=rngs
    ),
    "vit": lambda n, s, c, w, d, p, h, rngs: ViT(
        num_classes=n,
        channels=c,
        image_size=s,
        patch_size=p,
        dim=w,
        depth=d or 6,
        heads=h or _default_heads(w),
        rngs=rngs,
    ),
}
ARCHITECTURES = tuple(_BUILDERS)
PATCH_ARCHITECTURES = ("convmixer", "vit")


def deep_lock_sites(arch: str, width: int, depth: int | None = None) -> dict[str, int]:
    """The deep-lock sites of ``arch`` and their channel counts (none for the patch models)."""
    if arch == "cnn":
        return {f"stage{i + 1}": width * 2**i for i in range(3)}
    if arch == "resnet18":
        per_stage = depth or 2
        return {
            f"block{stage * per_stage + i}": width * 2**stage
            for stage in range(4)
            for i in range(per_stage)
        }
    return {}


def lock_target(model: nnx.Module) -> nnx.Module:
    """The module that holds the deep lock: the network behind an input embedding, or the model."""
    network = getattr(model, "network", None)
    return network if network is not None else model


def build_classifier(
    arch: str,
    *,
    num_classes: int,
    image_size: int,
    channels: int,
    width: int,
    depth: int | None = None,
    patch_size: int = 4,
    heads: int | None = None,
    input_codes: int = 0,
    input_block: int = 4,
    input_raw: bool = False,
    input_mlp: int = 0,
    rngs: nnx.Rngs,
) -> nnx.Module:
    """The classifier named ``arch`` (one of :data:`ARCHITECTURES`).

    ``width`` is the base width (ResNet/CNN first stage, ConvMixer/ViT embedding dim). ``depth``:
    ResNet blocks per stage (default 2), ConvMixer/ViT block count (default 8/6); unused by the CNN.
    ``patch_size``: ConvMixer/ViT only. ``heads``: ViT only (default :func:`_default_heads`).
    ``input_codes`` > 0 (CNN, ResNet-18): the first layer is a learned per-position value embedding
    of ``width`` features over ``input_codes`` levels and ``input_block``-periodic positions
    (``egan_jax.models.classifier_embedding``), the network behind it takes ``width`` channels;
    ``input_raw``: the raw ``channels`` as well, and the embedding starts at zero. ``input_mlp`` > 0
    (CNN, ResNet-18): the first layer is a per-position pixel MLP with that many hidden units
    (``egan_jax.models.classifier_position_mlp``) instead.
    """
    if arch not in _BUILDERS:
        raise ConfigError(f"model.arch={arch!r} is unknown; valid: {', '.join(ARCHITECTURES)}")
    if not (input_codes or input_mlp):
        return _BUILDERS[arch](
            num_classes, image_size, channels, width, depth, patch_size, heads, rngs
        )
    from egan_jax.models.classifier_embedding import EmbeddedClassifier, PositionValueEmbedding
    from egan_jax.models.classifier_position_mlp import PositionMLP

    field = f"model.input_codes={input_codes}" if input_codes else f"model.input_mlp={input_mlp}"
    if arch in PATCH_ARCHITECTURES or (input_codes and input_mlp):
        raise ConfigError(
            f"{field} is for arch cnn or resnet18 and excludes the other input layer; {arch} has "
            "its own patch embedding (set model.input_codes=0 and model.input_mlp=0 for it)"
        )
    embedding = (
        PositionValueEmbedding(
            channels=channels,
            features=width,
            codes=input_codes,
            block_size=input_block,
            zero_init=input_raw,
            rngs=rngs,
        )
        if input_codes
        else PositionMLP(
            channels=channels, features=width, hidden=input_mlp, block_size=input_block, rngs=rngs
        )
    )
    inputs = width + (channels if input_raw else 0)
    network = _BUILDERS[arch](
        num_classes, image_size, inputs, width, depth, patch_size, heads, rngs
    )
    return EmbeddedClassifier(embedding, network, raw=input_raw)
