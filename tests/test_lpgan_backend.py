"""Two real server processes honour the experiment's ``local_backend``: the "jax" run over TCP ends
with exactly the generator and losses of the default numpy run in this process."""

import json

import numpy as np
import pytest
from conftest import lpgan_server, stop_lpgan_servers

EXPERIMENT = """
from egan_jax.lpgan.model import ModelConfig
from egan_jax.lpgan.train import LpganConfig


def get_config():
    return LpganConfig(
        model=ModelConfig(latent_dim=4, width=2, image_size=8, channels=1),
        steps=2, batch_size=2, log_every=1, local_backend="jax",
    )
"""


@pytest.mark.slow  # two server processes compile the jitted ops: ~15 s on 2 loaded cores
def test_servers_on_the_jax_backend_train_bit_identical_to_numpy(tmp_path):
    import dataclasses

    from egan_jax.lpgan import owner
    from egan_jax.lpgan.server import free_port
    from egan_jax.mpc import get_local_backend

    experiment = tmp_path / "tiny_jax.py"
    experiment.write_text(EXPERIMENT)
    config = owner.load_experiment(experiment)
    assert config.local_backend == "jax"
    ports = [free_port(), free_port(), free_port()]
    addresses = [("127.0.0.1", ports[0]), ("127.0.0.1", ports[1])]
    servers = [lpgan_server(p, ports[p], ports[2], tmp_path / f"s{p}") for p in (0, 1)]
    try:
        result = owner.train(
            config, tmp_path / "owner", addresses, owner_seed=3, log=lambda m: None
        )
    finally:
        stop_lpgan_servers(addresses, servers)
    for p, s in enumerate(servers):
        out = s.stdout.read()
        assert f"server {p}: element-wise ring arithmetic in jax" in out, out

    numpy_config = dataclasses.replace(config, local_backend="numpy")
    generator, records = owner.train_local(numpy_config, owner_seed=3)
    assert get_local_backend() == "numpy"
    for k, v in generator.items():
        np.testing.assert_array_equal(result["generator"][k], v, err_msg=k)
    lines = [json.loads(x) for x in (tmp_path / "owner" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2]
    for got, want in zip(lines, records, strict=True):
        assert (got["d_loss"], got["g_loss"]) == (want["d_loss"], want["g_loss"])
