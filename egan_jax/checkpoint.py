"""Orbax checkpoints of a run's whole state, with metadata checked before anything is restored.

A checkpoint holds two items: `state`, the run's nnx state (models, optimizers, batch-norm
statistics, RNG counters) flattened to a dict `{"models/generator/lin/kernel": array, ...}`, and
`meta`, JSON with the config, the step and, for key-protected models, the key fingerprint (a string,
never key bytes). Restoring first compares the metadata and the stored shapes with what the current
run expects, so a mismatch is a `CheckpointError` / `KeyMismatchError` naming the difference, never
an orbax trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from egan_jax.config import config_differences
from egan_jax.errors import CheckpointError, KeyMismatchError

FORMAT_VERSION = 1


def _brief(error: BaseException) -> str:
    """The first line of an orbax/tensorstore error, shortened: enough to locate the problem."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _is_key(leaf: Any) -> bool:
    return jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _path_name(path: tuple[Any, ...]) -> str:
    parts = []
    for entry in path:
        if getattr(entry, "name", None) == "value":  # the payload of an nnx Variable
            continue
        for attribute in ("key", "name", "idx"):
            if hasattr(entry, attribute):
                parts.append(str(getattr(entry, attribute)))
                break
        else:
            parts.append(str(entry))
    return "/".join(parts)


def flatten_state(state: Any) -> dict[str, Any]:
    """`{"models/generator/…/kernel": array}`; PRNG keys become their raw uint32 data."""
    flat = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        if _is_key(leaf):
            leaf = (
                jax.eval_shape(jax.random.key_data, leaf)
                if isinstance(leaf, jax.ShapeDtypeStruct)
                else jax.random.key_data(leaf)
            )
        flat[_path_name(path)] = leaf
    return flat


def unflatten_state(flat: Mapping[str, Any], like: Any) -> Any:
    """Inverse of `flatten_state`, with the tree structure (and key types) of `like`."""
    leaves_with_paths, treedef = jax.tree_util.tree_flatten_with_path(like)
    leaves = []
    for path, template in leaves_with_paths:
        value = flat[_path_name(path)]
        if _is_key(template):
            # A ShapeDtypeStruct has no public accessor for its key implementation.
            impl = (
                jax.random.key_impl(template)
                if isinstance(template, jax.Array)
                else template.dtype._impl
            )
            value = jax.random.wrap_key_data(value, impl=impl)
        leaves.append(value)
    return jax.tree_util.tree_unflatten(treedef, leaves)


def abstract_flat(abstract_state: Any, sharding: jax.sharding.Sharding | None) -> dict[str, Any]:
    """Shape/dtype (and target sharding) of every flattened leaf, for restoring."""
    return {
        name: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)
        for name, leaf in flatten_state(abstract_state).items()
    }


