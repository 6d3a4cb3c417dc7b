"""`egan attack ...` on an EGAN-protected SRGAN / CycleGAN workdir: run, score, store rows.

Each attack scores with the family's metric — SRGAN: Y-PSNR/SSIM of the held-out tiles
(`psnr_y`, higher is better; bicubic is the floor a useful output must beat); CycleGAN: the A → B
Fréchet distance to the real B test images (`fd_a_to_b`, lower is better) — and stores its rows
in `WORKDIR/attacks/NAME.json` like `egan_jax.attack_runs`; `egan evaluate` on the workdir adds
them to the report. The mechanics live in `egan_jax.attacks_i2i`.

* prune: global magnitude pruning of the protected generator (input map + network), correct key
  and no key (raw input) at each fraction.
* search: the best of N random keys, with the key-space size.
* finetune: the thief fine-tunes the stolen model on raw inputs (with / without the
  discriminator) vs the from-scratch attacker; the owner's correct key afterwards.
* estimate: a learned per-block input map in front of the frozen stolen generator, vs the
  from-scratch attacker.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from flax import nnx

from egan_jax.attack_runs import PRUNE_FRACTIONS
from egan_jax.config import Config, read_config
from egan_jax.deep_lock import NO_LOCK
from egan_jax.keys import SecretKey

ATTACKS = ("prune", "search", "finetune", "estimate")


def _load(workdir: Path, key: SecretKey | None, check_key: bool):
    """Config, models and key of a protected image workdir (no key check for keyless attacks)."""
    from egan_jax.attacks_i2i import task_of
    from egan_jax.families.egan_image import load_key
    from egan_jax.train import load_trained

    config = read_config(workdir / "config.json")
    task_of(config)  # a clear error for any other family
    if check_key:
        key = key or load_key(config)
    fingerprint = key.fingerprint if check_key else None
    config, models, _ = load_trained(workdir, key_fingerprint=fingerprint)
    if not check_key:  # the thief has the weights, not the owner's feature key (identity hook)
        generator = models[task_of(config).keyed_role]  # nor the deep lock the key supplies
        generator.feature_key = None
        generator.key_inverse = None  # nor the `key_inverse` input map
        generator.generator.deep_lock = NO_LOCK
    return config, models, key


def _no_key_forward(config: Config, generator):
    """The protected generator on raw inputs: no input map key, no deep lock and, with
    `model.feature_key`, the identity feature hook instead of the stored owner's feature key."""
    from egan_jax.evaluate_i2i import _no_feature, forward_fn

    return forward_fn(generator, feature=_no_feature(config), lock=NO_LOCK, key_inverse=None)


class Scorer:
    """The family's metric of a generator run on (transformed) held-out inputs."""

    def __init__(self, config: Config, cache_dir: str | None = None):
        from egan_jax import evaluate_i2i as ev

        self.config, self.sr = config, config.family.endswith("srgan")
        if self.sr:
            from egan_jax.data import to_float
            from egan_jax.image_quality import bicubic_upscale

            self.lr, self.hr = ev._sr_tiles(config)
            self.inputs = to_float(self.lr)
            bicubic = ev._scores(to_float(bicubic_upscale(self.lr, config.model.scale)), self.hr,
                                 config.model.scale)  # fmt: skip
            self.reference = f"bicubic {bicubic['psnr_y']:.2f} dB"
        else:
            self.inputs, self.test_b = ev._cycle_test(config)
            self.network, self.metric = ev.feature_network(config, cache_dir)
            self.reference = self.metric

    def __call__(self, forward: Callable[[np.ndarray], np.ndarray], transform=None) -> dict:
        """`forward` (numpy -> numpy) of `transform(inputs)` (None: the raw inputs), scored."""
        from egan_jax import evaluate_i2i as ev

        inputs = self.inputs if transform is None else np.asarray(transform(self.inputs))
        out = forward(inputs)
        if self.sr:
            return ev._scores(out, self.hr, self.config.model.scale)
        from egan_jax.metrics import compute_fid

        return {"fd_a_to_b": compute_fid(out, self.test_b, self.network)}

    def loss(self, scores: dict) -> float:
        """Lower is better for the attacker: −PSNR (SRGAN) or the Fréchet distance."""
        return -scores["psnr_y"] if self.sr else scores["fd_a_to_b"]


