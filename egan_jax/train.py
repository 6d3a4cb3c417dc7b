"""The one generic training loop: `train_and_evaluate(config, workdir)`.

The family named by the config supplies models, optimizers, batches, a train step, a sample and an
evaluate function (`egan_jax.families`); this loop supplies everything else: the data-parallel mesh,
one `jax.jit` over the split nnx state, orbax checkpoints with resumption, progress, metrics,
sample grids and evaluation. All randomness comes from `config.seed`: parameters from one split of
it, the step keys by `fold_in(step)`, the batches from `(seed, step)` — so a resumed run continues
bit-identically to an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from egan_jax import ema, sharding
from egan_jax.checkpoint import Checkpointer, check_meta
from egan_jax.config import Config, config_differences, config_to_dict, read_config, save_config
from egan_jax.errors import CheckpointError, ConfigError, KeyMismatchError
from egan_jax.families import Family, Models, get_family
from egan_jax.logging_utils import MetricsLogger, ProgressBar, read_metrics, save_image_grid


@dataclasses.dataclass
class RunResult:
    """What `train_and_evaluate` hands back: the final step, the last step's metrics, the last
    evaluation (empty if none ran) and the trained models (not the EMA generator: `load_trained`
    returns that)."""

    step: int
    metrics: dict[str, float]
    evaluation: dict[str, float]
    models: Models


def run_keys(seed: int) -> dict[str, jax.Array]:
    """The run's independent streams of randomness, all from one seed."""
    init, train, sample, evaluate = jax.random.split(jax.random.key(seed), 4)
    return {"init": init, "train": train, "sample": sample, "evaluate": evaluate}


def build(family: Family, config: Config, init_key: jax.Array) -> dict[str, Any]:
    """`{"models": ..., "optimizers": ...}` (and `"ema"` with `train.ema_decay > 0`, see
    `egan_jax.ema`), freshly initialised from `init_key`."""
    models = family.build_models(config, nnx.Rngs(init_key))
    run = {"models": models, "optimizers": family.build_optimizers(config, models)}
    if ema.enabled(config):
        run["ema"] = ema.build(config, models)
    return run


def abstract_run(family: Family, config: Config) -> tuple[nnx.GraphDef, Any]:
    """The graph definition and the shapes of a run's state, without computing any values."""
    key = run_keys(config.seed)["init"]
    return nnx.split(nnx.eval_shape(lambda: build(family, config, key)))


def initial_state(
    family: Family, config: Config, out_sharding: jax.sharding.Sharding | None = None
) -> tuple[nnx.GraphDef, Any]:
    """A freshly initialised run as (graph definition, state), the state placed by `out_sharding`.

    Built inside one `jax.jit` compiled without backend optimisation: it runs once, and XLA:CPU
    spends most of a compile optimising the random-bit generators (measured on a tiny DCGAN:
    eager construction 38 s, one jit at the default level 28 s, at level 0 6 s)."""
    graphdef, _ = abstract_run(family, config)

    def init() -> Any:
        return nnx.state(build(family, config, run_keys(config.seed)["init"]))

    lowered = jax.jit(init, out_shardings=out_sharding).lower()
    return graphdef, lowered.compile(compiler_options={"xla_backend_optimization_level": 0})()


def validate(config: Config) -> None:
    """Range checks of the generic sections (the family checks its own)."""
    checks = {
        "train.steps": config.train.steps >= 1,
        "train.batch_size": config.train.batch_size >= 1,
        "log.every": config.log.every >= 0,
        "log.sample_every": config.log.sample_every >= 0,
        "log.num_samples": config.log.num_samples >= 1,
        "checkpoint.every": config.checkpoint.every >= 0,
        "checkpoint.max_to_keep": config.checkpoint.max_to_keep >= 1,
        "eval.every": config.eval.every >= 0,
    }
    for path, ok in checks.items():
        if not ok:
            section, field = path.split(".")
            value = getattr(getattr(config, section), field)
            raise ConfigError(f"config field {path!r} is out of range: {value!r}")
    ema.check(config)


