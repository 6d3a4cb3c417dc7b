"""SRGAN ×4 on the bundled photos (offline): HR crops 96 px of scikit-image/scikit-learn photos,
LR by PIL bicubic ÷4; evaluation on the held-out chelsea and china photos (Y PSNR/SSIM vs bicubic).

The architecture is the paper's (SRResNet-16, width 64; VGG-style D), batch 16, Adam 1e-4. With no
VGG19 weights file the content loss is the pixel MSE (the run warns and logs content_vgg = 0); to use
the perceptual loss convert torchvision's weights (egan_jax.models.vgg) and add
`--set loss.vgg_weights=vgg19_features.npz`.

`egan train experiments/srgan_photos.py --workdir runs/srgan_photos`
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
        loss=LossConfig(pretrain_steps=1000, adversarial_weight=1e-3, vgg_weights=None),
        data=DataConfig(name="photos", split="train", image_size=96, channels=3),
        train=TrainConfig(steps=2000, batch_size=16),
        optim=OptimConfig(learning_rate=1e-4, b1=0.9, b2=0.999),
        log=LogConfig(every=20, sample_every=500, num_samples=16),
        checkpoint=CheckpointConfig(every=250, max_to_keep=3),
        eval=EvalConfig(every=500),
    )