def _row(name: str, kind: str, scores: dict, note: str = "") -> dict[str, Any]:
    return {"name": name, "kind": kind, **scores, **({"note": note} if note else {})}


def _save(workdir: Path, name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    path = workdir / "attacks" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"attack": name, "rows": rows}, indent=2) + "\n")
    return rows


def attack_prune(workdir, *, key=None, fractions=PRUNE_FRACTIONS, cache_dir=None):
    """Global magnitude pruning of the protected generator: correct key and no key per level."""
    import jax

    from egan_jax.attacks import prune_model, sparsity
    from egan_jax.attacks_i2i import task_of
    from egan_jax.evaluate_i2i import forward_fn
    from egan_jax.families.egan_image import variants

    workdir = Path(workdir)
    config, models, key = _load(workdir, key, True)
    scorer = Scorer(config, cache_dir)
    generator = models[task_of(config).keyed_role]
    authorized = variants(config, key).authorized.apply
    original = jax.tree_util.tree_map(np.array, nnx.state(generator))  # a copy
    rows = []
    for fraction in fractions:
        nnx.update(generator, original)
        prune_model(generator, fraction)
        zeros = sparsity(nnx.state(generator, nnx.Param))
        note = f"sparsity {zeros:.3f}; {scorer.reference}"
        for label, forward, transform in (
            ("correct key", forward_fn(generator), authorized),
            ("no key", _no_key_forward(config, generator), None),
        ):
            scores = scorer(forward, transform)
            rows.append(_row(f"pruned {fraction:.0%} ({label})", "attack_prune", scores, note))
    nnx.update(generator, original)
    return _save(workdir, "prune", rows)


def attack_search(workdir, *, candidates=20, seed=0, cache_dir=None):
    """Key search without the owner's key: the best of `candidates` random keys."""
    from egan_jax.attacks import key_search
    from egan_jax.attacks_i2i import task_of
    from egan_jax.classifier_attacks import key_space
    from egan_jax.deep_lock import make_lock
    from egan_jax.evaluate_i2i import forward_fn
    from egan_jax.families.egan_image import (
        deep_sites,
        paired_variants,
        uses_feature_key,
        uses_key_inverse,
        variants,
    )
    from egan_jax.unauthorized import UnauthorizedSpec

    workdir = Path(workdir)
    config, models, _ = _load(workdir, None, False)
    scorer = Scorer(config, cache_dir)
    stand_in = SecretKey.from_bytes(bytes(32))  # names the spec only; the owner's key is not used
    spec = UnauthorizedSpec(no_key=False, random_keys=candidates, near_keys=0, near_materials=0,
                            seed=seed, label="search")  # fmt: skip
    pool = variants(config, stand_in, spec).unauthorized
    generator = models[task_of(config).keyed_role]
    sites = deep_sites(config)

    def holder_build(variant) -> dict:
        """What a thief trying `variant.key` builds: that key's deep lock and, with the
        `key_inverse` input map, its inverse (the stolen weights are the same for every key)."""
        build = {"lock": make_lock(variant.key, sites)} if sites else {}
        if uses_key_inverse(config):
            build["key_inverse"] = variant.material.inverse
        return build

    results = {}
    if uses_feature_key(config):  # each candidate key also acts on the head features
        pairs = {p.name: p for p in paired_variants(config, stand_in, spec)[1:]}
        builds = {v.name: holder_build(v) for v in pool}  # random keys only: names match
        forwards = {
            name: forward_fn(generator, feature=p.feature, **builds[name])
            for name, p in pairs.items()
        }
    elif sites or uses_key_inverse(config):
        forwards = {v.name: forward_fn(generator, **holder_build(v)) for v in pool}
    else:  # every key's holder builds the same model: one compiled forward
        shared = forward_fn(generator)
        forwards = {variant.name: shared for variant in pool}

    def score(variant) -> float:
        results[variant.name] = scorer(forwards[variant.name], variant.apply)
        return scorer.loss(results[variant.name])

    best, losses = key_search(pool, score)
    size, space = key_space(config.model.steps, config.model.block, config.data.channels)
    if size is not None:  # the exact integer has 76 digits
        space = f"{space.rsplit(' = ', 1)[0]} ≈ {float(size):.2e} (2^{math.log2(size):.1f})"
    note = f"median {np.median([abs(v) for v in losses]):.2f}; key space {space}"
    row = _row(f"key search: best of {candidates} keys", "attack_search", results[best.name], note)
    return _save(workdir, "search", [row])


