"""`experiments/egan_cyclegan_grass2gravel.py` with both locks: the input lock (`model.input_lock`,
T_k(x + β_k) with G_ab subtracting γ = T_k(β_k), `egan_jax.families.egan_image_lock`) and the
feature lock on G_ab's head feature map (`model.feature_lock`).

`egan train experiments/egan_cyclegan_grass2gravel_locks.py --workdir runs/egan_cyclegan_locks`
`egan evaluate --workdir runs/egan_cyclegan_locks --baseline runs/cyclegan_baseline`
"""

import dataclasses
from pathlib import Path

from egan_jax.config import Config, load_config


def get_config() -> Config:
    base = load_config(Path(__file__).with_name("egan_cyclegan_grass2gravel.py"))
    model = dataclasses.replace(base.model, feature_key=True, feature_lock=True, input_lock=True)
    return dataclasses.replace(base, model=model)
