"""EGAN-protected CycleGAN grass -> gravel on the bundled textures (offline), 32-px crops, batch 1.

The protected direction is A -> B (grass -> gravel): G_ab sees the owner's block transform of its
input (block 4, shuffle + negative/positive) behind a learned per-block input map; raw grass, other
keys, near misses and G_ab without its input map are pushed away from the keyed translation
(self-adversarial L1 on D_b's last feature map, margin 1: measured better than L1 on output pixels,
which makes *different* gravel, not *bad* gravel; numbers in the README notes). G_ba stays unprotected. Sizes as
`experiments/cyclegan_grass2gravel.py` (width 32, 6 blocks), 1200 steps to fit ~10 CPU minutes;
the unprotected baseline is the same config with `family="cyclegan"`
(`egan_jax.evaluate_i2i.baseline_config`).

`egan train experiments/egan_cyclegan_grass2gravel.py --workdir runs/egan_cyclegan`
`egan evaluate --workdir runs/egan_cyclegan --baseline runs/cyclegan_small`
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
from egan_jax.families.egan_cyclegan import LossConfig, ModelConfig
from egan_jax.families.egan_image import SelfAdversarialConfig, UnauthorizedConfig


def get_config() -> Config:
    return Config(
        family="egan_cyclegan",
        seed=0,
        model=ModelConfig(
            width=32,
            num_blocks=6,
            discriminator_width=32,
            upsample="vjp",
            key_file=None,
            block=4,
            steps=("shuffle", "np"),
            adapter=True,
            adapter_lr_scale=25.0,
            adapter_bypass=True,
        ),  # fmt: skip
        loss=LossConfig(
            cycle_weight=10.0,
            identity_weight=0.5,
            pool_size=50,
            self_adversarial=SelfAdversarialConfig(
                weight=1.0,
                divergence="l1",
                margin=1.0,
                features="discriminator",
                discriminator_feature="conv4",
            ),
            unauthorized=UnauthorizedConfig(
                fraction=1.0, random_keys=4, near_keys=2, near_materials=2
            ),
        ),
        data=DataConfig(name="grass2gravel", split="train", image_size=32, channels=3),
        train=TrainConfig(steps=1200, batch_size=1),
        optim=OptimConfig(
            learning_rate=2e-4, b1=0.5, b2=0.999, schedule="linear_decay", decay_start=0.5
        ),
        log=LogConfig(every=50, sample_every=0, num_samples=16, tensorboard=False),
        checkpoint=CheckpointConfig(every=400, max_to_keep=2),
        eval=EvalConfig(every=0),
    )
