"""CrypTen (the peer) running the layers of bench_mpc's protocol table: ReLU, sigmoid, batch-norm
normalisation (training mode: batch mean and variance, secure inverse square root) and a 4×4
stride-2 convolution, on the same shapes and input distributions as `bench.bench_mpc._cases`.

Runs in its own venv (bench/.venv-crypten: torch 2.13 CPU + crypten 0.4.1) and imports nothing
from egan_jax. Two CrypTen parties in two processes (``crypten.mpc.run_multiprocess``, gloo over
TCP on loopback), CrypTen's defaults: 16 fractional bits in Z_2^64, Beaver triples from the
trusted first party (TFP: no communication for the correlated randomness, as our dealer's offline
phase is counted apart), sigmoid by the reciprocal method, inverse square root by Newton.

Counting. CrypTen counts one round per collective and, for an all_reduce of n elements, 2n
elements (sent plus received). To report what bench_mpc reports for ours (bytes each party
*sends*), every collective is tallied here by name and size: an all_reduce or all_gather sends n
elements per party in two-party gloo, a broadcast or a scatter sends n from the source, send n,
gather/reduce n from a non-root; 8 bytes per element. CrypTen's own counter is kept beside it.

Run: `bench/.venv-crypten/bin/python bench/peer_crypten.py [--quick] --out FILE.json`
Set-up: `python3.11 -m venv bench/.venv-crypten && SKLEARN_ALLOW_DEPRECATED_SKLEARN_PACKAGE_INSTALL=True
bench/.venv-crypten/bin/pip install torch==2.13.0 crypten==0.4.1`
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import defaultdict

import numpy as np
import torch

BYTES_PER_ELEMENT = 8


def _shim_torch_onnx() -> None:
    """crypten 0.4.1 imports ``torch.onnx._internal.registration`` (its PyTorch→ONNX model
    converter), which torch 2.13 no longer has. The layers measured here never convert a model, so
    a stub module that fails loudly if the converter is ever used lets crypten import."""
    import importlib
    import sys
    import types

    name = "torch.onnx._internal.registration"
    try:
        importlib.import_module(name)
    except ImportError:
        stub = types.ModuleType(name)

        def unavailable(*args, **kwargs):
            raise RuntimeError("crypten's ONNX converter does not run with this torch")

        stub.registry = types.SimpleNamespace(__getattr__=unavailable)
        sys.modules[name] = stub


COLLECTIVES = ("all_reduce", "all_gather", "broadcast", "scatter", "send", "gather", "reduce")


def cases(quick: bool) -> dict:
    """The inputs of bench_mpc's protocol table (same generator, same draws), laid out NCHW."""
    rng = np.random.default_rng(0)
    rows, cols = (16, 256) if quick else (64, 1024)
    act = rng.normal(size=(rows, cols)) * 3
    rng.uniform(size=(rows, cols))  # bench_mpc's inv_sqrt input: keeps the later draws aligned
    b, hw, cin, cout = (8, 8, 8, 16) if quick else (64, 16, 32, 64)
    image = rng.normal(size=(b, hw, hw, cin))
    kernel = rng.normal(size=(4, 4, cin, cout)) / np.sqrt(16 * cin)
    rng.normal(size=(b, hw // 2, hw // 2, cout))
    rng.normal(size=(4, 4, cin, cout))
    bn_in = rng.normal(size=(b, hw // 2, hw // 2, cin)) * 2 + 0.5
    nchw = (0, 3, 1, 2)
    return {
        "relu": (act,),
        "sigmoid": (act,),
        "batch_norm_normalize": (bn_in.transpose(nchw),),
        "conv2d_k4s2": (image.transpose(nchw), kernel.transpose(3, 2, 0, 1)),  # OIHW
    }


def plain(name: str, inputs):
    x = torch.tensor(inputs[0], dtype=torch.float64)
    if name == "relu":
        return torch.relu(x)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "batch_norm_normalize":
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = x.var(dim=(0, 2, 3), keepdim=True, unbiased=True)  # as CrypTen's batchnorm
        return (x - mean) / torch.sqrt(var + 1e-5)
    w = torch.tensor(inputs[1], dtype=torch.float64)
    return torch.nn.functional.conv2d(x, w, stride=2, padding=1)


def secure(name: str, enc):
    if name == "relu":
        return enc[0].relu()
    if name == "sigmoid":
        return enc[0].sigmoid()
    if name == "batch_norm_normalize":
        channels = enc[0].shape[1]
        return enc[0].batchnorm(torch.ones(channels), torch.zeros(channels), training=True)
    return enc[0].conv2d(enc[1], stride=2, padding=1)


class Tally:
    """Elements each party sends, per collective, wrapped around CrypTen's communicator."""

    def __init__(self, comm):
        self.comm, self.sent = comm, defaultdict(int)
        self.calls = defaultdict(int)
        cls = type(comm)
        for name in COLLECTIVES:
            original = getattr(cls, name)
            setattr(cls, name, self._wrap(name, original))

    def _wrap(self, name, original):
        tally = self

        def wrapper(comm, *args, **kwargs):
            rank = comm.get_rank()
            first = args[0]
            if name == "all_reduce" and kwargs.get("batched"):
                n = sum(t.nelement() for t in first)
            elif name == "scatter":
                n = sum(t.nelement() for i, t in enumerate(first) if i != rank) * (args[1] == rank)
            elif name in ("broadcast",):
                batched = kwargs.get("batched")
                size = sum(t.nelement() for t in first) if batched else first.nelement()
                n = size if args[1] == rank else 0
            elif name in ("gather", "reduce"):
                n = first.nelement() if args[1] != rank else 0
            else:  # all_reduce, all_gather, send
                n = first.nelement()
            tally.sent[name] += n
            tally.calls[name] += 1
            return original(comm, *args, **kwargs)

        return wrapper

    def reset(self):
        self.sent.clear()
        self.calls.clear()
        self.comm.reset_communication_stats()

    def snapshot(self) -> dict:
        stats = self.comm.get_communication_stats()
        return {
            "bytes_sent_per_party": BYTES_PER_ELEMENT * sum(self.sent.values()),
            "rounds": int(stats["rounds"]),
            "crypten_counter_bytes": int(stats["bytes"]),
            "collectives": {
                k: {"calls": self.calls[k], "elements_sent": v} for k, v in self.sent.items()
            },
        }


def party(quick: bool, repeats: int, out: str) -> None:
    import crypten
    import crypten.communicator as comm_module
    from crypten.config import cfg

    crypten.init()
    cfg.communicator.verbose = True
    comm = comm_module.get()
    tally = Tally(comm)
    rank = comm.get_rank()
    torch.set_num_threads(1)  # one core per party, as ours runs two party threads
    rows = {}
    for name, inputs in cases(quick).items():
        enc = [crypten.cryptensor(torch.tensor(v, dtype=torch.float64), src=0) for v in inputs]
        result = secure(name, enc)  # warm-up
        times, cost = [], None
        for _ in range(repeats):
            comm.barrier()
            tally.reset()
            start = time.perf_counter()
            result = secure(name, enc)
            times.append(time.perf_counter() - start)
            cost = tally.snapshot()
        got = result.get_plain_text().double()
        expected = plain(name, inputs)
        elements = int(got.nelement())
        rows[name] = {
            "input_shapes": [list(np.shape(v)) for v in inputs],
            "output_shape": list(got.shape),
            "online_s": min(times),
            **cost,
            "bytes_per_output_element_per_party": cost["bytes_sent_per_party"] / elements,
            "max_abs_error_vs_float64": float((got - expected).abs().max()),
        }
    if rank == 0:
        result = {
            "peer": "crypten",
            "versions": {"crypten": crypten.__version__, "torch": torch.__version__},
            "python": platform.python_version(),
            "setting": "two CrypTen processes, gloo over TCP loopback, trusted first party (TFP)",
            "precision_bits": int(cfg.encoder.precision_bits),
            "quick": quick,
            "load_average_1_5_15": list(os.getloadavg()),
            "protocols": rows,
        }
        with open(out, "w") as f:
            json.dump(result, f, indent=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    _shim_torch_onnx()
    import crypten.mpc

    run = crypten.mpc.run_multiprocess(world_size=2)(party)
    if run(args.quick, args.repeats, args.out) is None:
        raise SystemExit("a CrypTen party failed; see the log above")


if __name__ == "__main__":
    main()