def _thief_run(source: Config, workdir: Path, name: str, steps: int | None, **kwargs):
    """Train (or resume, if already done) the thief's run `name` through the generic engine."""
    import dataclasses
    import warnings

    from egan_jax.attacks import _stolen_state
    from egan_jax.attacks_i2i import finetune_config
    from egan_jax.train import train_and_evaluate

    if not kwargs.get("from_scratch"):
        _stolen_state(str(workdir.absolute()))  # loaded here: the engine builds models in a trace
    attack = finetune_config(source, workdir, **kwargs)
    if steps:
        attack = dataclasses.replace(
            attack,
            train=dataclasses.replace(attack.train, steps=steps),
            checkpoint=dataclasses.replace(attack.checkpoint, every=steps),
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # srgan's "no VGG weights" notice
        return train_and_evaluate(attack, workdir / "attacks" / f"run_{name}"), attack


def _scratch_row(source, workdir, scorer, steps) -> dict[str, Any]:
    from egan_jax.attacks_i2i import task_of
    from egan_jax.evaluate_i2i import forward_fn

    name = "from_scratch" + (f"_{steps}" if steps else "")
    result, attack = _thief_run(source, workdir, name, steps, from_scratch=True)
    generator = result.models[task_of(source).keyed_role]
    note = f"{attack.train.steps} steps, lr {attack.optim.learning_rate:g}; {scorer.reference}"
    return _row("from scratch, same data and budget", "attack_scratch",
                scorer(forward_fn(generator)), note)  # fmt: skip


def attack_finetune(workdir, *, key=None, cache_dir=None, steps=None):
    """Fine-tuning on raw inputs with / without the stolen discriminator vs from scratch; the
    owner's correct key on each fine-tuned generator."""
    from egan_jax.attacks_i2i import task_of
    from egan_jax.deep_lock import attached
    from egan_jax.evaluate_i2i import forward_fn
    from egan_jax.families.egan_image import (
        key_inverse,
        load_key,
        owner_deep_lock,
        paired_variants,
        uses_feature_key,
        variants,
    )

    workdir = Path(workdir)
    source = read_config(workdir / "config.json")
    task = task_of(source)
    key = key or load_key(source)
    authorized = variants(source, key).authorized.apply
    owner_feature = paired_variants(source, key)[0].feature if uses_feature_key(source) else None
    scorer = Scorer(source, cache_dir)
    rows = []
    for label, keep_d in (("with D", True), ("without D", False)):
        result, attack = _thief_run(source, workdir, label.replace(" ", "_"), steps,
                                    keep_discriminator=keep_d)  # fmt: skip
        forward = forward_fn(result.models[task.keyed_role])
        note = f"{attack.train.steps} steps, lr {attack.optim.learning_rate:g}"
        rows.append(_row(f"fine-tune {label} (no key)", "attack_finetune", scorer(forward), note))
        stolen = result.models[task.keyed_role]  # the owner runs it with the deep lock of the key
        with attached(stolen.generator, owner_deep_lock(source, key)):
            owner = forward_fn(stolen, feature=owner_feature, key_inverse=key_inverse(source, key))
        rows.append(_row(f"fine-tune {label} (owner's correct key)", "attack_finetune",
                         scorer(owner, authorized)))  # fmt: skip
    rows.append(_scratch_row(source, workdir, scorer, steps))
    return _save(workdir, "finetune", rows)


ESTIMATE_ADAPTERS = ("block", "sites")


def attack_estimate(
    workdir,
    *,
    cache_dir=None,
    steps=None,
    learning_rate=None,
    with_scratch: bool = True,
    adapter: str = "block",
):
    """Key estimation on the thief's raw images with the family's task loss, the stolen
    generator frozen; default budget half the source's steps, lr = the owner's input-map lr.
    `adapter`: "block", a per-block linear input map (kernel = stride = block) in front of it (the
    issue's attack); "sites", a learned C×C channel map at every deep-lock site
    (`key_estimation.SiteAdapter`: the white-box thief who reads the sites in the public config).
    `with_scratch`: also train (or reuse) the from-scratch attacker of `attack_finetune` for the
    comparison row."""
    from egan_jax import deep_lock
    from egan_jax.attacks import BlockAdapter
    from egan_jax.attacks_i2i import TASK_LOSSES, estimate_adapter, finetune_config, task_of
    from egan_jax.attacks_i2i import make_batches as thief_batches
    from egan_jax.errors import ConfigError
    from egan_jax.evaluate_i2i import forward_fn
    from egan_jax.families.egan_image import deep_sites
    from egan_jax.key_estimation import SiteAdapter

    if adapter not in ESTIMATE_ADAPTERS:
        raise ConfigError(f"adapter={adapter!r}; valid: {list(ESTIMATE_ADAPTERS)}")
    workdir = Path(workdir)
    config, models, _ = _load(workdir, None, False)
    task = task_of(config)
    scorer = Scorer(config, cache_dir)
    share = thief_batches(finetune_config(config, workdir))
    budget, steps = steps, steps or max(1, config.train.steps // 2)
    learning_rate = learning_rate or config.optim.learning_rate * config.model.adapter_lr_scale
    frozen = {role: models[role] for role in task.generators + task.discriminators}
    task_loss = TASK_LOSSES[task.protected](config)
    keyed = models[task.keyed_role]
    if adapter == "sites":
        sites = deep_sites(config)
        if not sites:
            raise ConfigError(
                f"--adapter sites needs deep-lock sites; {workdir} was trained with "
                "model.deep_lock=() — use the block adapter (drop --adapter)"
            )
        learner = SiteAdapter(sites, rngs=nnx.Rngs(config.seed))

        def loss_fn(maps, frozen, batch):  # the maps stand where the owner's locks stood
            inner = getattr(frozen[task.keyed_role], "generator", frozen[task.keyed_role])
            with deep_lock.attached(inner, lambda site, h: maps(site, h)):
                return task_loss(lambda x: x, frozen, batch)
    else:
        learner = BlockAdapter(config.model.block, config.data.channels, rngs=nnx.Rngs(config.seed))
        loss_fn = task_loss
    history = estimate_adapter(
        learner, frozen, loss_fn,
        (share(i, 0, 1) for i in range(steps)), steps=steps, learning_rate=learning_rate,
    )  # fmt: skip
    learner.eval()
    note = f"{steps} steps, lr {learning_rate:g}, loss {history[0]:.4f} -> {history[-1]:.4f}"
    if adapter == "sites":
        forward = forward_fn(keyed, lock=lambda site, h: learner(site, h))
        scores = scorer(forward)
        name = "key estimation: learned channel maps at the lock sites, no key"
        note += f"; {len(sites)} sites"
    else:
        forward = forward_fn(keyed)
        scores = scorer(lambda x: forward(np.asarray(nnx.jit(lambda a, x: a(x))(learner, x))))
        name = "key estimation: learned block map, no key"
    rows = [_row(name, "attack_estimate", scores, note)]
    if with_scratch:
        rows.append(_scratch_row(config, workdir, scorer, budget))
    return _save(workdir, "estimate" if adapter == "block" else "estimate_sites", rows)


def run_cli(args) -> list[dict[str, Any]]:
    """`egan attack NAME --workdir <egan_srgan / egan_cyclegan run>`."""
    from egan_jax.errors import ConfigError

    if args.attack not in ATTACKS:
        raise ConfigError(
            f"`egan attack {args.attack}` is DCGAN-only; on an egan_srgan / egan_cyclegan workdir "
            f"run one of {list(ATTACKS)}"
        )
    key = SecretKey.load(args.key) if getattr(args, "key", None) else None
    if args.attack == "prune":
        return attack_prune(args.workdir, key=key, cache_dir=args.cache_dir)
    if args.attack == "search":
        return attack_search(args.workdir, candidates=args.candidates, seed=args.seed,
                             cache_dir=args.cache_dir)  # fmt: skip
    if args.attack == "finetune":
        return attack_finetune(args.workdir, key=key, cache_dir=args.cache_dir, steps=args.steps)
    adapter = "sites" if getattr(args, "adapter", "latent") == "sites" else "block"
    return attack_estimate(
        args.workdir, cache_dir=args.cache_dir, steps=args.steps, adapter=adapter
    )
