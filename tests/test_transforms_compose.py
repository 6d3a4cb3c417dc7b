"""Pipeline from config: fused execution equals step-by-step and the reference, inverse, config errors."""

import hashlib
import json

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egan_jax.errors import ConfigError, ShapeError
from egan_jax.keys import SecretKey
from egan_jax.transforms import STEPS, LatentPipeline, Pipeline, decimal_grid, pixel_grid
from egan_jax.transforms import reference as ref

FIXED_KEY = SecretKey.from_bytes(bytes(range(32)))
KIYA = {"block": 4, "steps": ["shuffle", "np", "ffx"]}


@st.composite
def pipelines(draw):
    """A random key, an ordered subset of steps, a block size and matching uint8/float images."""
    key = SecretKey.from_bytes(draw(st.binary(min_size=32, max_size=32)))
    steps = draw(st.permutations(sorted(STEPS)))[: draw(st.integers(1, len(STEPS)))]
    m = draw(st.sampled_from([1, 2, 4, 8]))
    config = {
        "block": m,
        "steps": steps,
        "ffx_variant": draw(st.sampled_from(["decimal", "binary"])),
    }
    shape = (draw(st.sampled_from([1, 3])), m * draw(st.sampled_from([1, 2])), 2 * m, 3)
    values = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(0, 256, shape)
    x = pixel_grid()[values] if draw(st.booleans()) else values.astype(np.uint8)
    return Pipeline.from_config(config, key), x


def step_by_step(pipe, x):
    for name, material in pipe.materials:
        x = STEPS[name].forward(material, x)
    return x


def feasible_for_uint8(pipe):
    """uint8 → uint16 after decimal FFX; negative/positive is defined on uint8 only."""
    names = [name for name, _ in pipe.materials]
    return not (
        pipe.config["ffx_variant"] == "decimal"
        and "ffx" in names
        and "np" in names[names.index("ffx") :]
    )


@settings(max_examples=20, deadline=None)
@given(pipelines())
def test_fused_pipeline_equals_steps_reference_and_inverts_exactly(case):
    pipe, x = case
    if x.dtype == np.uint8 and not feasible_for_uint8(pipe):
        with pytest.raises(ShapeError, match="dtype uint16 is not supported"):
            step_by_step(pipe, x)
        return
    y = np.asarray(pipe.forward(x))
    np.testing.assert_array_equal(y, np.asarray(step_by_step(pipe, x)))
    np.testing.assert_array_equal(y, ref.apply_steps(x, pipe.materials, pipe.block_size))
    back = np.asarray(pipe.inverse(y))
    assert back.dtype == x.dtype
    np.testing.assert_array_equal(back, x)


def test_jit_vmap_and_eager_agree():
    pipe = Pipeline.from_config(KIYA, FIXED_KEY)
    x = pixel_grid()[np.random.default_rng(0).integers(0, 256, (2, 3, 8, 8, 3))]
    eager = np.asarray(pipe.forward(x[0]))
    np.testing.assert_array_equal(np.asarray(jax.jit(pipe.forward)(x[0])), eager)
    mapped = np.asarray(jax.vmap(pipe.forward)(x))
    np.testing.assert_array_equal(mapped[0], eager)
    np.testing.assert_array_equal(np.asarray(jax.vmap(pipe.inverse)(mapped)), x)
    np.testing.assert_array_equal(np.asarray(jax.jit(pipe.inverse)(eager)), x[0])


def test_golden_pipeline_output_of_the_fixed_key():
    h, w, c = np.meshgrid(np.arange(8), np.arange(8), np.arange(3), indexing="ij")
    x = ((h * 32 + w * 4 + c * 85) % 256).astype(np.uint8)[None]
    y = np.ascontiguousarray(np.asarray(Pipeline.from_config(KIYA, FIXED_KEY).forward(x)))
    digest = hashlib.sha256(y.dtype.str.encode() + y.tobytes()).hexdigest()
    assert digest == "38e801522028441fec960b140db28c0a5373946dfc16e05c70152dbe7d372aa0"


def test_config_is_json_data_without_key_material_and_rebuilds_the_pipeline():
    pipe = Pipeline.from_config(KIYA, FIXED_KEY)
    text = json.dumps(pipe.config)
    assert json.loads(text) == {**KIYA, "channels": 3, "ffx_variant": "decimal"}
    assert pipe.fingerprint == FIXED_KEY.fingerprint
    assert FIXED_KEY.fingerprint in repr(pipe) and "permutation" not in repr(pipe)
    rebuilt = Pipeline.from_config(json.loads(text), FIXED_KEY)
    assert rebuilt.materials == pipe.materials


def test_wrong_and_near_miss_keys_transform_differently():
    x = pixel_grid()[np.random.default_rng(2).integers(0, 256, (2, 8, 8, 3))]
    mine = np.asarray(Pipeline.from_config(KIYA, FIXED_KEY).forward(x))
    for other in (SecretKey.from_bytes(bytes(range(1, 33))), FIXED_KEY.flip_bit(42)):
        other_pipe = Pipeline.from_config(KIYA, other)
        assert all(a != b for (_, a), (_, b) in zip(Pipeline.from_config(KIYA, FIXED_KEY).materials,
                                                    other_pipe.materials, strict=True))  # fmt: skip
        assert (np.asarray(other_pipe.forward(x)) != mine).mean() > 0.5
    near = Pipeline.from_config(KIYA, FIXED_KEY).near_miss(0, step="shuffle")
    differs = np.asarray(near.forward(x)) != mine
    assert 0 < differs.mean() < 0.1  # one transposition changes two positions per block


