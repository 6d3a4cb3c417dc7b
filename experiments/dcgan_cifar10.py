"""DCGAN on CIFAR-10 as in IPR-GAN (REFERENCE.md §4): 32×32 RGB, hinge loss, batch 64, 100k steps.

Needs CIFAR-10 prepared for tensorflow-datasets (`pip install egan_jax[tfds]`), e.g.
`egan train experiments/dcgan_cifar10.py --workdir runs/dcgan_cifar10 --set data.data_dir=~/tfds`.
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
from egan_jax.families.dcgan import LossConfig, ModelConfig


def get_config() -> Config:
    return Config(
        family="dcgan",
        seed=0,
        model=ModelConfig(latent_dim=128, width=64),
        loss=LossConfig(kind="hinge", discriminator_steps=1, adversarial_weight=1.0),
        data=DataConfig(name="tfds:cifar10", split="train", image_size=32, channels=3),
        train=TrainConfig(steps=100_000, batch_size=64),
        optim=OptimConfig(learning_rate=2e-4, b1=0.5, b2=0.999),
        log=LogConfig(every=100, sample_every=2000, num_samples=64),
        checkpoint=CheckpointConfig(every=2000, max_to_keep=3),
        eval=EvalConfig(every=10_000, num_samples=5000),
    )
