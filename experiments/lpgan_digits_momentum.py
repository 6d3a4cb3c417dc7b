"""LP-GAN on the bundled digits, the first recipe: positive momentum (μ = +0.5), 300 steps.

Same model, data, batch and rate as experiments/lpgan_digits.py; μ = +0.5 and 300 steps. This
recipe is chaotic: a 2^-24 change of the initial weights grows to a 7.6% change of the generator's
weights after 300 steps (seed 0), and one seed's Fréchet distance moves by 1.27–2.45× between
float32, float64 and such roundings, so secure vs plaintext training of one seed is not a meaningful
comparison with it. Kept so that its measured numbers stay reproducible
(bench/results/lpgan_training_momentum.json, which was lpgan_training.json before session 8 and
records the experiment under its old name, lpgan_digits.py; lpgan_sensitivity*.json;
lpgan_training_loss_scale6.json):

  python -m bench.bench_mpc --train-steps 300 --seeds 0,1,2 --jobs 3 \
      --experiment experiments/lpgan_digits_momentum.py --result lpgan_training_momentum
"""

import dataclasses
from pathlib import Path

from egan_jax.lpgan.owner import load_experiment
from egan_jax.lpgan.train import LpganConfig


def get_config() -> LpganConfig:
    base = load_experiment(Path(__file__).with_name("lpgan_digits.py"))
    return dataclasses.replace(base, momentum=0.5, steps=300)
