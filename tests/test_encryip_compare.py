"""EncryIP side by side with the plain, watermarked and key-transform classifiers: a tiny real run
of each, the same-setting check, and the table."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest

from egan_jax.config import apply_overrides
from egan_jax.encryip.compare import check_same_setting, compare_protections
from egan_jax.encryip.group import TEST_GROUP_64
from egan_jax.encryip.registry import Registry
from egan_jax.errors import ConfigError
from egan_jax.families import classifier
from egan_jax.families import encryip as family
from egan_jax.keys import SecretKey

SHARED = (
    "data.image_size=8",
    "model.width=8",
    "loss.eval_batch_size=64",
    "train.batch_size=16",
    "train.steps=30",
    "optim.learning_rate=0.01",
    "log.every=10",
    "log.quiet=true",
    "log.tensorboard=false",
    "checkpoint.every=0",
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from egan_jax.train import train_and_evaluate

    root = tmp_path_factory.mktemp("compare")
    registry = Registry.create(root / "owner.json", group=TEST_GROUP_64, rng=random.Random(5))
    for i in range(3):
        registry.issue_user(f"user{i}", rng=random.Random(200 + i))
    key = SecretKey.from_bytes(bytes(range(32)))
    key.save(root / "transform.key")
    encryip_config = apply_overrides(
        family.default_config(),
        [
            *SHARED,
            f"model.registry={root / 'owner.json'}",
            "model.per_class=2",
            "model.num_fakes=8",
            "model.watermark_signature=EncryIP",
            "loss.eval_users=3",
            "loss.false_accusation_rate=1e-3",
        ],
    )
    transform_config = apply_overrides(
        classifier.default_config(),
        [
            *SHARED,
            f"model.transform.key_file={root / 'transform.key'}",
            "model.transform.steps=shuffle,np",
            "loss.random_keys=0",
            "loss.near_miss_keys=0",
        ],
    )
    result = train_and_evaluate(encryip_config, root / "encryip")
    train_and_evaluate(transform_config, root / "transform")
    return root, encryip_config, transform_config, result


def test_same_setting_check_names_the_differing_fields():
    config = family.default_config()
    other = classifier.default_config()
    other = dataclasses.replace(
        other, model=dataclasses.replace(other.model, width=64), seed=config.seed + 1
    )
    with pytest.raises(ConfigError, match=r"model\.width: 32 vs 64.*seed|seed.*model\.width"):
        check_same_setting(config, other)
    unprotected = apply_overrides(classifier.default_config(), ["model.transform.steps="])
    with pytest.raises(ConfigError, match="transform.steps"):
        check_same_setting(config, unprotected)


@pytest.mark.slow
def test_watermarked_twin_carries_its_signature(runs):
    _, _, _, result = runs
    evaluation = result.evaluation
    assert evaluation["watermark_ber"] <= 0.05
    assert evaluation["watermarked_model"] > 0.3
    assert 0.0 < evaluation["index_spread"] <= 1.0


@pytest.mark.slow
def test_side_by_side_table(runs, tmp_path):
    root, *_ = runs
    report = compare_protections(
        root / "encryip",
        root / "owner.json",
        root / "transform",
        out=tmp_path,
        finetune_steps=2,
        prune_fractions=(0.5,),
        random_keys=2,
        draws=2,
    )
    rows = {(r["scenario"], r["measure"]): r for r in report["rows"]}
    first = rows[("none", "owner / authorized user %")]
    assert all(0.0 <= first[name] <= 1.0 for name in ("plain", "watermark", "transform", "encryip"))
    proof = rows[("none", "owner's proof")]
    assert proof["plain"] == proof["transform"] == "none"
    assert proof["watermark"].startswith("ownership verified")
    assert proof["encryip"] == "3/3 users identified"
    assert ("prune 50%", "owner's proof") in rows
    assert any(s.startswith("fine-tune 10%") for s, _ in rows)
    assert (
        rows[
            (
                "forged keys: random (2 transform keys, 1 EncryIP key pair)",
                "best forged-key accuracy %",
            )
        ]["plain"]
        == "no key"
    )
    markdown = (tmp_path / "compare.md").read_text()
    assert "| attack | measure | plain | watermark | key transform | EncryIP |" in markdown
    assert json.loads((tmp_path / "compare.json").read_text())["rows"] == report["rows"]
    # another setting is refused, naming the field
    with pytest.raises(ConfigError, match="train.steps"):
        check_same_setting(runs[1], apply_overrides(runs[2], ["train.steps=31"]))
