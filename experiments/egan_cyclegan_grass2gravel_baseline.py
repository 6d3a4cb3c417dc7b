"""The unprotected baseline of `experiments/egan_cyclegan_grass2gravel.py`: the plain cyclegan family with the same
sizes, data, schedule, steps and seed (`egan_jax.evaluate_i2i.baseline_config`), for `egan evaluate
--baseline`.

`egan train experiments/egan_cyclegan_grass2gravel_baseline.py --workdir runs/cyclegan_baseline`
"""

from pathlib import Path

from egan_jax.config import Config, load_config
from egan_jax.evaluate_i2i import baseline_config


def get_config() -> Config:
    return baseline_config(load_config(Path(__file__).with_name("egan_cyclegan_grass2gravel.py")))
