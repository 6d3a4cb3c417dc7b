"""`experiments/egan_srgan_photos_feature.py` without `adapter_bypass` (the comparison run).

`egan train experiments/egan_srgan_photos_feature_nobypass.py --workdir runs/egan_srgan_fk_nb`
"""

import dataclasses
from pathlib import Path

from egan_jax.config import Config, load_config


def get_config() -> Config:
    base = load_config(Path(__file__).with_name("egan_srgan_photos_feature.py"))
    return dataclasses.replace(base, model=dataclasses.replace(base.model, adapter_bypass=False))
