"""Shared test helpers: tiny configs that compile in seconds."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import jax
import pytest

REPO = Path(__file__).resolve().parent.parent

# Runs of the same tiny config in one session (and the subprocess tests) reuse compiled steps from
# this on-disk cache instead of recompiling each for 5-30 s (jax keys entries by program and version).
COMPILATION_CACHE = REPO / ".pytest_cache" / "jax-compilation"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(COMPILATION_CACHE))
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])

# A DCGAN small enough for unit tests: 8×8 grey digits, width 8, batch 8.
TINY_OVERRIDES = (
    "model.width=8",
    "model.latent_dim=16",
    "data.image_size=8",
    "train.batch_size=8",
    "train.steps=4",
    "log.every=1",
    "log.sample_every=0",
    "log.num_samples=4",
    "log.tensorboard=false",
    "log.quiet=true",
    "checkpoint.every=2",
    "eval.enabled=false",
)


def tiny_config(*overrides: str):
    """The digits DCGAN experiment shrunk by `TINY_OVERRIDES`, then `overrides`."""
    from egan_jax.config import load_config

    return load_config(REPO / "experiments" / "dcgan_digits.py", [*TINY_OVERRIDES, *overrides])


def replace(config, **sections):
    """`dataclasses.replace` one level down: replace(config, train={"steps": 6})."""
    return dataclasses.replace(
        config,
        **{
            name: dataclasses.replace(getattr(config, name), **fields)
            for name, fields in sections.items()
        },
    )


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a Python subprocess that imports egan_jax and the tests folder."""
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests"), env.get("PYTHONPATH", "")])
    env.setdefault("JAX_PLATFORMS", "cpu")
    return env


@pytest.fixture
def python() -> str:
    return sys.executable


class _Statistics:
    """A cheap stand-in for the digits feature network: per-channel moments and a few pixels."""

    def __call__(self, images):
        import numpy as np

        x = np.asarray(images)
        pixels = x[:, ::8, ::8, 0].reshape(len(x), -1)
        return np.concatenate([x.mean(axis=(1, 2)), x.std(axis=(1, 2)), pixels], axis=1)


@pytest.fixture
def cheap_cycle_features(monkeypatch):
    """CycleGAN evaluation with `_Statistics` instead of training the digits network."""
    from egan_jax import evaluate_i2i

    monkeypatch.setattr(evaluate_i2i, "feature_network", lambda c, d=None: (_Statistics(), "stat"))


@pytest.fixture(scope="module")
def classifier_key_file(tmp_path_factory):
    """A fixed owner key file (secret bytes 3..34) for the classifier-family tests."""
    from egan_jax.keys import SecretKey

    path = tmp_path_factory.mktemp("keys") / "owner.key"
    SecretKey.from_bytes(bytes(range(3, 35))).save(path)
    return path


def classifier_config(key_file, tiny: tuple[str, ...], *overrides: str):
    """The classifier family's default config with ``tiny`` sizes, ``key_file``, ``overrides``."""
    from egan_jax.config import apply_overrides
    from egan_jax.families import classifier

    return apply_overrides(
        classifier.default_config(), [*tiny, f"model.transform.key_file={key_file}", *overrides]
    )


def lpgan_server(party: int, port: int, peer_port: int, workdir):
    """`egan lpgan serve` as a real process (stdout and stderr in `.stdout`, text)."""
    import subprocess

    return subprocess.Popen(
        [sys.executable, "-m", "egan_jax.cli.lpgan_cmd", "serve", "--party", str(party),
         "--port", str(port), "--peer-port", str(peer_port), "--workdir", str(workdir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def stop_lpgan_servers(addresses, servers) -> None:
    """Ask the servers to shut down; kill any that does not exit within 20 s."""
    from egan_jax.lpgan import owner

    try:
        owner.shutdown(addresses)
    except Exception:
        pass
    for server in servers:
        try:
            server.wait(timeout=20)
        except Exception:
            server.kill()
