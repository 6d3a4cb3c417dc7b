"""The EGAN-protected DCGAN family on the generic loop: training, key fingerprints, designs."""

import base64
import dataclasses
import json

import jax
import numpy as np
import pytest
from conftest import REPO, TINY_OVERRIDES

from egan_jax.config import load_config
from egan_jax.errors import ConfigError, KeyMismatchError
from egan_jax.families import get_family
from egan_jax.keys import SecretKey

SMALL = (
    *TINY_OVERRIDES,
    "train.steps=2",
    "loss.unauthorized.random_keys=1",
    "loss.unauthorized.near_keys=1",
    "loss.unauthorized.near_materials=1",
)


def egan_config(key_file, *overrides):
    return load_config(
        REPO / "experiments" / "egan_dcgan_digits.py",
        [*SMALL, f"model.key_file={key_file}", *overrides],
    )


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    return {
        name: (SecretKey.generate().save(folder / f"{name}.key"), None)[0] for name in ("a", "b")
    }


def _models(config):
    from flax import nnx

    from egan_jax.train import initial_state

    graphdef, state = initial_state(get_family(config.family), config)
    return nnx.merge(graphdef, state)["models"]


class MeanScorer:
    """Stands in for the digits classifier in `evaluate`: a cheap, deterministic statistic."""

    def __init__(self, config, cache_dir=None):
        pass

    def __call__(self, images):
        return float(np.mean(np.abs(images))) + 1.0


@pytest.mark.slow
def test_protected_training_fingerprint_resume_and_report(tmp_path, keys, monkeypatch):
    """One tiny run checked end to end (one compile): training, the fingerprint (and never the
    secret) in the checkpoint, another key refused, and the `egan evaluate` report."""
    from egan_jax import evaluate
    from egan_jax.train import load_trained, train_and_evaluate

    config = egan_config(
        keys["a"],
        "loss.unauthorized.fresh_near=0.5",  # the default design, feature_lock
        "loss.watermark.trigger_weight=1.0",
        "loss.watermark.logo_weight=1.0",
        "loss.watermark.signature_weight=1.0",
    )
    first = train_and_evaluate(config, tmp_path / "run1")
    assert first.step == 2
    assert -1.0 <= first.metrics["g_self_adversarial"] <= 0.0
    assert np.isfinite(first.metrics["g_loss"])
    key_a = SecretKey.load(keys["a"])
    secret = base64.b64encode(key_a._secret)
    for path in (tmp_path / "run1").rglob("*"):
        if path.is_file():
            assert secret not in path.read_bytes(), path
    # another key: resuming and loading are refused
    other = dataclasses.replace(
        config,
        model=dataclasses.replace(config.model, key_file=str(keys["b"])),
        train=dataclasses.replace(config.train, steps=3),
    )
    with pytest.raises(KeyMismatchError, match="fingerprint"):
        train_and_evaluate(other, tmp_path / "run1")
    with pytest.raises(KeyMismatchError):
        load_trained(tmp_path / "run1", key_fingerprint=SecretKey.load(keys["b"]).fingerprint)
    _, models, step = load_trained(tmp_path / "run1", key_fingerprint=key_a.fingerprint)
    assert step == 2 and "generator" in models
    # the report
    monkeypatch.setattr(evaluate, "FrechetScorer", MeanScorer)
    report = evaluate.evaluate_workdir(tmp_path / "run1", num_samples=16, random_keys=2)
    kinds = [row["kind"] for row in report["rows"]]
    assert kinds.count("authorized") == 1 and kinds.count("random_key") == 2
    assert {"no_key", "near_key", "near_material", "watermark"} <= set(kinds)
    assert "no key (plain model)" in [row["name"] for row in report["rows"]]  # the lock's extra
    folder = tmp_path / "run1" / "report"
    assert json.loads((folder / "report.json").read_text())["rows"] == report["rows"]
    assert (folder / "grid.png").stat().st_size > 0
    assert "| correct key |" in (folder / "report.md").read_text()
    with pytest.raises(KeyMismatchError):
        evaluate.evaluate_workdir(tmp_path / "run1", key=SecretKey.load(keys["b"]), num_samples=16)
    # the watermark-overwrite attack: the thief's run, then both parties' marks measured
    from egan_jax import attack_runs

    monkeypatch.setattr(attack_runs, "FrechetScorer", MeanScorer)
    rows = attack_runs.attack_watermark_overwrite(tmp_path / "run1", num_samples=16, steps=1)
    owner, thief = rows
    assert {"logo_ssim", "bit_error_rate"} <= set(owner) and "verified" in owner["note"]
    assert {"thief_logo_ssim", "thief_bit_error_rate"} <= set(thief)
    assert (tmp_path / "run1" / "attacks" / "overwrite.json").exists()


