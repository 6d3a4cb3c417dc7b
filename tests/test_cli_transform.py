"""`egan keygen`, `egan key fingerprint`, `egan transform` end to end through the CLI entry point."""

import os

import numpy as np
import pytest

from egan_jax.cli import main
from egan_jax.imageio import read_image, write_image
from egan_jax.keys import SecretKey


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "owner.key"
    assert main(["keygen", "--out", str(path)]) == 0
    return path


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    write_image(path, image)
    return path, image


def test_keygen_and_fingerprint(key_file, capsys):
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    capsys.readouterr()
    assert main(["key", "fingerprint", str(key_file)]) == 0
    assert capsys.readouterr().out.strip() == SecretKey.load(key_file).fingerprint
    assert main(["keygen", "--out", str(key_file)]) == 2  # refuses to overwrite
    assert "--force" in capsys.readouterr().err


def test_passphrase_keygen_is_reproducible(tmp_path, monkeypatch):
    monkeypatch.setenv("EGAN_PASSPHRASE", "a passphrase")
    salt = "00112233445566778899aabbccddeeff"
    for name in ("a.key", "b.key"):
        args = ["keygen", "--passphrase", "--salt", salt, "--out", str(tmp_path / name)]
        assert main(args) == 0
    assert SecretKey.load(tmp_path / "a.key") == SecretKey.load(tmp_path / "b.key")


@pytest.mark.parametrize(
    ("variant", "steps", "bits"),
    [("decimal", "shuffle,np,ffx", 16), ("binary", "shuffle,np,ffx", 8), ("decimal", "np", 8)],
)
def test_transform_round_trip_is_exact(tmp_path, key_file, photo, variant, steps, bits):
    path, image = photo
    locked, back = tmp_path / "locked.png", tmp_path / "back.png"
    args = ["transform", "--key", str(key_file), str(path), str(locked), "--ffx-variant", variant]
    assert main([*args, "--steps", steps]) == 0
    array, metadata = read_image(locked)
    assert array.dtype == (np.uint16 if bits == 16 else np.uint8)
    assert not np.array_equal(array, image)
    assert metadata["key_fingerprint"] == SecretKey.load(key_file).fingerprint
    assert metadata["transform"]["steps"] == steps.split(",")
    secret_text = open(key_file).read().split('"secret": "')[1].split('"')[0]
    assert secret_text not in locked.read_bytes().decode("latin-1")
    assert main(["transform", "--key", str(key_file), "--inverse", str(locked), str(back)]) == 0
    restored, _ = read_image(back)
    assert restored.dtype == np.uint8 and np.array_equal(restored, image)


def test_transform_errors_are_clear(tmp_path, key_file, photo, capsys):
    path, _ = photo
    locked = tmp_path / "locked.png"
    assert main(["transform", "--key", str(key_file), str(path), str(locked)]) == 0
    other = tmp_path / "other.key"
    SecretKey.generate().save(other)
    capsys.readouterr()
    assert (
        main(["transform", "--key", str(other), "--inverse", str(locked), str(tmp_path / "x.png")])
        == 2
    )
    assert "was encrypted with key" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
    assert main(["transform", "--key", str(key_file), "--block", "5", str(path), str(locked)]) == 2
    assert "not both divisible by the block size M=5" in capsys.readouterr().err
    assert main(["transform", "--key", str(key_file), "--inverse", str(path), str(locked)]) == 2
    assert "no egan_jax transform metadata" in capsys.readouterr().err
    assert main(["transform", "--key", str(tmp_path / "nope.key"), str(path), str(locked)]) == 2
    assert "egan keygen" in capsys.readouterr().err
