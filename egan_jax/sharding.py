"""Data parallelism over every device of every process: one mesh axis, "data".

The batch is split along its leading axis (`P("data")`); parameters, optimizer state and
batch-norm statistics are replicated (`P()`). The step itself is an ordinary `jax.jit`: XLA inserts
the gradient all-reduce. Multi-host runs start with `initialize_distributed`; each process then loads
only its slice of the global batch and `shard_batch` assembles the global array.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from egan_jax.config import Config, DistributedConfig
from egan_jax.errors import ConfigError

DATA_AXIS = "data"


def initialize_distributed(distributed: DistributedConfig) -> None:
    """Joins a multi-process run when `coordinator_address` is set; a no-op otherwise or if this
    process has already joined. Must run before anything touches a JAX device."""
    if distributed.coordinator_address is None:
        return
    if not 0 <= distributed.process_id < distributed.num_processes:
        raise ConfigError(
            f"distributed.process_id must be in [0, {distributed.num_processes}), "
            f"got {distributed.process_id}"
        )
    if jax.distributed.is_initialized():
        return
    jax.distributed.initialize(
        coordinator_address=distributed.coordinator_address,
        num_processes=distributed.num_processes,
        process_id=distributed.process_id,
    )


def make_data_mesh() -> Mesh:
    """A one-axis mesh over every device of every process. The axis is `Auto` (XLA propagates
    shardings), so family code never has to annotate them; `jax.make_mesh` defaults to `Explicit`."""
    return jax.make_mesh(
        (jax.device_count(),), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,)
    )


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def check_batch_size(config: Config) -> None:
    """The global batch must split evenly over processes and devices."""
    batch_size, devices = config.train.batch_size, jax.device_count()
    if batch_size % devices or batch_size % jax.process_count():
        raise ConfigError(
            f"train.batch_size={batch_size} does not divide over {devices} devices in "
            f"{jax.process_count()} processes; use a multiple of {devices}"
        )


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Places every leaf of `tree` (identical on every process) on every device."""
    sharding = replicated_sharding(mesh)
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def put(leaf: Any) -> jax.Array:
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            data = put(jax.random.key_data(leaf))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
        local = np.asarray(jax.device_get(leaf))
        return jax.make_array_from_process_local_data(sharding, local, local.shape)

    return jax.tree.map(put, tree)


def shard_batch(local_batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Builds global arrays, split over the data axis, from this process's slice of the batch."""
    sharding = batch_sharding(mesh)
    count = jax.process_count()
    return {
        name: jax.make_array_from_process_local_data(
            sharding, value, (value.shape[0] * count, *value.shape[1:])
        )
        for name, value in local_batch.items()
    }


def to_host(tree: Any) -> Any:
    """Numpy copies of replicated (or fully addressable) arrays, on every process."""

    def get(leaf: Any) -> Any:
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return np.asarray(leaf.addressable_data(0))
        return np.asarray(leaf)

    return jax.tree.map(get, tree)
