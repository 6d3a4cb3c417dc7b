"""DCGAN on the bundled scikit-learn digits (offline), 32×32 grey: the ≤ 10-minute CPU target.

Width 32 (the generator's 512→256→128→64 channels halved, about a quarter of the FLOPs) is what fits
the 2-core CPU budget; on these 32×32 grey digits it still gets close to the real digits' own Fréchet
distance by step 2000 (numbers in the README). `--set model.width=64` is the IPR-GAN baseline width,
the one `make bench` times.

`egan train experiments/dcgan_digits.py --workdir runs/dcgan_digits`
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
        model=ModelConfig(latent_dim=128, width=32),
        loss=LossConfig(kind="hinge", discriminator_steps=1, adversarial_weight=1.0),
        data=DataConfig(name="digits", split="train", image_size=32, channels=1),
        train=TrainConfig(steps=2000, batch_size=64),
        optim=OptimConfig(learning_rate=2e-4, b1=0.5, b2=0.999),
        log=LogConfig(every=50, sample_every=250, num_samples=64),
        checkpoint=CheckpointConfig(every=250, max_to_keep=3),
        eval=EvalConfig(every=500, num_samples=1000),
    )