def _due(step: int, every: int) -> bool:
    return every > 0 and step % every == 0


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[Callable[[], bool]]:
    """Turns SIGINT (Ctrl-C) and SIGTERM (e.g. a pre-empted job) into a request the loop honours
    between steps, so that it saves before exiting. The signal must not raise inside JAX: a
    KeyboardInterrupt in the middle of a dispatch left device work that never finished, and the
    save after it waited forever (seen on a full-width run). A second signal stops at once."""
    requested: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def handler(signum: int, frame: Any) -> None:
        if requested:
            raise KeyboardInterrupt(f"signal {signum} (second)")
        requested.append(signum)

    previous = {
        number: signal.signal(number, handler) for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield lambda: bool(requested)
    finally:
        for number, old_handler in previous.items():
            signal.signal(number, old_handler)


def _check_workdir_config(workdir: Path, config_dict: dict[str, Any]) -> None:
    path = workdir / "config.json"
    if not path.exists():
        return
    try:
        saved = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is not valid JSON ({error}); use a new workdir") from error
    differences = config_differences(saved, config_dict)
    if differences:
        raise CheckpointError(
            f"workdir {workdir} holds a run of a different config ({'; '.join(differences[:6])});"
            " use a new workdir"
        )


def _truncate_metrics(workdir: Path, step: int) -> None:
    """Drops records a killed run wrote after its last checkpoint (and a line it left cut short);
    the resumed run writes those steps again."""
    path = workdir / "metrics.jsonl"
    if path.exists():
        kept = [record for record in read_metrics(workdir) if record["step"] <= step]
        path.write_text("".join(json.dumps(record) + "\n" for record in kept))


def train_and_evaluate(config: Config, workdir: str | Path) -> RunResult:
    """Trains `config` in `workdir`, resuming from its latest checkpoint if there is one.

    Writes `config.json`, `checkpoints/`, `metrics.jsonl`, `tensorboard/`, `samples/step_*.png` and
    `eval.json`. A checkpoint of a different config or key raises instead of being overwritten.
    Ctrl-C or SIGTERM stops after the current step, saves it, then raises KeyboardInterrupt.
    """
    validate(config)
    sharding.initialize_distributed(config.distributed)
    family = get_family(config.family)
    sharding.check_batch_size(config)
    workdir = Path(workdir).absolute()
    is_main = jax.process_index() == 0
    config_dict = config_to_dict(config)
    fingerprint = family.key_fingerprint(config) if family.key_fingerprint else None
    mesh = sharding.make_data_mesh()
    replicated = sharding.replicated_sharding(mesh)
    keys = sharding.replicate(run_keys(config.seed), mesh)

    checkpointer = Checkpointer(workdir / "checkpoints", max_to_keep=config.checkpoint.max_to_keep)
    try:
        start = checkpointer.latest_step()
        if start is None:
            _check_workdir_config(workdir, config_dict)
            graphdef, state = initial_state(family, config, replicated)
            start = 0
        else:
            where = str(checkpointer.directory / str(start))
            meta = checkpointer.read_meta(start)
            check_meta(meta, config=config_dict, key_fingerprint=fingerprint, where=where)
            graphdef, abstract_state = abstract_run(family, config)
            state = checkpointer.restore(start, abstract_state, replicated)
    except BaseException:
        checkpointer.close()
        raise
    if is_main:
        workdir.mkdir(parents=True, exist_ok=True)
        save_config(config, workdir / "config.json")
        _truncate_metrics(workdir, start)

    batches = family.make_batches(config)
    family_step = family.make_train_step(config)
    family_sample = family.make_sample(config)
    evaluate = family.make_evaluate(config) if family.make_evaluate else None

    def train_step(state: Any, batch: dict[str, jax.Array], key: jax.Array, step: jax.Array):
        tree = nnx.merge(graphdef, state)
        metrics = family_step(
            tree["models"], tree["optimizers"], batch, jax.random.fold_in(key, step)
        )
        if "ema" in tree:
            ema.update_all(tree["ema"], tree["models"], config.train.ema_decay, step)
        return nnx.state(tree), metrics

    def sample(state: Any, key: jax.Array) -> jax.Array:
        models = ema.inference_models(nnx.merge(graphdef, state))
        return family_sample(models, key, config.log.num_samples)

    jit_step = jax.jit(train_step, out_shardings=replicated)
    jit_sample = jax.jit(sample, out_shardings=replicated)

    def meta() -> dict[str, Any]:
        return {"config": config_dict, "key_fingerprint": fingerprint, "family": config.family}

    def run_evaluation(state: Any, step: int) -> dict[str, float]:
        if evaluate is None or not config.eval.enabled:
            return {}
        models = ema.inference_models(nnx.merge(graphdef, state))
        results = {k: float(v) for k, v in evaluate(models, keys["evaluate"]).items()}
        if is_main:
            (workdir / "eval.json").write_text(json.dumps({"step": step, **results}, indent=2))
            logger.write(step, {f"eval/{name}": value for name, value in results.items()})
        return results

    logger = MetricsLogger(workdir, tensorboard=config.log.tensorboard, enabled=is_main)
    bar = ProgressBar(
        total=config.train.steps, initial=start, quiet=config.log.quiet or not is_main
    )
    current = (state, start)  # replaced in one assignment, so an interrupt never splits it
    host_metrics: dict[str, float] = {}
    evaluation: dict[str, float] = {}
    try:
        with _stop_on_signals() as stop_requested:
            while current[1] < config.train.steps:
                if stop_requested():
                    raise KeyboardInterrupt("stopped by a signal")
                state, step = current
                local = batches(step, jax.process_index(), jax.process_count())
                batch = sharding.shard_batch(local, mesh)
                step_index = sharding.replicate(np.int32(step), mesh)
                new_state, metrics = jit_step(state, batch, keys["train"], step_index)
                current = (new_state, step + 1)
                state, step = current
                if _due(step, config.log.every) or step == config.train.steps:
                    host_metrics = {k: float(v) for k, v in sharding.to_host(metrics).items()}
                    logger.write(step, host_metrics)
                    bar.update(1, host_metrics)
                else:
                    bar.update(1)
                if _due(step, config.log.sample_every):
                    images = sharding.to_host(jit_sample(state, keys["sample"]))
                    if is_main:
                        save_image_grid(images, workdir / "samples" / f"step_{step:06d}.png")
                if _due(step, config.checkpoint.every):
                    checkpointer.save(step, state, meta())
                if _due(step, config.eval.every) and step < config.train.steps:
                    evaluation = run_evaluation(state, step)
            state, step = current
            checkpointer.save(step, state, meta())
            if stop_requested():
                raise KeyboardInterrupt("stopped by a signal")
            evaluation = run_evaluation(state, step) or evaluation
    except KeyboardInterrupt:
        state, step = current
        checkpointer.save(step, state, meta())  # a no-op if that step is saved already
        raise
    finally:
        bar.close()
        logger.close()
        checkpointer.close()
    models = nnx.merge(graphdef, state)["models"]
    return RunResult(step=step, metrics=host_metrics, evaluation=evaluation, models=models)


def load_trained(
    workdir: str | Path,
    *,
    step: int | None = None,
    key_fingerprint: str | None = None,
    use_ema: bool = True,
) -> tuple[Config, Models, int]:
    """The config, the trained models (on one device) and the step of a run's checkpoint (the
    latest unless `step` is given). With `key_fingerprint`, a checkpoint of another key raises
    `KeyMismatchError`. A run with a generator EMA (`egan_jax.ema`) returns the EMA generator as
    `"generator"` unless `use_ema=False`."""
    workdir = Path(workdir)
    config = read_config(workdir / "config.json")
    family = get_family(config.family)
    checkpoints = workdir / "checkpoints"
    if not checkpoints.is_dir():
        raise CheckpointError(f"{workdir} has no checkpoints; train first with `egan train`")
    with Checkpointer(checkpoints, max_to_keep=config.checkpoint.max_to_keep) as checkpointer:
        available = checkpointer.all_steps()
        if not available:
            raise CheckpointError(f"{checkpoints} holds no finished checkpoint; train first")
        step = max(available) if step is None else step
        if step not in available:
            raise CheckpointError(f"{checkpoints} has no step {step}; available: {available}")
        meta = checkpointer.read_meta(step)
        if key_fingerprint is not None and meta.get("key_fingerprint") != key_fingerprint:
            raise KeyMismatchError(
                f"{workdir} was trained with key fingerprint {meta.get('key_fingerprint')!r}, "
                f"not {key_fingerprint!r}; pass the key it was trained with"
            )
        graphdef, abstract_state = abstract_run(family, config)
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        state = checkpointer.restore(step, abstract_state, device)
    tree = nnx.merge(graphdef, state)
    return config, ema.inference_models(tree) if use_ema else tree["models"], step


def sample_images(
    workdir: str | Path, *, n: int, seed: int = 0, step: int | None = None, use_ema: bool = True
):
    """`n` images (NHWC, [-1, 1], numpy) from a run's checkpoint, drawn with `seed` (from the EMA
    generator when the run has one, unless `use_ema=False`)."""
    if n < 1:
        raise ConfigError(f"the number of samples must be at least 1, got {n}")
    config, models, _ = load_trained(workdir, step=step, use_ema=use_ema)
    sample = get_family(config.family).make_sample(config)
    graphdef, state = nnx.split(models)

    @jax.jit
    def draw(state: Any, key: jax.Array) -> jax.Array:
        return sample(nnx.merge(graphdef, state), key, n)

    return np.asarray(draw(state, jax.random.key(seed)))
