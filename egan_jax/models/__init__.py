"""Flax NNX models: shared layers, the DCGAN pair, and the FID InceptionV3 feature network."""

from egan_jax.models.dcgan import Discriminator, Generator
from egan_jax.models.layers import SpectralNormConv, SpectralNormLinear
from egan_jax.models.resample import ConvTransposeUpsample2x, Upsample2x, upsample2x

__all__ = [
    "ConvTransposeUpsample2x",
    "Discriminator",
    "Generator",
    "SpectralNormConv",
    "SpectralNormLinear",
    "Upsample2x",
    "upsample2x",
]