def test_feature_design_routes_the_key_through_the_generator_hook(keys):
    from flax import nnx

    from egan_jax.families import egan_dcgan

    config = egan_config(keys["a"], "model.design=feature_perm")
    generator = _models(config)["generator"]
    generator.eval()
    vs = egan_dcgan.variants(config)
    z = jax.random.normal(jax.random.key(0), (4, config.model.latent_dim))
    keyed = nnx.jit(lambda g, z: egan_dcgan.generate_variant(g, z, vs.authorized, config))
    plain = nnx.jit(lambda g, z: g(z))
    with_key, without = np.asarray(keyed(generator, z)), np.asarray(plain(generator, z))
    assert not np.allclose(with_key, without)
    np.testing.assert_array_equal(np.asarray(plain(generator, z)), without)  # hook restored
    assert generator.feature_transform is not vs.authorized.apply


def test_config_errors_name_the_field(keys):
    family = get_family("egan_dcgan")
    config = egan_config(keys["a"], "loss.unauthorized.fresh_near=0.5")
    bad = [
        ("model", {"design": "pixels"}, "model.design"),
        (
            "loss",
            {"unauthorized": dataclasses.replace(config.loss.unauthorized, fraction=0.0)},
            "fraction",
        ),
        ("model", {"design": "latent_offset"}, "fresh_near"),  # with fresh_near > 0 (below)
        (
            "loss",
            {
                "self_adversarial": dataclasses.replace(
                    config.loss.self_adversarial, divergence="kl"
                )
            },
            "valid divergences",
        ),
    ]
    for section, fields, message in bad:
        broken = dataclasses.replace(
            config, **{section: dataclasses.replace(getattr(config, section), **fields)}
        )
        with pytest.raises(ConfigError, match=message):
            family.make_train_step(broken)


def test_fingerprint_comes_from_the_key_file_and_the_demo_key_is_public(keys):
    from egan_jax.families import egan_dcgan

    assert (
        egan_dcgan.key_fingerprint(egan_config(keys["a"])) == SecretKey.load(keys["a"]).fingerprint
    )
    demo = dataclasses.replace(
        egan_config(keys["a"]),
        model=dataclasses.replace(egan_config(keys["a"]).model, key_file=None),
    )
    assert (
        egan_dcgan.key_fingerprint(demo)
        == SecretKey.from_passphrase(egan_dcgan.DEMO_PASSPHRASE, bytes(16)).fingerprint
    )


def test_signature_is_embedded_at_initialisation(keys):
    from egan_jax import watermark

    config = egan_config(keys["a"], "loss.watermark.signature_weight=1.0")
    generator = _models(config)["generator"]
    bits = watermark.signature_bits(config.loss.watermark.signature)
    assert watermark.signature_ber(generator, bits) == 0.0
    assert np.mean(bits < 0) > 0.2  # so untouched scales (all +1 at init) would show errors


def test_feature_lock_design_matches_the_plain_permutation_with_the_key(keys):
    """The lock subtracts the stored γ = a_k(0): with the key the generator sees exactly the plain
    design's feature map (same weights, same output); without it a large residual."""
    from flax import nnx

    from egan_jax.families import egan_dcgan

    lock_config = egan_config(keys["a"], "model.design=feature_lock", "model.offset_gap=8")
    perm_config = egan_config(keys["a"], "model.design=feature_perm")
    locked, plain = _models(lock_config)["generator"], _models(perm_config)["generator"]
    material = egan_dcgan.variants(lock_config).authorized.material
    np.testing.assert_array_equal(np.asarray(locked.key_lock[...]), material.lock_value())
    z = jax.random.normal(jax.random.key(0), (4, lock_config.model.latent_dim))
    outputs = []
    for config, generator in ((lock_config, locked), (perm_config, plain)):
        generator.eval()
        authorized = egan_dcgan.variants(config).authorized
        run = nnx.jit(lambda g, z, c=config, v=authorized: egan_dcgan.generate_variant(g, z, v, c))
        outputs.append(np.asarray(run(generator, z)))
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-3)