class Checkpointer:
    """Saves and restores a run's state under `directory` (one sub-folder per step)."""

    def __init__(self, directory: str | Path, *, max_to_keep: int = 3):
        self.directory = Path(directory).absolute()
        self._closed = False
        try:
            self._manager = ocp.CheckpointManager(
                self.directory,
                options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
                # Named handlers let a fresh manager read metadata before any restore call.
                item_handlers={
                    "state": ocp.StandardCheckpointHandler(),
                    "meta": ocp.JsonCheckpointHandler(),
                },
            )
        except Exception as error:  # orbax reports unreadable folders in many ways
            raise CheckpointError(
                f"cannot open checkpoint folder {self.directory}: {_brief(error)}; "
                "check the path and its permissions"
            ) from error

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, step: int, state: Any, meta: Mapping[str, Any]) -> None:
        """Writes `state` (any nnx state / pytree) and JSON `meta` for `step` (asynchronously;
        `wait()` blocks until it is on disk). Saving a step that exists already is a no-op."""
        self._manager.wait_until_finished()  # an in-flight save of this step counts as existing
        if step in self._manager.all_steps():
            return
        meta = {**meta, "step": int(step), "format_version": FORMAT_VERSION}
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(flatten_state(state)),
                meta=ocp.args.JsonSave(dict(meta)),
            ),
            force=True,
        )

    def read_meta(self, step: int) -> dict[str, Any]:
        try:
            restored = self._manager.restore(
                step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
            )
        except Exception as error:
            raise CheckpointError(
                f"checkpoint {self.directory / str(step)} has unreadable metadata ({_brief(error)}); "
                "it is corrupt or incomplete: delete that step's folder to fall back to an "
                "earlier one, or use a new workdir"
            ) from error
        if not isinstance(restored.meta, dict) or "config" not in restored.meta:
            raise CheckpointError(
                f"checkpoint {self.directory / str(step)} was not written by egan_jax "
                "(no config in its metadata); use a new workdir"
            )
        return restored.meta

    def restore(self, step: int, abstract_state: Any, sharding: Any = None) -> Any:
        """The state saved at `step`, shaped like `abstract_state` (e.g. from `nnx.eval_shape`)."""
        expected = abstract_flat(abstract_state, sharding)
        self._check_shapes(step, expected)
        try:
            restored = self._manager.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore(expected))
            )
        except Exception as error:
            raise CheckpointError(
                f"checkpoint {self.directory / str(step)} could not be read ({_brief(error)}); it is "
                "corrupt or incomplete: delete that step's folder or use a new workdir"
            ) from error
        return unflatten_state(restored.state, abstract_state)

    def _check_shapes(self, step: int, expected: Mapping[str, jax.ShapeDtypeStruct]) -> None:
        try:
            stored = self._manager.item_metadata(step)["state"].tree
        except Exception as error:
            raise CheckpointError(
                f"checkpoint {self.directory / str(step)} has no readable state ({_brief(error)}); it "
                "is corrupt or incomplete: delete that step's folder or use a new workdir"
            ) from error
        missing = sorted(set(expected) - set(stored))
        extra = sorted(set(stored) - set(expected))
        wrong = [
            f"{name}: stored {tuple(stored[name].shape)} {stored[name].dtype}, "
            f"model has {tuple(spec.shape)} {spec.dtype}"
            for name, spec in expected.items()
            if name in stored
            and (
                tuple(stored[name].shape) != tuple(spec.shape)
                or np.dtype(stored[name].dtype) != np.dtype(spec.dtype)
            )
        ]
        if missing or extra or wrong:
            details = "; ".join(
                part
                for part in (
                    f"missing {', '.join(missing[:5])}" if missing else "",
                    f"unexpected {', '.join(extra[:5])}" if extra else "",
                    "; ".join(wrong[:5]),
                )
                if part
            )
            raise CheckpointError(
                f"checkpoint {self.directory / str(step)} does not fit this model ({details}); "
                "it was written for a different model or config: use a new workdir"
            )

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending saves and releases the manager; closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        self._manager.wait_until_finished()
        self._manager.close()


def check_meta(
    meta: Mapping[str, Any],
    *,
    config: Mapping[str, Any],
    key_fingerprint: str | None,
    where: str,
) -> None:
    """Raises if a checkpoint's metadata is for another key or another config than this run's."""
    stored_fingerprint = meta.get("key_fingerprint")
    if stored_fingerprint != key_fingerprint:
        raise KeyMismatchError(
            f"checkpoint {where} was trained with key fingerprint {stored_fingerprint!r}, but "
            f"this run uses {key_fingerprint!r}; pass the key it was trained with, or use a "
            "new workdir"
        )
    differences = config_differences(meta["config"], config)
    if differences:
        shown = "; ".join(differences[:6]) + ("; ..." if len(differences) > 6 else "")
        raise CheckpointError(
            f"checkpoint {where} was written by a run with a different config ({shown}); "
            "use a new workdir, or the config it was written with (see its config.json)"
        )
