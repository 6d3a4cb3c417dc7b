"""`experiments/egan_srgan_photos.py` with the feature key: the owner's key also permutes and
sign-flips SRResNet's head feature map (`model.feature_key`), and the generator without its input
map (raw LR, identity feature hook) is trained as one more unauthorized input (`adapter_bypass`).
Measured (README notes): correct key 29.32 dB vs baseline 31.65 (goal ≤ 0.2 dB NOT met), adapter
removed 21.53, every unauthorized input below bicubic (32.60); so it is not the default config.

`egan train experiments/egan_srgan_photos_feature.py --workdir runs/egan_srgan_feature`
`egan evaluate --workdir runs/egan_srgan_feature --baseline runs/srgan_baseline --random-keys 10`
"""

import dataclasses
from pathlib import Path

from egan_jax.config import Config, load_config


def get_config() -> Config:
    base = load_config(Path(__file__).with_name("egan_srgan_photos.py"))
    model = dataclasses.replace(
        base.model, feature_key=True, adapter_bypass=True, deep_lock=(),
        adapter=True, holder_bypass=False, skip="bicubic",  # measured with the learned map
    )  # fmt: skip
    return dataclasses.replace(base, model=model)
