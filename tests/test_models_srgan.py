"""SRGAN: SRResNet generator and VGG-style discriminator shapes, sub-pixel order, hooks, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from egan_jax.errors import ConfigError
from egan_jax.models import srgan


@pytest.fixture(scope="module")
def generator():
    return srgan.Generator(width=8, num_blocks=2, rngs=nnx.Rngs(0))


@pytest.fixture(scope="module")
def lr_batch():
    return jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 12, 10, 3)), jnp.float32)


def test_depth_to_space_matches_pixel_shuffle_definition():
    # PyTorch PixelShuffle: out[n, c, h*r + i, w*r + j] = in[n, c*r*r + i*r + j, h, w]
    r, c = 2, 3
    x = np.random.default_rng(1).normal(size=(2, 4, 5, c * r * r)).astype(np.float32)
    got = np.asarray(srgan.depth_to_space(jnp.asarray(x), r))
    assert got.shape == (2, 8, 10, c)
    for ch in range(c):
        for i in range(r):
            for j in range(r):
                np.testing.assert_array_equal(
                    got[:, i::r, j::r, ch], x[..., ch * r * r + i * r + j]
                )


def test_generator_shapes_range_and_features(generator, lr_batch):
    sr, features = generator(lr_batch, return_features=True)
    assert sr.shape == (2, 48, 40, 3)
    assert float(jnp.max(jnp.abs(sr))) <= 1.0
    assert features["head"].shape == (2, 12, 10, 8)
    assert features["trunk"].shape == (2, 12, 10, 8)
    assert features["up1"].shape == (2, 24, 20, 8) and features["up2"].shape == (2, 48, 40, 8)
    assert len(generator.blocks) == 2 and len(generator.upsamplers) == 2


def test_scale_two_and_identity_output(lr_batch):
    model = srgan.Generator(scale=2, width=8, num_blocks=0, output="identity", rngs=nnx.Rngs(3))
    model.eval()
    out = model(lr_batch * 40.0)  # identity output is not squashed into [-1, 1]
    assert out.shape == (2, 24, 20, 3) and float(jnp.max(jnp.abs(out))) > 1.0


def test_feature_transform_is_applied_after_the_first_conv(generator, lr_batch):
    generator.eval()
    seen = {}

    def permute(h):
        seen["shape"] = h.shape
        return h[..., ::-1]

    keyed = srgan.Generator(width=8, num_blocks=2, feature_transform=permute, rngs=nnx.Rngs(0))
    keyed.eval()
    plain_out, plain_features = generator(lr_batch, return_features=True)
    keyed_out, keyed_features = keyed(lr_batch, return_features=True)
    assert seen["shape"] == (2, 12, 10, 8)
    np.testing.assert_allclose(keyed_features["head"], plain_features["head"][..., ::-1])
    assert float(jnp.max(jnp.abs(keyed_out - plain_out))) > 1e-3
    generator.train()


def test_discriminator_any_size_and_features():
    model = srgan.Discriminator(width=8, rngs=nnx.Rngs(1))
    images = jnp.zeros((3, 32, 24, 3))
    logits, features = model(images, return_features=True)
    assert logits.shape == (3,)
    assert features["conv1"].shape == (3, 32, 24, 8)
    assert features["conv8"].shape == (3, 2, 2, 64)  # four stride-2 convs, 8·width channels
    with pytest.raises(ConfigError, match="at least 16"):
        model(jnp.zeros((1, 8, 8, 3)))


def test_train_mode_updates_batch_norm_and_gradients_reach_every_param(generator, lr_batch):
    generator.train()
    before = np.asarray(generator.trunk_bn.mean[...]).copy()

    def loss(model):
        return jnp.mean(model(lr_batch) ** 2)

    grads = nnx.jit(nnx.grad(loss))(generator)
    assert not np.array_equal(before, np.asarray(generator.trunk_bn.mean[...]))
    norms = [float(jnp.sum(jnp.abs(g))) for g in jax.tree.leaves(grads)]
    assert len(norms) > 10 and all(n > 0 for n in norms)


def test_bad_configs_raise():
    with pytest.raises(ConfigError, match="power of two"):
        srgan.Generator(scale=3, rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match="output"):
        srgan.Generator(output="sigmoid", width=4, num_blocks=0, rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match="skip"):
        srgan.Generator(skip="nearest", width=4, num_blocks=0, rngs=nnx.Rngs(0))


def test_bicubic_skip_starts_at_bicubic_and_learns_a_residual(lr_batch):
    generator = srgan.Generator(width=8, num_blocks=1, skip="bicubic", rngs=nnx.Rngs(0))
    up = jax.image.resize(lr_batch, (2, 48, 40, 3), "bicubic")
    np.testing.assert_allclose(generator(lr_batch), jnp.clip(up, -1, 1), atol=1e-6)
    grads = nnx.grad(lambda g: jnp.sum(g(lr_batch) ** 2))(generator)
    assert float(jnp.abs(grads["tail"]["kernel"][...]).max()) > 0  # the residual can move


@pytest.mark.parametrize("padding", [((4, 4), (4, 4)), ((0, 0), (0, 0))])
def test_narrow_output_conv_matches_lax_conv_and_its_gradients(padding):
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.normal(size=(2, 14, 12, 8)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(9, 9, 8, 3)) * 0.1, jnp.float32)

    def reference(x, k):
        return jax.lax.conv_general_dilated(
            x, k, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    def loss(conv):
        return lambda x, k: jnp.sum(jnp.sin(conv(x, k)))

    got = srgan.narrow_output_conv(x, kernel, padding)
    np.testing.assert_allclose(got, reference(x, kernel), rtol=1e-5, atol=1e-5)
    want = jax.grad(loss(reference), argnums=(0, 1))(x, kernel)
    mine = jax.grad(loss(lambda x, k: srgan.narrow_output_conv(x, k, padding)), argnums=(0, 1))(
        x, kernel
    )
    for a, b in zip(mine, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_norm_none_is_batch_norm_free_and_scales_the_residual_branches(lr_batch):
    edsr = srgan.Generator(width=8, num_blocks=2, norm="none", residual_scale=0.1, rngs=nnx.Rngs(0))
    assert edsr.trunk_bn is None and all(b.bn1 is None and b.bn2 is None for b in edsr.blocks)
    assert not any(isinstance(m, nnx.BatchNorm) for _, m in nnx.iter_graph(edsr))
    sr, features = edsr(lr_batch, return_features=True)
    assert sr.shape == (2, 48, 40, 3) and features["trunk"].shape == (2, 12, 10, 8)
    edsr.eval()  # no running statistics, so train and eval mode give the same function
    np.testing.assert_allclose(edsr(lr_batch), sr, atol=1e-6)
    block, h = edsr.blocks[0], features["head"]
    branch = block.conv2(block.act(block.conv1(h)))
    np.testing.assert_allclose(block(h), h + 0.1 * branch, rtol=1e-5, atol=1e-6)


def test_bad_norm_or_residual_scale_raise():
    with pytest.raises(ConfigError, match="norm"):
        srgan.Generator(norm="layer", width=4, num_blocks=0, rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match="residual_scale"):
        srgan.Generator(residual_scale=0.0, width=4, num_blocks=0, rngs=nnx.Rngs(0))


def test_bicubic_detail_skip_adds_only_zero_mean_detail_per_lr_pixel(lr_batch):
    generator = srgan.Generator(width=8, num_blocks=1, skip="bicubic_detail", rngs=nnx.Rngs(0))
    up = jax.image.resize(lr_batch * 0.5, (2, 48, 40, 3), "bicubic")  # halved: no clipping
    np.testing.assert_allclose(generator(lr_batch * 0.5), up, atol=1e-6)  # starts at bicubic
    tail = generator.tail
    tail.kernel[...] = 0.01 * jax.random.normal(jax.random.key(1), tail.kernel.shape)
    tail.bias[...] = jnp.full(tail.bias.shape, 0.05)  # a constant offset is removed entirely
    residual = np.asarray(generator(lr_batch * 0.5) - up)
    assert np.abs(residual).max() > 1e-3
    cells = residual.reshape(2, 12, 4, 10, 4, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(cells, 0.0, atol=1e-6)


def test_gated_skip_removes_the_residuals_cell_mean_only_where_the_input_is_flat():
    flat = jnp.full((1, 6, 6, 3), 0.2)  # bicubic is exact here
    textured = jnp.asarray(np.random.default_rng(1).uniform(-0.5, 0.5, (1, 6, 6, 3)), jnp.float32)
    np.testing.assert_allclose(srgan.flatness(flat), 1.0)
    assert float(jnp.max(srgan.flatness(textured))) < 1e-3
    models = {
        skip: srgan.Generator(width=8, num_blocks=1, skip=skip, rngs=nnx.Rngs(0))
        for skip in ("bicubic", "bicubic_gated")
    }
    for model in models.values():
        model.eval()
        model.tail.bias[...] = jnp.full(model.tail.bias.shape, 0.05)  # a colour offset
    up = jax.image.resize(flat, (1, 24, 24, 3), "bicubic")
    cells = np.asarray(models["bicubic_gated"](flat) - up).reshape(1, 6, 4, 6, 4, 3).mean((2, 4))
    np.testing.assert_allclose(cells, 0.0, atol=1e-6)  # flat: the offset is gone
    assert np.abs(np.asarray(models["bicubic"](flat) - up)).min() > 0.04  # the plain skip keeps it
    np.testing.assert_allclose(  # textured: the gate is shut, the plain bicubic skip's output
        models["bicubic_gated"](textured), models["bicubic"](textured), atol=1e-4
    )
