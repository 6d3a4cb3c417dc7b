"""`experiments/egan_cyclegan_grass2gravel.py` with the feature lock (`model.feature_lock`): the
owner's key permutes and sign-flips G_ab's head feature map after a secret per-channel offset, and
G_ab stores γ = a_k(0) and subtracts it (DCGAN's `feature_lock`), on top of the input transform.

`egan train experiments/egan_cyclegan_grass2gravel_lock.py --workdir runs/egan_cyclegan_lock`
`egan evaluate --workdir runs/egan_cyclegan_lock --baseline runs/cyclegan_baseline`
"""

import dataclasses
from pathlib import Path

from egan_jax.config import Config, load_config


def get_config() -> Config:
    base = load_config(Path(__file__).with_name("egan_cyclegan_grass2gravel.py"))
    model = dataclasses.replace(base.model, feature_key=True, feature_lock=True)
    return dataclasses.replace(base, model=model)
