"""`experiments/egan_srgan_photos_feature.py` with the unauthorized passes in batch-statistics
mode (`loss.unauthorized.batch_norm="batch"`): with "running" the generator can separate its
running-statistics (eval) outputs from its batch-statistics (training) ones, so the self-adversarial
term damages the eval-mode output of the correct key too (measured: README notes).

`egan train experiments/egan_srgan_photos_feature_bnbatch.py --workdir runs/egan_srgan_fk_bn`
"""

import dataclasses
from pathlib import Path

from egan_jax.config import Config, load_config


def get_config() -> Config:
    base = load_config(Path(__file__).with_name("egan_srgan_photos_feature.py"))
    unauthorized = dataclasses.replace(base.loss.unauthorized, batch_norm="batch")
    return dataclasses.replace(base, loss=dataclasses.replace(base.loss, unauthorized=unauthorized))
