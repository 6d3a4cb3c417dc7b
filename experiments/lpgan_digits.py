"""LP-GAN on the bundled digits: a narrow DCGAN trained by two servers on secret shares.

  egan lpgan serve --party 0 --port 7100 --peer-port 7102 --workdir runs/lpgan/s0 &
  egan lpgan serve --party 1 --port 7101 --peer-port 7102 --workdir runs/lpgan/s1 &
  egan lpgan train experiments/lpgan_digits.py --workdir runs/lpgan/owner \
      --servers 127.0.0.1:7100,127.0.0.1:7101
  egan lpgan sample experiments/lpgan_digits.py --servers 127.0.0.1:7100,127.0.0.1:7101 \
      --out lpgan_samples.png
"""

from egan_jax.lpgan.model import ModelConfig
from egan_jax.lpgan.train import LpganConfig


def get_config() -> LpganConfig:
    return LpganConfig(
        model=ModelConfig(latent_dim=16, width=8, image_size=32, channels=1, negative_slope=0.2),
        dataset="digits",
        steps=300,
        batch_size=16,
        learning_rate=0.02,
        momentum=0.5,
        loss="nonsaturating",
        seed=0,
        checkpoint_every=1,
        log_every=10,
        num_samples=64,
        # 2^10 loss scale: the generator's batch-norm updates lose up to 16% to fixed point at 2^6,
        # about 2% at 2^10 (measured on one step against the float64 step)
        loss_scale_bits=10,
    )
