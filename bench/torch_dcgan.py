"""PyTorch side of bench_dcgan: the same DCGAN train step, timed, printed as one JSON line.

Runs in its own venv (bench/.venv-torch, torch 2.13.0 CPU); it imports nothing from egan_jax.
Network and step mirror egan_jax.models.dcgan and bench/bench_dcgan.py: G linear -> 8w·s·s,
3× [ConvTranspose 4×4 s2, BN, ReLU], conv 3×3, tanh; D SNGAN-style with spectral norm, LeakyReLU
0.1; hinge loss; D pass on real and fake concatenated; Adam 2e-4, β (0.5, 0.999).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def use_device(device: str) -> torch.device:
    """`device` as a torch.device; on CUDA, cuDNN autotuning and TF32 matmuls.

    TF32 matches what XLA does with float32 convolutions and matmuls on an H100 by default, and
    `float(loss)` in each step waits for the GPU, so a timed step includes all its kernels.
    (Not `torch.set_default_device`: its function mode adds Python work to every op.)
    """
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return torch.device(device)


class Generator(nn.Module):
    def __init__(self, latent_dim: int, image_size: int, channels: int, width: int):
        super().__init__()
        self.start, self.width = image_size // 8, width
        self.linear = nn.Linear(latent_dim, self.start * self.start * 8 * width)
        layers = []
        widths = [8 * width, 4 * width, 2 * width, width]
        for cin, cout in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout)]
            layers += [nn.ReLU()]
        layers += [nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z):
        h = self.linear(z).view(z.shape[0], 8 * self.width, self.start, self.start)
        return self.main(h)


class Discriminator(nn.Module):
    def __init__(self, image_size: int, channels: int, width: int):
        super().__init__()
        widths = [channels, width, 2 * width, 4 * width]
        layers = []
        for cin, cout in zip(widths[:-1], widths[1:], strict=True):
            layers += [spectral_norm(nn.Conv2d(cin, cout, 3, 1, 1)), nn.LeakyReLU(0.1)]
            layers += [spectral_norm(nn.Conv2d(cout, cout, 4, 2, 1)), nn.LeakyReLU(0.1)]
        layers += [spectral_norm(nn.Conv2d(4 * width, 8 * width, 3, 1, 1)), nn.LeakyReLU(0.1)]
        self.main = nn.Sequential(*layers)
        final = image_size // 8
        self.head = spectral_norm(nn.Linear(final * final * 8 * width, 1))

    def forward(self, x):
        return self.head(self.main(x).flatten(1))[:, 0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--latent", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the GPU check)")
    args = parser.parse_args()
    device = use_device(args.device)
    torch.manual_seed(0)
    generator = Generator(args.latent, args.image_size, args.channels, args.width).to(device)
    discriminator = Discriminator(args.image_size, args.channels, args.width).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    size = (args.batch, args.channels, args.image_size, args.image_size)
    real = torch.rand(size, device=device) * 2 - 1

    def step():
        n = real.shape[0]
        with torch.no_grad():
            fake = generator(torch.randn(n, args.latent, device=device))
        logits = discriminator(torch.cat([real, fake]))
        loss_d = (torch.relu(1 - logits[:n]) + torch.relu(1 + logits[n:])).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = -discriminator(generator(torch.randn(n, args.latent, device=device))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return float(loss_d.detach()) + float(loss_g.detach())

    for _ in range(args.warmup):
        step()
    times, cpu_times = [], []
    for _ in range(args.repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    result = {
        "step_s": min(times),
        "cpu_s": min(cpu_times),
        "times_s": times,
        "cpu_times_s": cpu_times,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": args.device,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
