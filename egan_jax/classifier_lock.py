"""Lock a trained patch-embedding classifier with a key, without retraining (and unlock it).

Take a model whose first layer is a convolution with kernel = stride = M (``patch_embedding`` of
``ConvMixer``/``ViT``) and a keyed block transform T with block size M. On one M×M block read as the
vector ``p`` of its ``n = M·M·C`` values (row, column, channel order), pixel shuffling is
``p → P p`` (P a permutation matrix), negative/positive in [-1, 1] is ``p → S p`` (S diagonal ±1)
and channel shuffling is another permutation; every block gets the same map, so
``T(x)`` is ``A p`` on every block with ``A`` a *signed permutation* matrix (orthogonal:
``A⁻¹ = Aᵀ``). The embedding computes ``pᵀ W + b`` per patch (``W`` the kernel as ``[n, D]``).
Replacing ``W`` by ``W' = A W`` gives ``(A p)ᵀ (A W) + b = pᵀ W + b``: the locked model on
transformed images is the plain model on plain images (to float rounding); the bias is unchanged
because ``T(0) = 0`` (NP is ``x → −x`` in [-1, 1], linear — in uint8 it is the affine
``255 − x``, which :func:`egan_jax.data.to_float` maps to exactly that negation). Conversely
``W = Aᵀ W'`` unlocks; and since SGD and Adam are equivariant under signed permutations of a weight
matrix, training on transformed images from the initial kernel ``A W₀`` follows exactly the
trajectory of plain training from ``W₀`` locked — the key costs no accuracy at all.

FFX is refused: it quantises a value to 8 bits and replaces it by a table entry, a nonlinear map no
kernel can absorb. Models where anything precedes the patch embedding (input normalisation, padding)
or whose patches do not coincide with the blocks are refused too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from egan_jax.errors import ConfigError, ShapeError
from egan_jax.transforms.compose import Pipeline

LINEAR_STEPS = ("shuffle", "np", "channel")


def block_matrix(pipeline: Pipeline) -> np.ndarray:
    """float32 ``[n, n]`` (``n = M·M·C``): ``T(block) == A @ block`` for every block's vector.

    Read from the pipeline's fused plan for a single M×M image (one gather, then sign flips at
    output positions), in numpy: no JAX, so it also works while a model is being traced. Raises
    :class:`ConfigError` for nonlinear steps.
    """
    steps = pipeline.config["steps"]
    nonlinear = [s for s in steps if s not in LINEAR_STEPS]
    if nonlinear:
        raise ConfigError(
            f"cannot lock a model for transform steps {nonlinear}: FFX quantises values to 8 bits "
            "and maps them through a key table, a nonlinear map no embedding kernel can absorb. "
            f"Locking without retraining works for steps {list(LINEAR_STEPS)}; for FFX train the "
            "model on transformed images instead"
        )
    m = pipeline.block_size
    plan = pipeline.plan(m, m)
    n = m * m * pipeline.config["channels"]
    source = np.arange(n) if plan.index_map is None else np.asarray(plan.index_map)
    signs = np.ones(n, np.float32)
    for kind, _, selected in plan.ops:
        if kind != "negate":  # a linear step this module does not know how to absorb
            raise ConfigError(f"transform step kind {kind!r} cannot be absorbed into a kernel")
        signs = np.where(selected, -signs, signs)
    matrix = np.zeros((n, n), np.float32)
    matrix[np.arange(n), source] = signs  # out[k] = sign[k] · in[source[k]]
    return matrix


def _embedding(model: nnx.Module, pipeline: Pipeline) -> nnx.Conv:
    conv = getattr(model, "patch_embedding", None)
    if not isinstance(conv, nnx.Conv):
        raise ConfigError(
            f"{type(model).__name__} has no `patch_embedding` convolution; locking without "
            "retraining needs a patch-embedding model (model.arch 'convmixer' or 'vit')"
        )
    m = pipeline.block_size
    channels = pipeline.config["channels"]
    aligned = (
        tuple(conv.kernel_size) == (m, m)
        and tuple(np.broadcast_to(conv.strides, 2)) == (m, m)
        and conv.feature_group_count == 1
        and np.all(np.asarray(conv.kernel_dilation) == 1)
        and np.all(np.asarray(conv.input_dilation) == 1)
        and (conv.padding in ("VALID", "SAME") or not np.any(np.asarray(conv.padding)))
    )
    if not aligned:
        raise ConfigError(
            f"the patch embedding (kernel {tuple(conv.kernel_size)}, strides {conv.strides}) does "
            f"not cut the image into the transform's {m}×{m} blocks; build the model with "
            f"patch_size={m} (= the transform's block size)"
        )
    if conv.in_features != channels:
        raise ShapeError(
            f"the patch embedding takes {conv.in_features} channels but the transform was made "
            f"for channels={channels}; build the pipeline with channels={conv.in_features}"
        )
    return conv


def _apply_to_kernel(kernel: jax.Array, matrix: np.ndarray) -> jax.Array:
    """``[M, M, C, D]`` kernel → the kernel of ``matrix @ W`` (``W`` the kernel as ``[n, D]``)."""
    flat = jnp.reshape(kernel, (matrix.shape[0], -1))
    product = jnp.matmul(jnp.asarray(matrix), flat, precision=jax.lax.Precision.HIGHEST)
    return product.reshape(kernel.shape)


def lock_kernel(kernel: jax.Array, pipeline: Pipeline) -> jax.Array:
    """The embedding kernel ``[M, M, C, D]`` that reads transformed blocks as ``kernel`` reads plain."""
    return _apply_to_kernel(kernel, block_matrix(pipeline))


def unlock_kernel(kernel: jax.Array, pipeline: Pipeline) -> jax.Array:
    """Inverse of :func:`lock_kernel`: a kernel trained on transformed blocks → one for plain blocks."""
    return _apply_to_kernel(kernel, block_matrix(pipeline).T)


def _with_kernel(model: nnx.Module, pipeline: Pipeline, transform) -> nnx.Module:
    conv = _embedding(model, pipeline)
    out = nnx.clone(model)
    out.patch_embedding.kernel[...] = transform(conv.kernel[...], pipeline)
    return out


def lock_model(model: nnx.Module, pipeline: Pipeline) -> nnx.Module:
    """A copy of a trained plain patch-embedding model, locked to ``pipeline``'s key.

    ``lock_model(model, T)(T.forward(x)) == model(x)`` to float tolerance; on plain images (or with
    another key) the locked model sees every patch scrambled. ``model`` is not modified.
    """
    return _with_kernel(model, pipeline, lock_kernel)


def unlock_model(model: nnx.Module, pipeline: Pipeline) -> nnx.Module:
    """A copy of a model trained on ``pipeline``-transformed images that works on plain images.

    ``unlock_model(model, T)(x) == model(T.forward(x))``: a model trained with a linear key
    transform is a plain model with a transformed embedding, so the key costs no accuracy.
    """
    return _with_kernel(model, pipeline, unlock_kernel)
