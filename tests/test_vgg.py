"""VGG19 feature network: torchvision layout, .npz conversion, ImageNet normalisation, content loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

from egan_jax.errors import CheckpointError, ConfigError
from egan_jax.models import vgg

# torchvision.models.vgg19().features: conv layers sit at these indices (ReLU after each, max pools
# at 4, 9, 18, 27, 36) — the architecture's definition, used to check our layer plan.
TORCHVISION_CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]


def _random_torch_state(layer, seed=0):
    rng = np.random.default_rng(seed)
    state, cin = {}, 3
    for index in vgg.conv_indices(layer):
        block = 1 + sum(index > p for p in (4, 9, 18, 27))
        cout = vgg.WIDTHS[block - 1]
        std = np.sqrt(2.0 / (9 * cin))
        state[f"features.{index}.weight"] = rng.normal(0, std, (cout, cin, 3, 3)).astype(np.float32)
        state[f"features.{index}.bias"] = rng.normal(0, 0.1, (cout,)).astype(np.float32)
        cin = cout
    return state


def _torch_semantics_reference(state, images, indices):
    """torchvision's features[: last + 2] in NCHW/OIHW, written directly on the torch arrays."""
    x = jnp.transpose((jnp.asarray(images) + 1) / 2, (0, 3, 1, 2))
    mean = jnp.array([0.485, 0.456, 0.406])[:, None, None]
    std = jnp.array([0.229, 0.224, 0.225])[:, None, None]
    x = (x - mean) / std
    pools = {4, 9, 18, 27, 36}
    for i in range(indices[-1] + 2):
        if i in indices:
            w = jnp.asarray(state[f"features.{i}.weight"])
            x = lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), precision="highest")
            x = x + jnp.asarray(state[f"features.{i}.bias"])[:, None, None]
        elif i in pools:
            x = lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        else:
            x = jax.nn.relu(x)
    return jnp.transpose(x, (0, 2, 3, 1))


def test_layer_plan_matches_torchvision_indices():
    assert vgg.conv_indices("relu5_4") == TORCHVISION_CONV_INDICES
    assert vgg.conv_indices("relu2_2") == [0, 2, 5, 7]
    assert vgg.LAYER_NAMES[-1] == "pool5" and len(vgg.LAYER_NAMES) == 16 * 2 + 5
    with pytest.raises(ConfigError, match="no layer"):
        vgg.VGG19Features(layer="relu6_1", rngs=nnx.Rngs(0))


def test_full_depth_shapes():
    def features(layer):
        make = lambda: vgg.VGG19Features(layer=layer, rngs=nnx.Rngs(0))(jnp.zeros((2, 64, 48, 3)))
        return jax.eval_shape(make).shape

    assert features("relu5_4") == (2, 4, 3, 512)
    assert features("conv3_1") == (2, 16, 12, 256)
    assert features("pool5") == (2, 2, 1, 512)


def test_converted_random_state_loads_and_matches_torch_semantics(tmp_path):
    layer = "relu2_2"
    state = _random_torch_state(layer)
    path = tmp_path / "vgg19_features.npz"
    np.savez(path, **state)
    model = vgg.load_vgg19(path, layer=layer)
    images = np.random.default_rng(1).uniform(-1, 1, (2, 20, 16, 3)).astype(np.float32)
    got = model(jnp.asarray(images))
    want = _torch_semantics_reference(state, images, vgg.conv_indices(layer))
    assert got.shape == (2, 10, 8, 128)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)
    # the in-memory model exported in torch layout gives back exactly the file's arrays
    exported = vgg.torch_state(model)
    assert sorted(exported) == sorted(state)
    for name, value in state.items():
        np.testing.assert_array_equal(exported[name], value)


def test_bad_weight_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        vgg.load_vgg19(tmp_path / "missing.npz")
    state = _random_torch_state("relu1_2")
    np.savez(tmp_path / "short.npz", **state)
    with pytest.raises(CheckpointError, match="features.5.weight"):
        vgg.load_vgg19(tmp_path / "short.npz", layer="relu2_1")
    state["features.2.weight"] = state["features.2.weight"][:32]
    np.savez(tmp_path / "wrong.npz", **state)
    with pytest.raises(CheckpointError, match="vgg19"):
        vgg.load_vgg19(tmp_path / "wrong.npz", layer="relu1_2")


def test_content_loss_per_example_and_gradients():
    rng = np.random.default_rng(2)
    pred = jnp.asarray(rng.uniform(-1, 1, (3, 8, 8, 3)), jnp.float32)
    target = jnp.asarray(rng.uniform(-1, 1, (3, 8, 8, 3)), jnp.float32)
    features = lambda x: jnp.tanh(2 * x)  # any feature network
    loss = vgg.content_loss(features, pred, target, feature_scale=0.5)
    want = np.mean((0.5 * np.tanh(2 * pred) - 0.5 * np.tanh(2 * target)) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(loss, want, rtol=1e-5)
    np.testing.assert_allclose(vgg.content_loss(features, target, target), 0.0)
    grad_pred, grad_target = jax.grad(
        lambda p, t: jnp.sum(vgg.content_loss(features, p, t)), argnums=(0, 1)
    )(pred, target)
    assert float(jnp.abs(grad_pred).sum()) > 0 and float(jnp.abs(grad_target).sum()) == 0
