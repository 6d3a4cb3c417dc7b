"""LP-GAN on the bundled digits: a narrow DCGAN trained by two servers on secret shares.

The recipe is SGD with negative momentum (μ = −0.5) for 600 steps. Negative momentum damps the
rotation of the two-player game (Gidel et al. 2019): a 2^-24 change of the initial weights ends at
0.27% of the generator's weights after 300 steps (7.6% with μ = +0.5), so secure and plaintext
training of one seed stay comparable, and 600 steps bring the digits FD back near the μ = +0.5
recipe's (README, LP-GAN section). The earlier μ = +0.5, 300-step recipe is kept in
experiments/lpgan_digits_momentum.py, the μ = −0.5, 300-step one in experiments/lpgan_digits_stable.py.

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
        steps=600,
        batch_size=16,
        learning_rate=0.02,
        momentum=-0.5,
        loss="nonsaturating",
        seed=0,
        checkpoint_every=1,
        log_every=10,
        num_samples=64,
        # 2^10 loss scale: the generator's batch-norm updates lose up to 16% to fixed point at 2^6,
        # about 2% at 2^10 (measured on one step against the float64 step)
        loss_scale_bits=10,
    )
