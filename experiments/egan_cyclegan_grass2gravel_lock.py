"""`experiments/egan_cyclegan_grass2gravel.py` with the feature lock (`model.feature_lock`): the
owner's key permutes and sign-flips G_ab's head feature map after a secret per-channel offset, and
G_ab stores γ = a_k(0) and subtracts it (DCGAN's `feature_lock`), on top of the input transform.
Measured (seed 0, digits-feature FD, baseline 13.65): correct key 16.29; no key 127.80 (7.8×),
random keys 116.73–134.19 (≥ 7.2×), near keys 128–130, feature near misses 115–117 (≥ 7.1×), but
near misses of the *input* transform 16.17 / 16.67 (1.0×) and input map removed 20.21 (1.24×).

`egan train experiments/egan_cyclegan_grass2gravel_lock.py --workdir runs/egan_cyclegan_lock`
`egan evaluate --workdir runs/egan_cyclegan_lock --baseline runs/cyclegan_baseline`
"""

import dataclasses
from pathlib import Path

from egan_jax.config import Config, load_config


def get_config() -> Config:
    base = load_config(Path(__file__).with_name("egan_cyclegan_grass2gravel.py"))
    model = dataclasses.replace(
        base.model,
        feature_key=True,
        feature_lock=True,
        input_lock=False,
        deep_lock=(),
        adapter=True,
    )
    return dataclasses.replace(base, model=model)
