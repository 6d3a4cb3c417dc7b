"""CycleGAN horse <-> zebra (tfds `cycle_gan/horse2zebra`) as IPR-GAN: ResNet-9 generators, 70×70
PatchGAN, 128 px, batch 1, LSGAN, cycle λ = 10, identity 0.5, pool 50, Adam 2e-4, 200 epochs of
~1,067 images with the learning rate decaying linearly over the second half.

Images are resized to 128 px (the reference loads 143 and random-crops 128). Needs the dataset
prepared for tensorflow-datasets in array_record format, e.g.
`egan train experiments/cyclegan_horse2zebra.py --workdir runs/h2z --set data.data_dir=~/tfds`;
add `--set model.fid_weights=pt_inception-2015-12-05.npz` for FID per direction.
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
        model=ModelConfig(width=64, num_blocks=9, discriminator_width=64, upsample="vjp"),
        loss=LossConfig(cycle_weight=10.0, identity_weight=0.5, pool_size=50),
        data=DataConfig(
            name="tfds:cycle_gan/horse2zebra", split="train", image_size=128, channels=3
        ),
        train=TrainConfig(steps=213_400, batch_size=1),
        optim=OptimConfig(
            learning_rate=2e-4, b1=0.5, b2=0.999, schedule="linear_decay", decay_start=0.5
        ),
        log=LogConfig(every=100, sample_every=5000, num_samples=16),
        checkpoint=CheckpointConfig(every=5000, max_to_keep=3),
        eval=EvalConfig(every=50_000),
    )
