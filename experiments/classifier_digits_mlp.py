"""The digits classifier's FFX recipe: `experiments/classifier_digits.py` (shuffle + NP + FFX,
block 4, deep lock) plus random ±2 px translations (``loss.augment_shift=2``) and a per-position
pixel MLP as the first layer (``model.input_mlp=16``, `egan_jax.models.classifier_position_mlp`);
the plain twin gets both too.

    egan train experiments/classifier_digits_mlp.py --workdir runs/classifier_mlp \\
        --set model.transform.key_file=keys/classifier.key
    egan evaluate --workdir runs/classifier_mlp
    egan attack finetune --workdir runs/classifier_mlp --steps 300

Correct key vs the plain twin, key egk1-2145… (FFX codes 9 of 16 positions), 600 steps, three
training seeds side by side (180 test images: one image = 0.56 points; a throwaway script that
trains both arms with the family's own models, batches and step, seed S = ``--set seed=S``):

| all three, block 4 | seed 0 | seed 1 | seed 2 | mean cost |
|---|---:|---:|---:|---:|
| classifier_digits.py (no translations) | 98.9 / 93.9 | 98.9 / 95.0 | 98.3 / 94.4 | −4.3 |
| + ``loss.augment_shift=2`` | 98.9 / 97.2 | 99.4 / 99.4 | 98.3 / 97.8 | −0.7 |
| + ``model.input_mlp=16`` (this config) | 98.9 / 97.8 | 98.3 / 98.3 | 99.4 / 99.4 | **−0.4** |

(plain / correct key, %.) Both translation rows are within 1 point on the mean; the position MLP's
worst seed is −1.1 (two test images) against −1.7, and its training loss ends 3–4× lower (0.04–0.06
vs 0.14–0.26): not a significant difference on 180 test images, but its cost is never larger.
``egan train`` of this config (seed 0, the loop's own translation draws; load ~7): plain 98.3, correct key 99.4,
plain images 15.0, stolen weights without the deep lock 10.0, random keys 14.0 ± 6.2 (worst 28.9),
near-miss keys worst 16.1. Attacks (300 steps, seed 0): fine-tune 1% / 10% data 53.9 / 95.0 vs
from scratch 48.3 / 95.0 (+5.6 / 0; the default config: +3.9 at seed 0), key estimation 10.0 /
10.0. The "FFX probe" row (another key's table at the owner's
FFX positions) keeps 99.4: the model reads the positions FFX leaves clear, not the codes (so does
ResNet-18 without this layer: `experiments/classifier_digits_resnet18.py`).
"""

import dataclasses
from pathlib import Path

from egan_jax.config import Config, load_config


def get_config() -> Config:
    base = load_config(Path(__file__).with_name("classifier_digits.py"))
    return dataclasses.replace(
        base,
        model=dataclasses.replace(base.model, input_mlp=16),
        loss=dataclasses.replace(base.loss, augment_shift=2),
    )
