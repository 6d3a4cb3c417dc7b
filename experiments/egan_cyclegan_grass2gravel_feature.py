"""`experiments/egan_cyclegan_grass2gravel.py` with the feature key: the owner's key also permutes
and sign-flips G_ab's head feature map (`model.feature_key`, a keyed lock inside the generator like
DCGAN's `feature_lock`), on top of the input block transform and its learned input map.
Measured (seed 0, digits-feature FD, baseline 13.65): correct key 16.63; no key 18.17 (1.09×),
random keys 25.61–41.40 (worst 1.54×), near-miss material 16.18–17.52 (0.97–1.05×), input map
removed 16.94 (1.02×): without an offset the network tolerates the identity permutation.

`egan train experiments/egan_cyclegan_grass2gravel_feature.py --workdir runs/egan_cyclegan_feature`
`egan evaluate --workdir runs/egan_cyclegan_feature --baseline runs/cyclegan_baseline`
"""

import dataclasses
from pathlib import Path

from egan_jax.config import Config, load_config


def get_config() -> Config:
    base = load_config(Path(__file__).with_name("egan_cyclegan_grass2gravel.py"))
    model = dataclasses.replace(
        base.model,
        feature_key=True,
        feature_lock=False,
        input_lock=False,
        deep_lock=(),
        adapter=True,
    )
    return dataclasses.replace(base, model=model)
