"""Key-protected CIFAR-style ResNet-18 at its real width 64 on the bundled digits at 32×32.

`experiments/classifier_digits.py` with ``model.arch=resnet18``, ``model.width=64`` (11.2 M
parameters): block size 4, pixel shuffling + negative/positive + FFX, the deep lock inside every
residual branch (8 sites, ``model.deep_lock=all``), an unprotected twin on the same batches; Adam
1e-3, batch 64, 300 steps (12 epochs of the 1617 training images). CIFAR-10 itself needs a download
(`experiments/classifier_cifar10.py`), which this machine cannot make.

    egan keygen --out keys/classifier.key
    egan train experiments/classifier_digits_resnet18.py --workdir runs/classifier_resnet18 \\
        --set model.transform.key_file=keys/classifier.key
    egan evaluate --workdir runs/classifier_resnet18
    egan attack finetune --workdir runs/classifier_resnet18 --steps 50
    egan attack estimate --workdir runs/classifier_resnet18 --steps 50
    egan attack finetune --workdir COPY_OF_THE_RUN --steps 150  # 31 min; keeps the 50-step rows

Measured end to end (key egk1-2145…, seed 0, 180 test images: one image = 0.56 points; 2 CPU cores
shared with other jobs, load 7–12: training 43 min wall, 4.2 s a step at load 2; evaluation 1.3
min; attacks 50 steps — a quarter of the default half-of-training budget, to fit the CPU):

| model / input | accuracy % |
|---|---:|
| plain model (twin), plain images | 99.4 |
| correct key | **99.4** (±0: within 1 point, met) |
| plain images; the stolen checkpoint without the deep lock | 11.1; 11.1 |
| 10 random keys, mean ± sd (worst) | 17.1 ± 7.3 (30.0): chance goal (≤ 20) not met |
| 3 near-miss keys (one secret bit flipped) | 13.1 ± 1.6 (15.0) |
| FFX probe: another key's FFX table at the owner's positions | 99.8: the FFX-coded values are ignored |
| FFX probe: another key's FFX positions | 15.0 (worst 20.6) |

| attack (no key; 50 steps unless said) | 1% data (16 images) | 10% data (162 images) |
|---|---:|---:|
| from scratch, same images and budget | 42.8 | 90.0 |
| fine-tune the stolen weights | 44.4 (+1.7) | 95.6 (**+5.6**) |
| key estimation: per-block linear adapter on the frozen stolen model | 11.1 (−31.7) | 11.1 (−78.9) |
| from scratch, 150 steps (``--steps 150``, the default budget) | 42.2 | 93.3 |
| fine-tune the stolen weights, 150 steps | 43.9 (+1.7) | 96.1 (+2.8) |

Like the small CNN, the ResNet reads the 7 of 16 block positions that this key's FFX leaves in the
clear (the FFX-table probe keeps 99.8%), and loses nothing with the correct key. Unauthorized
inputs: 4 of the 10 random keys score above 20% (21.7–30.0); plain images and near-miss keys meet
the chance goal.
"""

import dataclasses
from pathlib import Path

from egan_jax.config import Config, load_config


def get_config() -> Config:
    base = load_config(Path(__file__).with_name("classifier_digits.py"))
    return dataclasses.replace(
        base,
        model=dataclasses.replace(base.model, arch="resnet18", width=64),
        train=dataclasses.replace(base.train, steps=300),
    )
