"""SRGAN family options: the BN-free (EDSR-style) generator and the L1 pixel loss, from the config."""

import numpy as np
import pytest
from flax import nnx

from egan_jax import losses
from egan_jax.config import apply_overrides
from egan_jax.errors import ConfigError
from egan_jax.families import srgan

TINY = (
    "model.width=8",
    "model.num_blocks=1",
    "model.discriminator_width=8",
    "model.skip=bicubic",
    "data.image_size=32",
    "train.batch_size=2",
    "loss.pretrain_steps=1",
)


def tiny(*overrides: str):
    return apply_overrides(srgan.default_config(), [*TINY, *overrides])


def test_defaults_keep_srresnet_with_batch_norm_and_mse():
    config = srgan.default_config()
    assert (config.model.norm, config.model.residual_scale) == ("batch", 1.0)
    assert srgan.pixel_loss(config) is losses.l2


def test_config_builds_the_bn_free_generator_and_l1_pretraining_loss():
    config = tiny("model.norm=none", "model.residual_scale=0.1", "loss.pixel_loss=l1")
    models = srgan.build_models(config, nnx.Rngs(0))
    generator = models["generator"]
    assert generator.trunk_bn is None and generator.blocks[0].residual_scale == 0.1
    optimizers = srgan.build_optimizers(config, models)
    batch = srgan.make_batches(config)(0, 0, 1)
    with pytest.warns(UserWarning, match="pixel MSE"):
        step = srgan.make_train_step(config)
    metrics = nnx.jit(step)(models, optimizers, batch, None)
    sr = np.asarray(generator(batch["lr"]))
    assert sr.shape == batch["hr"].shape
    # content is the L1 pixel loss the step minimised, pixel_mse its MSE (different numbers)
    assert float(metrics["content"]) > 0 and float(metrics["content"]) != float(
        metrics["pixel_mse"]
    )


def test_unknown_pixel_loss_is_a_config_error():
    with pytest.raises(ConfigError, match="pixel_loss"):
        srgan.build_models(tiny("loss.pixel_loss=huber"), nnx.Rngs(0))


def test_evaluate_scores_whole_held_out_photos_against_bicubic():
    config = tiny("data.image_size=96")
    models = srgan.build_models(config, nnx.Rngs(0))  # zero tail: the untrained model is bicubic
    scores = srgan.make_evaluate(config)(models, None)
    assert {"psnr_y", "photo_psnr_y", "photo_ssim_y", "bicubic_photo_psnr_y"} <= set(scores)
    assert abs(scores["photo_psnr_y"] - scores["bicubic_photo_psnr_y"]) < 0.1  # jax vs PIL bicubic
    assert (
        scores["photo_psnr_y"] < scores["psnr_y"]
    )  # whole photos: detail weighs in, flat tiles not
