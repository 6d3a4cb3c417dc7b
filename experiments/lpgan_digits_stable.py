"""LP-GAN on the bundled digits, negative momentum (μ = −0.5), 300 steps.

The default experiment (experiments/lpgan_digits.py) at 300 steps instead of 600: the recipe of
the session-7 measurements at 300 steps (secure / float32 FD 0.996–1.011 on seeds 0–5,
bench/results/lpgan_training_stable.json). The price of the short run: the FD after 300 steps is
150–245 instead of 75–204 at 600 steps (README, LP-GAN section).

  egan lpgan train experiments/lpgan_digits_stable.py --workdir runs/lpgan_stable/owner \
      --servers 127.0.0.1:7100,127.0.0.1:7101
"""

import dataclasses
from pathlib import Path

from egan_jax.lpgan.owner import load_experiment
from egan_jax.lpgan.train import LpganConfig


def get_config() -> LpganConfig:
    base = load_experiment(Path(__file__).with_name("lpgan_digits.py"))
    return dataclasses.replace(base, steps=300)
