"""EncryIP on the bundled scikit-learn digits (offline): 32×32 grey, 10 classes, small CNN.

N = 10 classes × 10 encrypted labels + 28 Fakes = 128 outputs (measured on XLA:CPU: heads of up to 128
outputs cost the same as a 10-way head, 129 and more ~30% more per forward pass). Objective: the
class-sum cross-entropy (what a key holder reads) + the per-index cross-entropy on the expectation of
the randomized labels (uniform over the class's 10 indices: ``loss.label_draws=0``) + 0.125 × the
triggers' cross-entropy; the head starts tied (``model.head_init=tied``: a class's 10 columns from one).

Why tied and 0.125 (the family's defaults are random and 1): cross-validated over all 1,797 digits
(`egan encryip parity`, 5 folds, 600 steps, both models on the same batches), the family's defaults
left every user key 0.78 point below the plain twin (seed 0: 98.55% vs 99.33%, 95% CI -1.28 to
-0.33). The model underfit, and the triggers were why: class-sum loss over the last 60 steps 0.12 vs
the plain twin's 0.020, and 0.022 with no triggers (each of a step's 8 triggers weighed 4× a natural
image). Seed 1, fold 0 (360 held-out images; plain twin 5 errors), same 600 steps for both models:

| EncryIP setting | class-sum loss | held-out errors | trigger hits | index spread |
|---|---|---|---|---|
| random head, trigger_weight 1 (family) | 0.122 | 10 | 100% | 0.80 |
| tied head | 0.078 | 9 | 100% | 0.74 |
| tied, ``loss.trigger_batch_norm=running`` | 0.068 | 7 | 100% | 0.74 |
| tied, ``loss.trigger_weight=0.125`` (here) | 0.030 | 6 | 100% | 0.79 |

With these defaults, 5 folds × seeds 0, 1, 2 (5,391 held-out predictions, 3 user keys): plain
twin 99.24%, every user key's worst 99.07%, gap -0.17 point (paired 95% CI -0.33 to -0.00);
per seed -0.17 / -0.22 / -0.11 (McNemar p 0.51 / 0.34 / 0.73). The family's defaults: -0.78
(seed 0). Class-sum loss 0.031 vs the plain twin's 0.018 (mean of the 15 fold runs); every
trigger learned in every fold (hit rate 100%); index spread 0.92-0.93. Goal
(within 0.5 point): met, the whole 95% interval inside it.

    egan encryip parity experiments/encryip_digits.py --registry keys/owner.json --folds 5 \\
        --seeds 0 --out runs/parity_s0      # one process per seed (1, 2 likewise), then:
    egan encryip parity experiments/encryip_digits.py --registry keys/owner.json --folds 5 \\
        --out runs/parity --combine runs/parity_s0 runs/parity_s1 runs/parity_s2

Earlier, on the 180-image test split: sampled labels instead (``label_draws=10``) alone -2.2 points
(spread 0.56); with the class-sum term at weight 0.1 one index per class wins (spread 0.10).
A plain 10-way twin and a watermarked twin (signature in the batch-norm scales) train on the same
batches, for the comparisons (`egan encryip compare`).

    egan encryip keygen --registry keys/encryip_owner.json
    egan encryip issue-user --registry keys/encryip_owner.json --user alice --out keys/alice.json
    egan train experiments/encryip_digits.py --workdir runs/encryip_digits \\
        --set model.registry=keys/encryip_owner.json
    egan encryip publish --workdir runs/encryip_digits --registry keys/encryip_owner.json
    egan encryip decrypt --workdir runs/encryip_digits --key keys/alice.json --split test
    egan encryip evaluate --workdir runs/encryip_digits --registry keys/encryip_owner.json
"""

from egan_jax.config import (
    CheckpointConfig,
    Config,
    DataConfig,
    EvalConfig,
    LogConfig,
    OptimConfig,
    TrainConfig,
)
from egan_jax.families.encryip import LossConfig, ModelConfig


def get_config() -> Config:
    return Config(
        family="encryip",
        seed=0,
        model=ModelConfig(
            arch="cnn",
            width=32,
            baseline=True,
            registry=None,
            per_class=10,
            num_fakes=28,
            codebook_label="digits-v1",
            head_init="tied",
            watermark_signature="EncryIP digits",
        ),
        loss=LossConfig(
            class_weight=1.0,
            index_weight=1.0,
            trigger_weight=0.125,
            triggers_per_step=8,
            label_draws=0,
            eval_users=3,
        ),
        data=DataConfig(name="digits", split="train", image_size=32, channels=1),
        train=TrainConfig(steps=600, batch_size=64),
        optim=OptimConfig(learning_rate=1e-3, b1=0.9, b2=0.999, schedule="linear_decay"),
        log=LogConfig(every=50, sample_every=0, num_samples=16),
        checkpoint=CheckpointConfig(every=200, max_to_keep=2),
        eval=EvalConfig(every=0),
    )
