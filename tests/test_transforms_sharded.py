"""The transforms on a batch sharded over a mesh with Explicit axes (`jax.make_mesh`'s default) and
over an Auto one: same values as on one device, the batch sharding kept (two forced host devices,
in a subprocess, since the device count is fixed when JAX starts)."""

import json
import subprocess
import sys

from conftest import REPO, subprocess_env

_SCRIPT = """
import json
import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
from egan_jax.keys import SecretKey
from egan_jax.transforms import Pipeline, pixel_grid
from egan_jax.transforms.block import BlockShuffleMaterial, block_shuffle
from egan_jax.transforms.feature import FeatureMaterial, feature_forward

key = SecretKey.from_bytes(bytes(range(32)))
pipe = Pipeline.from_config({"block": 4, "steps": ["shuffle", "np", "ffx"]}, key)
shuffle = BlockShuffleMaterial.from_key(key, block_size=4, channels=3)
feature = FeatureMaterial.from_key(key, channels=3)
x = pixel_grid()[np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3)).astype(np.uint8)]
one = {"pipeline": np.asarray(pipe.forward(x)), "shuffle": np.asarray(block_shuffle(shuffle, x)),
       "feature": np.asarray(feature_forward(feature, x))}
out = {}
for types in ("Explicit", "Auto"):
    mesh = jax.make_mesh((2,), ("data",), axis_types=(getattr(AxisType, types),))
    xs = jax.device_put(x, NamedSharding(mesh, P("data")))
    y = pipe.forward(xs)
    results = {"pipeline": y, "shuffle": block_shuffle(shuffle, xs),
               "feature": feature_forward(feature, xs), "jit": jax.jit(pipe.forward)(xs)}
    out[types] = {
        "equal": {k: bool(np.array_equal(np.asarray(v), one["pipeline" if k == "jit" else k]))
                  for k, v in results.items()},
        "inverse_exact": bool(np.array_equal(np.asarray(pipe.inverse(y)), x)),
        "batch_sharded": str(y.sharding.spec[0]) == "data",
    }
print(json.dumps(out))
"""


def test_transforms_on_explicit_and_auto_sharded_batches():
    env = subprocess_env(XLA_FLAGS="--xla_force_host_platform_device_count=2")
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for types in ("Explicit", "Auto"):
        assert all(out[types]["equal"].values()), (types, out[types])
        assert out[types]["inverse_exact"] and out[types]["batch_sharded"], (types, out[types])
