"""egan_jax: lock trained JAX/Flax models with a secret key."""

from egan_jax._determinism import request_deterministic_gpu_ops

request_deterministic_gpu_ops()  # before any backend starts: see egan_jax/_determinism.py

__version__ = "0.1.0"
