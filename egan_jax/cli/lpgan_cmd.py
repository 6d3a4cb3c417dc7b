"""`egan lpgan serve|train|sample|shutdown`: the two LP-GAN servers and the data owner's commands."""

from __future__ import annotations

import argparse
import sys

EPILOG = """\
example (three shells, or background the servers):
  egan lpgan serve --party 0 --port 7100 --peer-port 7102 --workdir runs/lpgan/s0
  egan lpgan serve --party 1 --port 7101 --peer-port 7102 --workdir runs/lpgan/s1
  egan lpgan train experiments/lpgan_digits.py --workdir runs/lpgan/owner \\
      --servers 127.0.0.1:7100,127.0.0.1:7101
  egan lpgan sample experiments/lpgan_digits.py --servers 127.0.0.1:7100,127.0.0.1:7101 \\
      --n 64 --out samples.png
  egan lpgan shutdown --servers 127.0.0.1:7100,127.0.0.1:7101

Server 0 listens for server 1 on --peer-port. Each server keeps its share checkpoints in its
--workdir; a restarted server resumes from the last step both servers hold.
"""


def _addresses(text: str):
    from egan_jax.errors import ConfigError

    try:
        pairs = [item.rsplit(":", 1) for item in text.split(",")]
        addresses = [(host, int(port)) for host, port in pairs]
    except ValueError:
        addresses = []
    if len(addresses) != 2:
        raise ConfigError(f"--servers needs HOST:PORT,HOST:PORT (S0, S1), got {text!r}")
    return addresses


def register(subparsers: argparse._SubParsersAction) -> None:
    lpgan = subparsers.add_parser(
        "lpgan",
        help="privacy-preserving GAN training by two servers on secret shares (LP-GAN)",
        description="Two non-colluding servers train and sample a GAN on additive secret shares; "
        "the data owner shares the data and reconstructs only losses, the generator and samples.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = lpgan.add_subparsers(dest="lpgan_command", metavar="ACTION")

    serve = sub.add_parser("serve", help="run server 0 or 1")
    serve.add_argument("--party", type=int, required=True, choices=(0, 1))
    serve.add_argument("--port", type=int, required=True, help="port for the data owner")
    serve.add_argument("--peer-port", type=int, required=True, help="server 0 listens here")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--workdir", required=True, help="this server's share checkpoints")
    serve.set_defaults(func=run_serve)

    train = sub.add_parser("train", help="the data owner: share the digits, drive training")
    train.add_argument("config", help="experiment file, e.g. experiments/lpgan_digits.py")
    train.add_argument("--workdir", required=True, help="owner's metrics.jsonl, generator.npz")
    train.add_argument("--servers", required=True, help="HOST:PORT,HOST:PORT of S0 and S1")
    train.add_argument("--steps", type=int, default=None, help="override the config's steps")
    train.add_argument("--no-resume", action="store_true", help="start over from step 0")
    train.set_defaults(func=run_train)

    sample = sub.add_parser("sample", help="secure synthesis: only the owner sees the images")
    sample.add_argument("config")
    sample.add_argument("--servers", required=True)
    sample.add_argument("--n", type=int, default=64)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", required=True, help="PNG grid, or .npy for the float images")
    sample.set_defaults(func=run_sample)

    stop = sub.add_parser("shutdown", help="ask both servers to exit")
    stop.add_argument("--servers", required=True)
    stop.set_defaults(func=run_shutdown)


def run_serve(args) -> int:
    from egan_jax.lpgan.server import serve

    serve(
        args.party,
        port=args.port,
        peer_port=args.peer_port,
        workdir=args.workdir,
        host=args.host,
        log=lambda m: print(m, flush=True),
    )
    return 0


def run_train(args) -> int:
    from egan_jax.lpgan.owner import load_experiment, train

    config = load_experiment(args.config, steps=args.steps)
    result = train(
        config,
        args.workdir,
        _addresses(args.servers),
        resume=not args.no_resume,
        log=lambda m: print(m, flush=True),
    )
    print(f"trained to step {result['step']}; generator in {args.workdir}/generator.npz")
    return 0


def grid(images, columns: int = 8):
    import numpy as np

    from egan_jax.data import to_uint8

    pixels = to_uint8(np.clip(images, -1, 1))
    n, h, w, c = pixels.shape
    rows = -(-n // columns)
    canvas = np.zeros((rows * h, columns * w, c), np.uint8)
    for i, image in enumerate(pixels):
        r, k = divmod(i, columns)
        canvas[r * h : (r + 1) * h, k * w : (k + 1) * w] = image
    return canvas[..., 0] if c == 1 else canvas


def run_sample(args) -> int:
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from egan_jax.lpgan.owner import load_experiment, sample

    config = load_experiment(args.config)
    images = sample(config, _addresses(args.servers), n=args.n, seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, images)
    else:
        Image.fromarray(grid(images)).save(out)
    print(f"wrote {len(images)} samples to {out}")
    return 0


def run_shutdown(args) -> int:
    from egan_jax.lpgan.owner import shutdown

    shutdown(_addresses(args.servers))
    return 0


def main(argv=None) -> int:
    """`egan lpgan ...` as a module: `python -m egan_jax.cli.lpgan_cmd serve ...`."""
    from egan_jax import cli

    return cli.main(["lpgan", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
