"""SRGAN ×4 on DIV2K (tfds `div2k/bicubic_x4`, features hr/lr), as IPR-GAN: SRResNet-16, 96-px HR
crops, batch 16, Adam 1e-4, MSE pre-training then VGG19 relu5_4 content + 1e-3 adversarial.

Needs DIV2K prepared for tensorflow-datasets in array_record format and converted VGG19 weights
(egan_jax.models.vgg), e.g.
`egan train experiments/srgan_div2k.py --workdir runs/srgan_div2k --set data.data_dir=~/tfds
 --set loss.vgg_weights=vgg19_features.npz`. Evaluation uses 10 images of the validation split.
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
from egan_jax.families.srgan import LossConfig, ModelConfig


def get_config() -> Config:
    return Config(
        family="srgan",
        seed=0,
        model=ModelConfig(scale=4, width=64, num_blocks=16, output="tanh", discriminator_width=64),
        loss=LossConfig(
            pretrain_steps=100_000, adversarial_weight=1e-3, vgg_weights=None, vgg_layer="relu5_4"
        ),
        data=DataConfig(name="tfds:div2k/bicubic_x4", split="train", image_size=96, channels=3),
        train=TrainConfig(steps=200_000, batch_size=16),
        optim=OptimConfig(learning_rate=1e-4, b1=0.9, b2=0.999),
        log=LogConfig(every=100, sample_every=5000, num_samples=16),
        checkpoint=CheckpointConfig(every=5000, max_to_keep=3),
        eval=EvalConfig(every=20_000),
    )
