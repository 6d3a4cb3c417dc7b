"""`loss.wrapper_deleted` (families/egan_image_bypass.py): the bounded colour-mean and coarse
grey-contrast terms on the wrapper-deleted pair of the protected image families, and the report's
colour-corrected wrapper-deleted row (evaluate_i2i). Tiny widths."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from egan_jax import deep_lock
from egan_jax.config import apply_overrides
from egan_jax.errors import ConfigError
from egan_jax.families import egan_image as protect
from egan_jax.families import get_family
from egan_jax.families.egan_image_bypass import (
    WRAPPER_DELETED,
    coarse_grey_contrast,
    wrapper_deleted_loss,
)

TINY = (
    "model.width=2", "model.num_blocks=1", "model.discriminator_width=2", "data.image_size=32",
    "model.deep_lock=down1,down2,block1", "model.adapter=key_inverse", "loss.pool_size=2",
    "loss.unauthorized.random_keys=1", "loss.unauthorized.near_keys=1",
    "loss.unauthorized.near_materials=1",
)  # fmt: skip


def tiny(*overrides: str):
    return apply_overrides(get_family("egan_cyclegan").default_config(), [*TINY, *overrides])


def test_the_loss_reads_each_channels_mean_and_is_bounded():
    images = jax.random.uniform(jax.random.key(0), (2, 8, 8, 3), minval=-1, maxval=1)
    shuffled = jnp.roll(images, (3, 5), axis=(1, 2))  # other pixels, the same colour means
    np.testing.assert_allclose(wrapper_deleted_loss(images, shuffled), [0, 0], atol=1e-6)
    shift = jnp.array([0.1, 0.0, -0.2])  # mean |Δμ| = 0.1
    np.testing.assert_allclose(wrapper_deleted_loss(images, images + shift), [-0.1] * 2, atol=1e-6)
    far = wrapper_deleted_loss(images, images + 1.0, margin=0.3)
    np.testing.assert_allclose(far, [-0.3, -0.3], atol=1e-6)  # flat beyond the margin
    grad = jax.grad(lambda d: jnp.sum(wrapper_deleted_loss(images, d, margin=0.3)))(images + 1.0)
    assert not np.any(np.asarray(grad))


def test_mean_std_also_reads_each_channels_contrast():
    images = jax.random.uniform(jax.random.key(0), (2, 8, 8, 3), minval=-1, maxval=1)
    mean = jnp.mean(images, axis=(1, 2), keepdims=True)
    flatter = mean + 0.5 * (images - mean)  # the same means, half the standard deviation
    np.testing.assert_allclose(wrapper_deleted_loss(images, flatter), [0, 0], atol=1e-6)
    got = wrapper_deleted_loss(images, flatter, statistics="mean_std", margin=10.0)
    expected = jnp.mean(0.5 * jnp.std(images, axis=(1, 2)), axis=-1) / 2  # over 2C numbers
    np.testing.assert_allclose(got, -expected, rtol=1e-5)


def test_grey_mean_ignores_a_shift_of_the_chroma_only():
    images = jax.random.uniform(jax.random.key(0), (2, 8, 8, 3), minval=-0.5, maxval=0.5)
    chroma = images + jnp.array([0.1, 0.0, -0.1])  # the grey level is unchanged
    assert float(wrapper_deleted_loss(images, chroma)[0]) == pytest.approx(-0.2 / 3, abs=1e-6)
    np.testing.assert_allclose(
        wrapper_deleted_loss(images, chroma, statistics="grey_mean"), [0, 0], atol=1e-6
    )
    brighter = wrapper_deleted_loss(images, images + 0.1, statistics="grey_mean")
    np.testing.assert_allclose(brighter, [-0.1, -0.1], atol=1e-6)


def test_grey_contrast_reads_pooled_grey_structure_not_colour_shifts():
    images = jax.random.uniform(jax.random.key(0), (2, 8, 8, 3), minval=-0.5, maxval=0.5)
    grey = jnp.mean(images, axis=-1).reshape(2, 4, 2, 4, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(coarse_grey_contrast(images)[:, 0], jnp.std(grey, axis=(1, 2)),
                               rtol=1e-4)  # fmt: skip
    shifted = images + jnp.array([0.3, -0.1, 0.2])  # any global colour shift: no structure term
    on = {"structure": "grey_contrast", "margin": 0.01, "structure_margin": 10.0}
    np.testing.assert_allclose(
        wrapper_deleted_loss(images, shifted, statistics="grey_mean", **on), [-0.01, -0.01],
        atol=1e-6,
    )  # fmt: skip
    mean = jnp.mean(images, axis=(1, 2, 3), keepdims=True)
    flatter = mean + 0.5 * (images - mean)  # the same grey level, half the contrast
    got = wrapper_deleted_loss(images, flatter, statistics="grey_mean", **on)
    np.testing.assert_allclose(got, -0.5 * coarse_grey_contrast(images)[:, 0], rtol=1e-3)
    off = wrapper_deleted_loss(images, flatter, statistics="grey_mean", margin=0.01)
    np.testing.assert_allclose(off, [0, 0], atol=1e-6)  # "none": the colour term alone
    capped = wrapper_deleted_loss(images, flatter, statistics="grey_mean", margin=0.01,
                                  structure="grey_contrast", structure_margin=0.001)  # fmt: skip
    np.testing.assert_allclose(capped, [-0.001, -0.001], atol=1e-6)
    raise_ = {"statistics": "grey_mean", "margin": 0.01, "structure": "grey_contrast_raise"}
    flatter_up = wrapper_deleted_loss(images, flatter, structure_margin=10.0, **raise_)
    np.testing.assert_allclose(flatter_up, 0.5 * coarse_grey_contrast(images)[:, 0], rtol=1e-3)
    sharper = mean + 3.0 * (images - mean)  # twice the contrast more: capped at the margin
    np.testing.assert_allclose(wrapper_deleted_loss(images, sharper, structure_margin=0.01,
                                                    **raise_), [-0.01, -0.01], atol=1e-6)  # fmt: skip
    flat = jnp.zeros_like(images)  # a flat output: finite gradients, not NaN
    grad = jax.grad(lambda d: jnp.sum(wrapper_deleted_loss(images, d, **on)))(flat)
    assert np.all(np.isfinite(np.asarray(grad)))


def test_the_pair_is_the_authorized_output_and_the_keyless_build():
    config = tiny("loss.wrapper_deleted.weight=1")
    generator = get_family("egan_cyclegan").build_models(config, nnx.Rngs(0))["generator_ab"]
    x = jax.random.uniform(jax.random.key(1), (1, 32, 32, 3), minval=-1, maxval=1)
    output, features = generator(protect.authorize(config)(x), return_features=True)
    disc = get_family("egan_cyclegan").build_models(config, nnx.Rngs(0))["discriminator_b"]
    out = protect.unauthorized_features(
        config, generator, x, output, features, jax.random.key(0), discriminator=disc
    )
    authorized, deleted = out[WRAPPER_DELETED]
    np.testing.assert_array_equal(authorized, output)
    with deep_lock.attached(generator.generator, deep_lock.NO_LOCK):
        np.testing.assert_allclose(deleted, generator.generator(x), atol=1e-6)
    assert not np.allclose(deleted, output, atol=1e-3)


def _first_step(*overrides: str) -> dict[str, float]:
    config = tiny(*overrides)
    family = get_family("egan_cyclegan")
    models = family.build_models(config, nnx.Rngs(0))
    optimizers = family.build_optimizers(config, models)
    batch = {k: jnp.asarray(v) for k, v in family.make_batches(config)(0, 0, 1).items()}
    metrics = nnx.jit(family.make_train_step(config))(models, optimizers, batch, jax.random.key(0))
    return {k: float(v) for k, v in metrics.items()}


def test_the_train_step_adds_the_weighted_term():
    off = _first_step()
    on = _first_step("loss.wrapper_deleted.weight=2", "loss.wrapper_deleted.margin=0.5")
    assert "g_wrapper_deleted" not in off
    term = on["g_wrapper_deleted"]
    assert -0.5 <= term < 0
    assert on["g_self_adversarial"] == pytest.approx(off["g_self_adversarial"], abs=1e-5)
    assert on["g_loss"] - off["g_loss"] == pytest.approx(2 * term, abs=1e-4)
    both = _first_step(
        "loss.wrapper_deleted.weight=2", "loss.wrapper_deleted.margin=0.5",
        "loss.wrapper_deleted.structure=grey_contrast", "loss.wrapper_deleted.structure_margin=0.05",
    )  # fmt: skip
    structure = both["g_wrapper_deleted"] - term  # the coarse grey-contrast term alone
    assert -0.05 <= structure < 0
    assert both["g_loss"] - on["g_loss"] == pytest.approx(2 * structure, abs=1e-4)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (("loss.wrapper_deleted.weight=-1",), "wrapper_deleted.weight"),
        (("loss.wrapper_deleted.margin=0",), "wrapper_deleted.margin"),
        (("loss.wrapper_deleted.statistics=max",), "wrapper_deleted.statistics"),
        (("loss.wrapper_deleted.weight=1", "model.adapter_bypass=false"), "adapter_bypass"),
        (("loss.wrapper_deleted.structure=edges",), "wrapper_deleted.structure"),
        (("loss.wrapper_deleted.structure_margin=-1",), "structure_margin"),
        (("loss.wrapper_deleted.structure_pool=3",), "divides data.image_size=32"),
        (("loss.wrapper_deleted.structure_pool=0",), "structure_pool"),
    ],
)
def test_bad_settings_are_clear_errors(overrides, match):
    with pytest.raises(ConfigError, match=match):
        get_family("egan_cyclegan").build_models(tiny(*overrides), nnx.Rngs(0))


def test_colour_correction_moves_the_mean_colour_and_keeps_the_structure():
    from egan_jax.evaluate_i2i_inputs import colour_corrected

    rng = np.random.default_rng(0)
    images = rng.uniform(0.0, 0.6, (4, 8, 8, 3)).astype(np.float32)  # a bright cast
    reference = rng.uniform(-0.5, 0.1, (6, 8, 8, 3)).astype(np.float32)
    out = colour_corrected(images, reference)
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), reference.mean(axis=(0, 1, 2)), atol=1e-5)
    np.testing.assert_allclose(out - out.mean(axis=(1, 2), keepdims=True),
                               images - images.mean(axis=(1, 2), keepdims=True), atol=1e-5)  # fmt: skip
    assert out.dtype == images.dtype
    assert colour_corrected(images + 1.5, reference).max() <= 1.0  # clipped to the image range


def test_the_report_scores_the_colour_corrected_wrapper_deleted_build(cheap_cycle_features):
    from egan_jax import evaluate_i2i
    from egan_jax.evaluate_i2i_inputs import colour_corrected, target_training_images
    from egan_jax.evaluate_i2i_report import COLOUR_CORRECTED, summarize
    from egan_jax.metrics import compute_fid
    from egan_jax.unauthorized import UnauthorizedSpec

    config = tiny()
    models = get_family("egan_cyclegan").build_models(config, nnx.Rngs(0))
    spec = UnauthorizedSpec(random_keys=0, near_keys=0, near_materials=0, label="eval")
    key = protect.load_key(config)
    rows, previews, _ = evaluate_i2i.cycle_rows(config, models, key, spec, None, None)
    row = {r["name"]: r for r in rows}[COLOUR_CORRECTED]
    assert row["kind"] == "colour_corrected"
    test_a, test_b = evaluate_i2i._cycle_test(config)
    deleted = evaluate_i2i.wrapper_deleted_fn(models["generator_ab"])(test_a)
    corrected = colour_corrected(deleted, target_training_images(config))
    network, _ = evaluate_i2i.feature_network(config)
    assert row["fd_a_to_b"] == pytest.approx(compute_fid(corrected, test_b, network), rel=1e-5)
    np.testing.assert_allclose(
        previews[COLOUR_CORRECTED], corrected[: len(previews[COLOUR_CORRECTED])]
    )
    # the goal reads this row too: a corrected FD under 3x the key's fails it
    cycle = [
        {"name": "k", "kind": "authorized", "fd_a_to_b": 10.0},
        {"name": "n", "kind": "no_key", "fd_a_to_b": 100.0},
        {"name": COLOUR_CORRECTED, "kind": "colour_corrected", "fd_a_to_b": 25.0},
    ]
    assert summarize("egan_cyclegan", cycle)["worst_unauthorized_ratio"] == 2.5
