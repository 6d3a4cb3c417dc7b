"""egan_jax asks XLA for deterministic GPU ops before any backend starts (egan_jax/_determinism.py)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
from conftest import subprocess_env

from egan_jax._determinism import FLAG, OPT_OUT, request_deterministic_gpu_ops


def test_the_flag_is_added_beside_the_users_other_flags():
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    assert request_deterministic_gpu_ops(env)
    assert env["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=4 {FLAG}"
    empty = {}
    assert request_deterministic_gpu_ops(empty) and empty["XLA_FLAGS"] == FLAG


def test_a_users_own_setting_and_the_opt_out_are_respected():
    own = {"XLA_FLAGS": "--xla_gpu_deterministic_ops=false"}
    assert not request_deterministic_gpu_ops(own)
    assert own["XLA_FLAGS"] == "--xla_gpu_deterministic_ops=false"
    opted_out = {OPT_OUT: "1"}
    assert not request_deterministic_gpu_ops(opted_out) and "XLA_FLAGS" not in opted_out
    again = {"XLA_FLAGS": FLAG}
    assert request_deterministic_gpu_ops(again) and again["XLA_FLAGS"] == FLAG


def test_importing_egan_jax_sets_it_and_jax_accepts_it():
    code = (
        "import os, egan_jax, jax.numpy as jnp; "
        "print(os.environ['XLA_FLAGS']); print(float(jnp.arange(4.0).sum()))"
    )
    env = subprocess_env()
    env.pop("XLA_FLAGS", None)
    env.pop(OPT_OUT, None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [FLAG, "6.0"]


def test_a_late_import_on_a_started_gpu_backend_warns(monkeypatch):
    from jax._src import xla_bridge

    monkeypatch.setattr(xla_bridge, "backends_are_initialized", lambda: True)
    monkeypatch.setattr(xla_bridge, "default_backend", lambda: "gpu")
    with pytest.warns(UserWarning, match="import egan_jax before running any JAX code"):
        assert request_deterministic_gpu_ops({})
    monkeypatch.setattr(xla_bridge, "default_backend", lambda: "cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert request_deterministic_gpu_ops({})
