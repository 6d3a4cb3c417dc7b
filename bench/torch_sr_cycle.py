"""PyTorch side of bench_sr_cycle: SRGAN and CycleGAN train steps, timed, printed as one JSON line.

Runs in its own venv (bench/.venv-torch, torch 2.13.0 CPU); it imports nothing from egan_jax. The
networks and steps mirror egan_jax.models.{srgan,cyclegan} and egan_jax.families.{srgan,cyclegan}:
- SRGAN: SRResNet (9×9 conv + PReLU, B residual blocks conv-BN-PReLU-conv-BN, conv-BN, global skip,
  2× [conv 4w, PixelShuffle 2, PReLU], 9×9 conv, tanh); D VGG-style 8 convs with BN and
  LeakyReLU 0.2, global average pool, linear 16w, LeakyReLU, linear 1. One D update (BCE on real
  and fake concatenated), one G update on pixel MSE + 1e-3 BCE adversarial; Adam 1e-4.
- CycleGAN: ResNet generators (reflect pad, instance norm, 2 down, B blocks, 2 up with PyTorch's
  stock ConvTranspose2d(3, s2, p1, op1) — fast in PyTorch — and 7×7 conv, tanh), 70×70 PatchGAN;
  LSGAN, cycle 10, identity 5, image pool 50; one update of both generators, then of each D.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch_dcgan import use_device


def _sr_block(w):
    return nn.Sequential(
        nn.Conv2d(w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.PReLU(w),
        nn.Conv2d(w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w),
    )  # fmt: skip


class SRResNet(nn.Module):
    def __init__(self, width=64, blocks=16):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(3, width, 9, 1, 4), nn.PReLU(width))
        self.blocks = nn.ModuleList([_sr_block(width) for _ in range(blocks)])
        self.trunk = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width)
        )
        ups = []
        for _ in range(2):
            ups += [nn.Conv2d(width, 4 * width, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(width)]
        self.ups = nn.Sequential(*ups)
        self.tail = nn.Conv2d(width, 3, 9, 1, 4)

    def forward(self, x):
        head = self.head(x)
        h = head
        for block in self.blocks:
            h = h + block(h)
        return torch.tanh(self.tail(self.ups(head + self.trunk(h))))


class SRDiscriminator(nn.Module):
    def __init__(self, width=64):
        super().__init__()
        widths = [width, width, 2 * width, 2 * width, 4 * width, 4 * width, 8 * width, 8 * width]
        layers, cin = [], 3
        for i, cout in enumerate(widths):
            layers.append(nn.Conv2d(cin, cout, 3, 1 + i % 2, 1, bias=i == 0))
            if i:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Linear(8 * width, 16 * width), nn.LeakyReLU(0.2), nn.Linear(16 * width, 1)
        )

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))[:, 0]


class ResnetBlock(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(w, w, 3), nn.InstanceNorm2d(w), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(w, w, 3), nn.InstanceNorm2d(w),
        )  # fmt: skip

    def forward(self, x):
        return x + self.body(x)


def resnet_generator(width=64, blocks=9):
    w = width
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, w, 7), nn.InstanceNorm2d(w), nn.ReLU(True)]
    layers += [nn.Conv2d(w, 2 * w, 3, 2, 1), nn.InstanceNorm2d(2 * w), nn.ReLU(True)]
    layers += [nn.Conv2d(2 * w, 4 * w, 3, 2, 1), nn.InstanceNorm2d(4 * w), nn.ReLU(True)]
    layers += [ResnetBlock(4 * w) for _ in range(blocks)]
    layers += [
        nn.ConvTranspose2d(4 * w, 2 * w, 3, 2, 1, 1),
        nn.InstanceNorm2d(2 * w),
        nn.ReLU(True),
    ]
    layers += [nn.ConvTranspose2d(2 * w, w, 3, 2, 1, 1), nn.InstanceNorm2d(w), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, 3, 7), nn.Tanh()]
    return nn.Sequential(*layers)


def patch_discriminator(width=64):
    w = width
    return nn.Sequential(
        nn.Conv2d(3, w, 4, 2, 1), nn.LeakyReLU(0.2, True),
        nn.Conv2d(w, 2 * w, 4, 2, 1), nn.InstanceNorm2d(2 * w), nn.LeakyReLU(0.2, True),
        nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.InstanceNorm2d(4 * w), nn.LeakyReLU(0.2, True),
        nn.Conv2d(4 * w, 8 * w, 4, 1, 1), nn.InstanceNorm2d(8 * w), nn.LeakyReLU(0.2, True),
        nn.Conv2d(8 * w, 1, 4, 1, 1),
    )  # fmt: skip


class ImagePool:
    def __init__(self, size=50):
        self.size, self.images = size, []

    def query(self, images):
        out = []
        for image in images:
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif random.random() < 0.5:
                i = random.randrange(self.size)
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.cat(out)


def srgan_step_fn(batch, width, blocks, device):
    generator = SRResNet(width, blocks).to(device)
    discriminator = SRDiscriminator(width).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=1e-4)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=1e-4)
    lr = torch.rand(batch, 3, 24, 24, device=device) * 2 - 1
    hr = torch.rand(batch, 3, 96, 96, device=device) * 2 - 1
    ones, zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)
    bce = F.binary_cross_entropy_with_logits

    def step():
        n = lr.shape[0]
        with torch.no_grad():
            fake = generator(lr)
        logits = discriminator(torch.cat([hr, fake]))
        loss_d = bce(logits[:n], ones) + bce(logits[n:], zeros)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        sr = generator(lr)
        loss_g = F.mse_loss(sr, hr) + 1e-3 * bce(discriminator(sr), ones)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return float(loss_d), float(loss_g)

    return step


def cyclegan_step_fn(batch, width, blocks, size, device):
    g_ab, g_ba = (resnet_generator(width, blocks).to(device) for _ in range(2))
    d_a, d_b = (patch_discriminator(width).to(device) for _ in range(2))
    adam = lambda *ms: torch.optim.Adam(
        [p for m in ms for p in m.parameters()], lr=2e-4, betas=(0.5, 0.999)
    )
    opt_g, opt_d = adam(g_ab, g_ba), adam(d_a, d_b)
    pool_a, pool_b = ImagePool(50), ImagePool(50)
    real_a = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    real_b = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    mse = lambda x, t: F.mse_loss(x, torch.full_like(x, t))

    def step():
        for d in (d_a, d_b):
            d.requires_grad_(False)
        fake_b, fake_a = g_ab(real_a), g_ba(real_b)
        loss_g = mse(d_b(fake_b), 1.0) + mse(d_a(fake_a), 1.0)
        loss_g = loss_g + 10 * (F.l1_loss(g_ba(fake_b), real_a) + F.l1_loss(g_ab(fake_a), real_b))
        loss_g = loss_g + 5 * (F.l1_loss(g_ab(real_b), real_b) + F.l1_loss(g_ba(real_a), real_a))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        for d in (d_a, d_b):
            d.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        loss_d = 0.0
        for d, real, fake in ((d_a, real_a, pool_a.query(fake_a.detach())),
                              (d_b, real_b, pool_b.query(fake_b.detach()))):  # fmt: skip
            loss = 0.5 * (mse(d(real), 1.0) + mse(d(fake), 0.0))
            loss.backward()
            loss_d = loss_d + float(loss)
        opt_d.step()
        return float(loss_g), loss_d

    return step


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["srgan", "cyclegan"], required=True)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the GPU check)")
    args = parser.parse_args()
    device = use_device(args.device)
    torch.manual_seed(0)
    random.seed(0)
    if args.model == "srgan":
        step = srgan_step_fn(args.batch, args.width, args.blocks, device)
    else:
        step = cyclegan_step_fn(args.batch, args.width, args.blocks, args.image_size, device)
    for _ in range(args.warmup):
        step()
    best = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    info = {
        "step_s": best,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": args.device,
    }
    print(json.dumps(info))


if __name__ == "__main__":
    main()