def test_inverse_rejects_data_not_from_this_pipeline():
    pipe = Pipeline.from_config({"block": 2, "steps": ["ffx"]}, FIXED_KEY)
    unused = np.setdiff1d(np.arange(1000), pipe.materials[0][1].table)
    codes = np.resize(unused, (1, 4, 4, 3)).astype(np.uint16)
    with pytest.raises(ShapeError, match="not valid FFX codes for this key"):
        pipe.inverse(codes)
    with pytest.raises(ShapeError, match="not valid FFX codes for this key"):
        pipe.inverse(decimal_grid()[codes.astype(int)])
    out = np.asarray(jax.jit(pipe.inverse)(decimal_grid()[codes.astype(int)]))
    selected = np.tile(pipe.materials[0][1].mask.reshape(2, 2, 3), (2, 2, 1))
    np.testing.assert_array_equal(np.isnan(out[0]), selected)  # under jit: NaN where invalid


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"block": 4, "steps": ["shuffle", "rotate"]}, r"unknown step 'rotate'; valid: \['channel', 'ffx', 'np', 'shuffle'\]"),
        ({"block": 4, "steps": ["np"], "blocksize": 4}, r"unknown transform config field\(s\) \['blocksize'\]; valid fields"),
        ({"block": 0, "steps": ["np"]}, r"field 'block' must be a positive int, got 0"),
        ({"block": 4, "steps": "np"}, r"field 'steps' must be a non-empty list"),
        ({"block": 4, "steps": []}, r"field 'steps' must be a non-empty list"),
        ({"block": 4, "steps": ["np", "np"]}, r"repeats \['np'\]"),
        ({"block": 4, "steps": ["ffx"], "ffx_variant": "hex"}, r"'ffx_variant' is 'hex'; valid: \['binary', 'decimal'\]"),
        ({"steps": ["np"]}, r"needs 'block'"),
        ([("block", 4)], r"must be a mapping"),
    ],
)  # fmt: skip
def test_bad_configs_raise_config_errors_naming_the_field(config, message):
    with pytest.raises(ConfigError, match=message):
        Pipeline.from_config(config, FIXED_KEY)


def test_bad_images_raise_shape_errors():
    pipe = Pipeline.from_config(KIYA, FIXED_KEY)
    with pytest.raises(ShapeError, match=r"H=8, W=6, not both divisible by the block size M=4"):
        pipe.forward(np.zeros((1, 8, 6, 3), np.float32))
    with pytest.raises(ShapeError, match="dtype uint16 is not supported; accepted: uint8, float32"):
        pipe.forward(np.zeros((1, 8, 8, 3), np.uint16))
    with pytest.raises(ShapeError, match="contains NaN"):
        pipe.forward(np.full((1, 8, 8, 3), np.nan, np.float32))
    with pytest.raises(ConfigError, match="near_miss step 'channel' is not in"):
        pipe.near_miss(0, step="channel")


def test_latent_pipeline_from_config_round_trips_and_moves_latents():
    config = {"dim": 32, "steps": ["perm", "sign", "halfspace", "offset"], "margin": 1.5}
    pipe = LatentPipeline.from_config(config, FIXED_KEY)
    assert json.loads(json.dumps(pipe.config)) == {**config, "radius": 1.0}
    z = np.random.default_rng(3).normal(size=(64, 32)).astype(np.float32)
    y = np.asarray(pipe.forward(z))
    np.testing.assert_allclose(np.asarray(pipe.inverse(y)), z, rtol=0, atol=1e-4)
    halfspace = pipe.materials[2][1]
    offset = pipe.materials[3][1].offset
    assert ((y - offset) @ halfspace.direction > 1.5 - 1e-5).all()
    other = np.asarray(LatentPipeline.from_config(config, FIXED_KEY.flip_bit(9)).forward(z))
    assert np.abs(other - y).mean() > 0.5
    near = np.asarray(pipe.near_miss(0, step="offset").forward(z))
    assert np.count_nonzero(np.abs(near - y).max(axis=0) > 1e-6) == 1  # one coordinate's sign moved


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"dim": 8, "steps": ["shell"]}, r"unknown step 'shell'; valid: \['halfspace', 'offset', 'perm', 'sign'\]"),
        ({"dim": 8, "steps": ["perm"], "block": 4}, r"unknown latent config field\(s\) \['block'\]"),
        ({"dim": 0, "steps": ["perm"]}, r"field 'dim' must be a positive int"),
        ({"dim": 8, "steps": ["offset"], "radius": -1}, r"field 'radius' must be a positive number"),
        ({"steps": ["perm"]}, r"needs 'dim'"),
    ],
)  # fmt: skip
def test_bad_latent_configs_raise(config, message):
    with pytest.raises(ConfigError, match=message):
        LatentPipeline.from_config(config, FIXED_KEY)
