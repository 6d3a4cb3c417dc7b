"""egan_jax: lock trained JAX/Flax models with a secret key."""

__version__ = "0.1.0"
