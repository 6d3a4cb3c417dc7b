"""SRGAN ×4 on the bundled photos (offline), sized for a CPU: HR crops of scikit-image/scikit-learn
photos, LR by PIL bicubic ÷4; evaluation on the held-out chelsea and china photos (Y PSNR/SSIM, 4-px
border, against bicubic) — per whole photo (`photo_psnr_y`, the SR benchmarks' convention) and as
the mean over 64-px tiles (`psnr_y`).

The recipe, chosen by side-by-side 300-step runs (README notes; width 32, 4 blocks, 64-px crops):
- `skip="bicubic"`: the network learns a residual over bicubic up-sampling and starts *as* bicubic;
- `pixel_loss="l1"` for the pre-training (SRResNet) phase: tile mean 32.19 dB vs 31.72 with the MSE,
  whole photos 27.24 vs 26.95 bicubic. The MSE's gradient vanishes for small errors, so the residual
  keeps a ~1-grey-level offset in flat regions (sky), where bicubic is already ≥ 45 dB;
- SRResNet with batch norm (Ledig et al.) is kept: the BN-free EDSR variant (`model.norm="none"`,
  `model.residual_scale=0.1`) measured the same or worse (31.71 MSE, 31.99 L1);
- the 7 training photos: adding the 11 other photos scikit-image ships (`data.split=
  "train_extended"`) lowered the tile mean (30.98, BN-free MSE).
Then 100 steps of content + 1e-3 adversarial (pixel content: no VGG19 weights file offline; the run
warns and logs content_vgg = 0; convert torchvision's weights (egan_jax.models.vgg) and add
`--set loss.vgg_weights=vgg19_features.npz` for the perceptual loss). Evaluation at step 300 (the
pre-trained SRResNet) and 400 (SRGAN).

The paper's sizes: `--set model.width=64 --set model.num_blocks=16 --set model.discriminator_width=64
--set data.image_size=96` (far beyond a 2-core CPU's minutes).

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
        model=ModelConfig(
            scale=4, width=32, num_blocks=4, output="tanh", skip="bicubic", discriminator_width=32
        ),
        loss=LossConfig(
            pretrain_steps=300, pixel_loss="l1", adversarial_weight=1e-3, vgg_weights=None
        ),
        data=DataConfig(name="photos", split="train", image_size=64, channels=3),
        train=TrainConfig(steps=400, batch_size=16),
        optim=OptimConfig(learning_rate=1e-4, b1=0.9, b2=0.999),
        log=LogConfig(every=20, sample_every=0, num_samples=16),
        checkpoint=CheckpointConfig(every=100, max_to_keep=2),
        eval=EvalConfig(every=100),
    )
