"""A run's codebook and triggers derived from the owner's secret: deterministic, keyed, secret."""

import random

import numpy as np
import pytest

from egan_jax.encryip import cslite, derive
from egan_jax.encryip.group import TEST_GROUP_64
from egan_jax.errors import ConfigError

SHAPE = (8, 8, 1)


@pytest.fixture(scope="module")
def owners():
    return [cslite.keygen(TEST_GROUP_64, rng=random.Random(seed)) for seed in (1, 2)]


def _secrets(owner, **overrides):
    params = dict(num_classes=4, per_class=3, num_fakes=6, image_shape=SHAPE, label="a")
    return derive.run_secrets(owner, **{**params, **overrides})


def test_keyed_random_is_deterministic_uniformish_and_keeps_its_state_private():
    first, second = derive.KeyedRandom(b"s" * 32), derive.KeyedRandom(b"s" * 32)
    draws = [first.randrange(1000) for _ in range(2000)]
    assert draws == [second.randrange(1000) for _ in range(2000)]
    assert draws != [derive.KeyedRandom(b"t" * 32).randrange(1000) for _ in range(2000)]
    counts = np.bincount(np.asarray(draws) // 100, minlength=10)
    assert counts.min() > 140 and counts.max() < 260  # 200 expected per decile
    assert 0.0 <= first.random() < 1.0 and first.getrandbits(0) == 0
    assert first.getrandbits(130) < 2**130
    assert repr(first) == "KeyedRandom(<secret seed>)"
    with pytest.raises(TypeError):
        first.getstate()
    with pytest.raises(ConfigError):
        derive.KeyedRandom(b"short")


def test_run_secrets_repeat_exactly(owners):
    a, b = _secrets(owners[0]), _secrets(owners[0])
    assert a.codebook.fingerprint == b.codebook.fingerprint
    assert np.array_equal(a.secret.classes, b.secret.classes)
    assert np.array_equal(a.secret.fake_indices, b.secret.fake_indices)
    assert np.array_equal(a.triggers, b.triggers)
    assert a.triggers.shape == (6, *SHAPE) and a.triggers.dtype == np.float32
    assert -1.0 <= a.triggers.min() < -0.5 and 0.5 < a.triggers.max() <= 1.0
    assert a.codebook.size == 4 * 3 + 6 and a.secret.num_fakes == 6
    assert a.codebook.fingerprint in repr(a) and "triggers" in repr(a)


@pytest.mark.parametrize(
    "change", [{"label": "b"}, {"per_class": 4}, {"num_fakes": 7}, {"num_classes": 5}]
)
def test_other_parameters_give_independent_secrets(owners, change):
    a, b = _secrets(owners[0]), _secrets(owners[0], **change)
    assert a.codebook.fingerprint != b.codebook.fingerprint
    size = min(len(a.triggers), len(b.triggers))
    assert not np.allclose(a.triggers[:size], b.triggers[:size])


def test_another_owner_gets_other_secrets_and_fakes_are_where_the_secret_says(owners):
    a, b = _secrets(owners[0]), _secrets(owners[1])
    assert a.codebook.public_key != b.codebook.public_key
    assert not np.allclose(a.triggers, b.triggers)
    for index in a.secret.fake_indices:
        assert not owners[0].is_honest(a.codebook.entries[int(index)])
    honest = np.flatnonzero(a.secret.classes >= 0)
    assert all(owners[0].is_honest(a.codebook.entries[int(i)]) for i in honest)


def test_no_triggers_is_refused(owners):
    with pytest.raises(ConfigError, match="num_fakes"):
        _secrets(owners[0], num_fakes=0)
