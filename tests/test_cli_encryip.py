"""`egan encryip ...` end to end on a tiny run: registry, users, train, publish, decrypt, trace."""

from __future__ import annotations

import json
import os
import random
import stat

import numpy as np
import pytest

# the tiny run of tests/test_families_encryip.py (the same config: its compiled steps are cached)
from test_encryip_parity import TINY as PARITY_TINY  # the parity check's tiny run
from test_families_encryip import TINY

from egan_jax import cli
from egan_jax.encryip.group import TEST_GROUP_64
from egan_jax.encryip.registry import Registry


def egan(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_registry_commands(tmp_path, capsys):
    registry = tmp_path / "owner.json"
    code, out, _ = egan(
        capsys, "encryip", "keygen", "--registry", registry, "--insecure-test-group"
    )
    assert code == 0 and "eipk1-" in out and "test64-INSECURE" in out
    assert stat.S_IMODE(os.stat(registry).st_mode) == 0o600
    code, _, err = egan(capsys, "encryip", "keygen", "--registry", registry)
    assert code == 2 and "exists" in err
    code, out, _ = egan(
        capsys,
        "encryip",
        "issue-user",
        "--registry",
        registry,
        "--user",
        "alice",
        "--out",
        tmp_path / "alice.json",
    )
    assert code == 0 and "eiuk1-" in out
    secret = json.loads((tmp_path / "alice.json").read_text())["secret"]
    assert all(value not in out for value in secret.values())
    code, _, err = egan(
        capsys,
        "encryip",
        "issue-user",
        "--registry",
        registry,
        "--user",
        "alice",
        "--out",
        tmp_path / "again.json",
    )
    assert code == 2 and "alice" in err
    egan(
        capsys,
        "encryip",
        "issue-user",
        "--registry",
        registry,
        "--user",
        "bob",
        "--out",
        tmp_path / "bob.json",
    )
    code, out, _ = egan(capsys, "encryip", "revoke", "--registry", registry, "--user", "bob")
    assert code == 0 and "revoked" in out and "still decrypts" in out
    code, out, _ = egan(capsys, "encryip", "list-users", "--registry", registry)
    lines = out.strip().splitlines()
    assert [line.split("\t")[:3:2] for line in lines] == [["alice", "active"], ["bob", "revoked"]]
    code, out, _ = egan(
        capsys, "encryip", "list-users", "--registry", registry, "--status", "revoked"
    )
    assert out.startswith("bob\t")
    code, _, err = egan(capsys, "encryip", "revoke", "--registry", registry, "--user", "carol")
    assert code == 2 and "carol" in err


@pytest.mark.slow
def test_train_publish_decrypt_trace(tmp_path, capsys):
    registry, run = tmp_path / "owner.json", tmp_path / "run"
    # the owner key of tests/test_families_encryip.py's run: the same codebook and triggers, so
    # the same compiled steps (they hold them as constants) come from the compilation cache
    Registry.create(registry, group=TEST_GROUP_64, rng=random.Random(3))
    for user in ("alice", "bob", "carol"):
        egan(
            capsys,
            "encryip",
            "issue-user",
            "--registry",
            registry,
            "--user",
            user,
            "--out",
            tmp_path / f"{user}.json",
        )
    # the family's trigger weight and head, which this tiny 40-step run is sized for (the
    # experiment's tied head and 0.125 were measured at its own 600 steps)
    family_defaults = ("loss.trigger_weight=1.0", "model.head_init=random")
    items = (*TINY, *family_defaults, f"model.registry={registry}")
    sets = [x for item in items for x in ("--set", item)]
    code, _, err = egan(
        capsys, "train", "experiments/encryip_digits.py", "--workdir", run, "--quiet", *sets
    )
    assert code == 0, err

    code, _, err = egan(
        capsys,
        "encryip",
        "decrypt",
        "--workdir",
        run,
        "--key",
        tmp_path / "alice.json",
        "--split",
        "test",
    )
    assert code == 2 and "codebook" in err  # not published yet
    code, out, _ = egan(capsys, "encryip", "publish", "--workdir", run, "--registry", registry)
    assert code == 0 and (run / "codebook.json").is_file()
    accuracies = {}
    for user in ("alice", "bob"):
        code, out, _ = egan(
            capsys,
            "encryip",
            "decrypt",
            "--workdir",
            run,
            "--key",
            tmp_path / f"{user}.json",
            "--split",
            "test",
        )
        result = json.loads(out)
        assert code == 0 and result["user"] == user and result["images"] == 180
        accuracies[user] = result["accuracy"]
    assert min(accuracies.values()) > 0.5

    from egan_jax.data_labeled import load_labeled

    images, labels = load_labeled("digits", "test", image_size=8, channels=1)
    np.save(tmp_path / "batch.npy", images[:20])
    code, out, _ = egan(
        capsys,
        "encryip",
        "decrypt",
        "--workdir",
        run,
        "--key",
        tmp_path / "alice.json",
        "--images",
        tmp_path / "batch.npy",
    )
    classes = json.loads(out)["classes"]
    assert code == 0 and len(classes) == 20 and np.mean(np.array(classes) == labels[:20]) > 0.5

    code, out, _ = egan(
        capsys,
        "encryip",
        "trace",
        "--workdir",
        run,
        "--registry",
        registry,
        "--key",
        tmp_path / "bob.json",
    )
    verdict = json.loads(out)
    assert code == 0 and verdict["accused"] == "bob" and verdict["queries"] == 8

    code, out, _ = egan(
        capsys,
        "encryip",
        "triggers",
        "--workdir",
        run,
        "--registry",
        registry,
        "--out",
        tmp_path / "triggers.npy",
    )
    triggers = np.load(tmp_path / "triggers.npy")
    assert code == 0 and triggers.shape == (8, 8, 8, 1)
    # an outside black box: carol's pipeline, answers written to a file
    from egan_jax.encryip import codebook as cb
    from egan_jax.encryip import pipeline as pl
    from egan_jax.encryip import workdir
    from egan_jax.encryip.registry import load_user_key

    _, model, book = workdir.load_for_user(run)
    carol = cb.decrypt_codebook(book, load_user_key(tmp_path / "carol.json")[0])
    answers = pl.decode(pl.predict_logits(model, triggers), carol, 10)
    (tmp_path / "answers.json").write_text(json.dumps(answers.tolist()))
    code, out, _ = egan(
        capsys,
        "encryip",
        "trace",
        "--workdir",
        run,
        "--registry",
        registry,
        "--answers",
        tmp_path / "answers.json",
    )
    assert json.loads(out)["accused"] == "carol"
    (tmp_path / "answers.json").write_text(json.dumps([0] * 8))
    code, out, _ = egan(
        capsys,
        "encryip",
        "trace",
        "--workdir",
        run,
        "--registry",
        registry,
        "--answers",
        tmp_path / "answers.json",
    )
    assert json.loads(out)["accused"] is None

    # compare needs a key-transform classifier run of the same setting: the encryip run is not one
    code, _, err = egan(
        capsys,
        "encryip",
        "compare",
        "--workdir",
        run,
        "--registry",
        registry,
        "--transform-workdir",
        run,
    )
    assert code != 0 and "classifier" in err and "model.transform.steps" in err


@pytest.fixture(scope="module")
def parity_registry(tmp_path_factory):
    path = tmp_path_factory.mktemp("parity_cli") / "owner.json"
    registry = Registry.create(path, group=TEST_GROUP_64, rng=random.Random(5))
    for i in range(2):
        registry.issue_user(f"user{i}", rng=random.Random(200 + i))
    return path


@pytest.mark.slow
def test_parity_subcommand(tmp_path, capsys, parity_registry):
    sets = [word for override in PARITY_TINY for word in ("--set", override)]
    out = tmp_path / "parity"
    code, printed, err = egan(
        capsys,
        "encryip",
        "parity",
        "experiments/encryip_digits.py",
        "--registry",
        parity_registry,
        "--folds",
        "2",
        "--seeds",
        "0",
        "--resamples",
        "100",
        "--out",
        out,
        *sets,
    )
    assert code == 0, err
    report = json.loads((out / "parity.json").read_text())
    summary = report["summary"]
    assert summary["folds"] == 2 and summary["seeds"] == [0] and summary["images"] == 1797
    assert summary["users"] == ["user0", "user1"]
    assert report["command"].startswith("egan encryip parity experiments/encryip_digits.py")
    assert "--set train.steps=6" in report["command"]
    assert (out / "parity.md").read_text().strip() in printed and "gap" in printed
    assert sorted(p.name for p in (out / "folds").iterdir()) == [
        "seed0_fold0.npz",
        "seed0_fold1.npz",
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--folds", "1"), "at least 2 folds"),
        (("--folds", "2", "--seeds", "0", "0"), "distinct"),
        (("--folds", "2", "--resamples", "0"), "--resamples"),
        (("--folds", "2", "--combine", "no/such/dir"), "does not exist"),
    ],
)
def test_parity_subcommand_refuses_bad_arguments(tmp_path, capsys, parity_registry, extra, message):
    code, _, err = egan(
        capsys,
        "encryip",
        "parity",
        "experiments/encryip_digits.py",
        "--registry",
        parity_registry,
        "--out",
        tmp_path,
        *extra,
    )
    assert code == 2 and "egan encryip: error" in err and message in err


def test_parity_subcommand_needs_a_registry(tmp_path, capsys):
    code, _, err = egan(
        capsys, "encryip", "parity", "experiments/encryip_digits.py", "--out", tmp_path
    )
    assert code == 2 and "--registry" in err and "egan encryip keygen" in err
