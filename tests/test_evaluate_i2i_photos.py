"""Whole-photo scores of an EGAN SRGAN run (egan_jax/evaluate_i2i_photos.py), on a tiny run."""

import json
import warnings

import pytest

from egan_jax import evaluate_i2i_photos as photos
from egan_jax.config import apply_overrides
from egan_jax.families import get_family

TINY = (
    "model.width=4", "model.num_blocks=0", "model.discriminator_width=4", "model.skip=bicubic",
    "data.image_size=32", "train.batch_size=2", "train.steps=1", "loss.pretrain_steps=100",
    "log.every=1", "log.sample_every=0", "log.tensorboard=false", "log.quiet=true",
    "checkpoint.every=0", "eval.every=0", "loss.unauthorized.random_keys=1",
    "loss.unauthorized.near_keys=1", "loss.unauthorized.near_materials=1",
)  # fmt: skip


def test_held_out_photos_are_cropped_to_whole_key_blocks():
    config = get_family("egan_srgan").default_config()
    pairs = photos.held_out_photos(config)
    assert len(pairs) == 2
    for lr, hr in pairs:
        assert lr.shape[0] % config.model.block == 0 and lr.shape[1] % config.model.block == 0
        assert hr.shape[:2] == (4 * lr.shape[0], 4 * lr.shape[1]) and min(lr.shape[:2]) >= 64


@pytest.mark.slow
def test_photo_rows_score_every_input_kind_on_whole_photos(tmp_path, capsys):
    from egan_jax.train import train_and_evaluate

    config = apply_overrides(get_family("egan_srgan").default_config(), list(TINY))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # srgan's "no VGG weights" notice
        train_and_evaluate(config, tmp_path / "run")
    photos.main(["--workdir", str(tmp_path / "run"), "--random-keys", "1"])
    rows = json.loads((tmp_path / "run" / "report" / "photos.json").read_text())
    kinds = [row["kind"] for row in rows]
    assert kinds[:2] == ["bicubic", "authorized"] and kinds[-1] == "adapter_removed"
    assert {"no_key", "random_key"} <= set(kinds)
    assert all(0 < row["psnr_y"] < 100 and 0 < row["ssim_y"] <= 1 for row in rows)
    assert "| bicubic |" in capsys.readouterr().out
