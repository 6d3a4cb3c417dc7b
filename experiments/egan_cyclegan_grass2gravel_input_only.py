"""The previous default of `experiments/egan_cyclegan_grass2gravel.py`: the key only in the input
block transform (and its learned input map), no feature key, no locks — kept as the ablation.

Measured before (session 3 retrain, seed 0, digits-feature FD): correct key 14.56, no key 15.77
(1.08×), best random key 13.74 (0.94×), near-miss material 14.40 / 14.75 (≈ 1.0×): a translation
network maps a block-shuffled grass crop to gravel just the same.

`egan train experiments/egan_cyclegan_grass2gravel_input_only.py --workdir runs/egan_cyclegan_input_only`
"""

import dataclasses
from pathlib import Path

from egan_jax.config import Config, load_config


def get_config() -> Config:
    base = load_config(Path(__file__).with_name("egan_cyclegan_grass2gravel.py"))
    model = dataclasses.replace(
        base.model,
        feature_key=False,
        feature_lock=False,
        input_lock=False,
        deep_lock=(),
        adapter=True,
    )
    return dataclasses.replace(base, model=model)
