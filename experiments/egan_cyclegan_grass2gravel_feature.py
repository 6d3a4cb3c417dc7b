"""`experiments/egan_cyclegan_grass2gravel.py` with the feature key: the owner's key also permutes
and sign-flips G_ab's head feature map (`model.feature_key`, a keyed lock inside the generator like
DCGAN's `feature_lock`), on top of the input block transform and its learned input map.

`egan train experiments/egan_cyclegan_grass2gravel_feature.py --workdir runs/egan_cyclegan_feature`
`egan evaluate --workdir runs/egan_cyclegan_feature --baseline runs/cyclegan_baseline`
"""

import dataclasses
from pathlib import Path

from egan_jax.config import Config, load_config


def get_config() -> Config:
    base = load_config(Path(__file__).with_name("egan_cyclegan_grass2gravel.py"))
    return dataclasses.replace(base, model=dataclasses.replace(base.model, feature_key=True))
