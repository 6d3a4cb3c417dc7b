"""CycleGAN grass <-> gravel on bundled scikit-image textures (offline), 32-px crops, batch 1.

Why this pair: two real photographs whose domains differ clearly in local texture, with no global
structure the generator must keep, so a small ResNet generator learns the mapping on a CPU in
minutes (see egan_jax/data_paired.py). Generators are narrower than the paper's (width 32, 6 blocks)
to fit the CPU budget; LSGAN, cycle λ = 10, identity 0.5, pool 50, Adam 2e-4, linear decay over the
second half, as the reference.

`egan train experiments/cyclegan_grass2gravel.py --workdir runs/cyclegan_grass2gravel`
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
from egan_jax.families.cyclegan import LossConfig, ModelConfig


def get_config() -> Config:
    return Config(
        family="cyclegan",
        seed=0,
        model=ModelConfig(width=32, num_blocks=6, discriminator_width=32, upsample="vjp"),
        loss=LossConfig(cycle_weight=10.0, identity_weight=0.5, pool_size=50),
        data=DataConfig(name="grass2gravel", split="train", image_size=32, channels=3),
        train=TrainConfig(steps=2000, batch_size=1),
        optim=OptimConfig(
            learning_rate=2e-4, b1=0.5, b2=0.999, schedule="linear_decay", decay_start=0.5
        ),
        log=LogConfig(every=50, sample_every=500, num_samples=16),
        checkpoint=CheckpointConfig(every=500, max_to_keep=3),
        eval=EvalConfig(every=0),
    )
