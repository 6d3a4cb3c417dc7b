"""Initial values of the EncryIP model's N-way head (``model.head_init``)."""

from __future__ import annotations

import numpy as np
from flax import nnx


def tie_head(head: nnx.Linear, label_table: np.ndarray, noise: float) -> None:
    """``model.head_init=tied``: column ``label_table[y, i]`` of ``head``'s kernel <- column
    ``label_table[y, 0]`` + ``noise`` x its own (the Fake columns stay as drawn), so the class-sum
    logits start as a K-way head's (+ log m) and the m columns of a class start near-equal."""
    kernel = head.kernel[...]  # [features, N]
    shared = kernel[:, label_table[:, 0]][:, :, None]  # [features, K, 1]
    tied = shared + noise * kernel[:, label_table]  # [features, K, m]
    head.kernel[...] = kernel.at[:, label_table.reshape(-1)].set(tied.reshape(kernel.shape[0], -1))
