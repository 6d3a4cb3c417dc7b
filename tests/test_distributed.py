"""Two real processes on localhost train through `jax.distributed` (CPU collectives: gloo).

Run as a script (`python tests/test_distributed.py PORT PROCESS_ID WORKDIR OUT.npz`) it is one of
the two workers: it joins the run, trains the tiny DCGAN on its half of each global batch and saves
its copy of the parameters and its final metrics.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, subprocess_env, tiny_config

STEPS = 3


def distributed_config(port: int, process_id: int):
    return tiny_config(
        f"train.steps={STEPS}",
        "checkpoint.every=0",
        f"distributed.coordinator_address=127.0.0.1:{port}",
        "distributed.num_processes=2",
        f"distributed.process_id={process_id}",
    )


def params_of(models) -> dict[str, np.ndarray]:
    from flax import nnx

    from egan_jax import sharding

    flat = nnx.to_flat_state(nnx.state(models, nnx.Param))
    return {"/".join(map(str, path)): sharding.to_host(value[...]) for path, value in flat}


def worker(port: int, process_id: int, workdir: str, out: str) -> None:
    import jax

    from egan_jax.train import train_and_evaluate

    result = train_and_evaluate(distributed_config(port, process_id), workdir)
    assert jax.process_count() == 2 and jax.device_count() == 2
    info = {
        "process_index": jax.process_index(),
        "local_devices": jax.local_device_count(),
        "metrics": result.metrics,
    }
    np.savez(out, info=json.dumps(info), **params_of(result.models))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_in_lockstep(tmp_path):
    from egan_jax.logging_utils import read_metrics
    from egan_jax.train import load_trained, train_and_evaluate

    port, workdir = free_port(), tmp_path / "distributed"
    outputs = [tmp_path / f"process{i}.npz" for i in range(2)]
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, str(port), str(i), str(workdir), str(outputs[i])],
            env=subprocess_env(),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    logs = []
    try:
        for process in workers:
            logs.append(process.communicate(timeout=480)[0])
    finally:
        for process in workers:
            process.kill()
    for i, process in enumerate(workers):
        assert process.returncode == 0, f"process {i} failed:\n{logs[i][-3000:]}"

    results = [np.load(path) for path in outputs]
    infos = [json.loads(str(result["info"])) for result in results]
    assert [info["process_index"] for info in infos] == [0, 1]
    assert all(info["local_devices"] == 1 for info in infos)
    names = sorted(name for name in results[0].files if name != "info")
    assert len(names) > 10 and names == sorted(n for n in results[1].files if n != "info")
    # Lockstep: both processes hold bit-identical parameters and report identical losses.
    for name in names:
        np.testing.assert_array_equal(results[0][name], results[1][name], err_msg=name)
    assert infos[0]["metrics"] == infos[1]["metrics"]

    # Only process 0 logs, each step once; the checkpoint both wrote restores to the same values.
    assert [record["step"] for record in read_metrics(workdir)] == [1, 2, 3]
    _, restored, step = load_trained(workdir)
    assert step == STEPS
    for name, value in params_of(restored).items():
        np.testing.assert_array_equal(value, results[0][name], err_msg=name)

    # The two halves of each global batch make the global batch of a one-process run: the same
    # losses and nearly the same parameters (the tolerances of tests/test_sharding.py).
    single = train_and_evaluate(tiny_config(f"train.steps={STEPS}"), tmp_path / "single")
    np.testing.assert_allclose(
        [infos[0]["metrics"][k] for k in ("d_loss", "g_loss")],
        [single.metrics[k] for k in ("d_loss", "g_loss")],
        rtol=0,
        atol=2e-4,
    )
    single_params = params_of(single.models)
    worst = max(float(np.max(np.abs(single_params[n] - results[0][n]))) for n in names)
    assert worst < 2 * STEPS * 2e-4, worst


if __name__ == "__main__":
    worker(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
