"""The encryip family: config checks, a tiny real run (codebook targets, triggers, evaluation),
only public fingerprints in checkpoints, and the report on that run."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from egan_jax.config import apply_overrides
from egan_jax.encryip import codebook as cb
from egan_jax.encryip.group import TEST_GROUP_64
from egan_jax.encryip.registry import Registry
from egan_jax.errors import ConfigError, KeyMismatchError
from egan_jax.families import encryip as family

TINY = (
    "data.image_size=8",
    "model.width=8",
    "model.per_class=2",
    "model.num_fakes=8",
    "model.codebook_label=tiny",
    "loss.triggers_per_step=8",
    "loss.label_draws=2",
    "loss.eval_users=2",
    "loss.false_accusation_rate=1e-3",
    "loss.eval_batch_size=64",
    "train.batch_size=16",
    "train.steps=40",
    "optim.learning_rate=0.01",
    "log.every=10",
    "log.quiet=true",
    "log.tensorboard=false",
    "checkpoint.every=0",
)


def tiny_config(registry_path, *overrides):
    return apply_overrides(
        family.default_config(), [*TINY, f"model.registry={registry_path}", *overrides]
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from egan_jax.train import train_and_evaluate

    root = tmp_path_factory.mktemp("encryip")
    registry = Registry.create(root / "owner.json", group=TEST_GROUP_64, rng=random.Random(3))
    for i in range(3):
        registry.issue_user(f"user{i}", rng=random.Random(100 + i))
    config = tiny_config(root / "owner.json")
    result = train_and_evaluate(config, root / "run")
    return root, config, registry, result


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="model.registry"):
        family.key_fingerprint(family.default_config())
    Registry.create(tmp_path / "r.json", group=TEST_GROUP_64, rng=random.Random(0))
    for override, field in [
        ("loss.triggers_per_step=99", "triggers_per_step"),
        ("model.per_class=0", "per_class"),
        ("loss.label_draws=-1", "label_draws"),
        ("loss.index_weight=-1", "index_weight"),
    ]:
        with pytest.raises(ConfigError, match=field):
            family.make_train_step(tiny_config(tmp_path / "r.json", override))
    with pytest.raises(ConfigError, match="not both 0"):
        family.make_train_step(
            tiny_config(tmp_path / "r.json", "loss.class_weight=0", "loss.index_weight=0")
        )


@pytest.mark.slow
def test_models_have_one_output_per_codebook_entry(run):
    _, config, _, result = run
    secrets = family.run_secrets(config)
    assert family.num_outputs(config) == secrets.codebook.size == 10 * 2 + 8
    assert result.models["classifier"].head.out_features == secrets.codebook.size
    assert result.models["baseline"].head.out_features == 10


@pytest.mark.slow
def test_tiny_run_learns_labels_and_triggers(run):
    _, _, _, result = run
    evaluation, metrics = result.evaluation, result.metrics
    assert result.step == 40
    assert {"label_loss", "trigger_loss", "trigger_hits", "baseline_loss"} <= metrics.keys()
    assert metrics["trigger_hits"] == 1.0
    assert evaluation["trigger_hit_rate"] >= 0.75
    assert evaluation["traced_users"] == 1.0 and evaluation["users"] == 2
    # decoding with any issued key beats chance clearly, and beats a keyless random map
    assert evaluation["user_key_min"] > 0.5 > evaluation["no_key_random_map"]
    assert evaluation["plain_model"] > 0.5
    assert abs(evaluation["user_key_max"] - evaluation["owner_map"]) < 0.1


@pytest.mark.slow
def test_checkpoint_names_the_codebook_and_holds_no_secret(run):
    from egan_jax.train import load_trained

    root, config, registry, _ = run
    fingerprint = family.key_fingerprint(config)
    assert fingerprint == family.run_secrets(config).codebook.fingerprint
    meta_files = list((root / "run" / "checkpoints").rglob("*"))
    text = (
        "".join(p.read_bytes().decode("latin-1") for p in meta_files if p.is_file())
        + (root / "run" / "config.json").read_text()
    )
    assert fingerprint in text
    for value in registry.owner.secret_record().values():
        assert value not in text
    with pytest.raises(KeyMismatchError):
        load_trained(root / "run", key_fingerprint="eicb1-0000000000000000")


@pytest.mark.slow
def test_randomized_targets_follow_the_derived_table(run):
    import jax

    _, config, _, _ = run
    secret = family.run_secrets(config).secret
    labels = np.arange(200) % 10
    targets = np.asarray(cb.randomized_targets(jax.random.key(0), labels, secret.label_table()))
    assert np.array_equal(secret.classes[targets], labels)
    assert len(np.unique(targets)) == 20  # every honest index is used, no Fake ever


@pytest.mark.slow
def test_report_on_the_tiny_run(run, tmp_path):
    from egan_jax.encryip.report import evaluate_run

    root, config, registry, _ = run
    report = evaluate_run(
        root / "run",
        root / "owner.json",
        out=tmp_path,
        draws=1,
        random_decoders=3,
        attacker_counts=(1, 5),
        prune_fractions=(0.5,),
        finetune_steps=2,
    )
    summary = report["summary"]
    assert summary["identified"] == 1.0 and summary["false_accusations"] == 0
    assert summary["queries_per_trace"] == 8 <= 100
    users = [r for r in report["accuracy"] if r["name"].startswith("user ")]
    assert len(users) == 3
    assert summary["user_key_accuracy_min"] == min(r["accuracy"] for r in users)
    assert [r["per_class"] for r in report["attacker_curve"]] == [1, 5]
    attacks = [r["attack"] for r in report["robustness"]]
    assert "prune 50%" in attacks and any("collude" in a for a in attacks)
    collusion = next(r for r in report["robustness"] if "collude" in r["attack"])
    assert collusion["accused"] is None and collusion["decryption"] == "accepted"
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["summary"] == json.loads(json.dumps(summary))
    markdown = (tmp_path / "report.md").read_text()
    assert "## Tracing" in markdown and "attacker" in markdown
    for value in registry.owner.secret_record().values():
        assert value not in markdown and value not in json.dumps(saved)
