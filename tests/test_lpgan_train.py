"""Secure training step and synthesis against the plaintext step on the same weights and batch."""

import dataclasses
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import lpgan_server, stop_lpgan_servers

from egan_jax.errors import ConfigError
from egan_jax.lpgan import train as T
from egan_jax.lpgan.model import ModelConfig, plain_forward, secure_forward
from egan_jax.mpc import ring
from egan_jax.mpc.dealer import Dealer
from egan_jax.mpc.protocols import run_two_party

TINY = ModelConfig(latent_dim=8, width=4, image_size=16, channels=1)


def _config(**kw):
    return T.LpganConfig(model=TINY, batch_size=4, **kw)


def _inputs(config, seed=0):
    rng = np.random.default_rng(seed)
    real = np.tanh(rng.normal(size=(config.batch_size, 16, 16, 1)))
    z_d, z_g = T.latents(config, 0)
    return real, z_d, z_g


def _fixed(x, bits=ring.FRAC_BITS):
    return ring.decode(ring.encode(x, bits), bits)


def _secure_step(config, params, real, z_d, z_g, seed=0):
    prg = ring.Prg(seed, domain=b"owner")
    s0, s1 = T.share_state(T.encode_state(config, params), prg)
    data = [ring.share(ring.encode(v), prg) for v in (real, z_d, z_g)]
    run = run_two_party(
        lambda party, st, *xs: T.secure_train_step(party, config, st, *xs),
        (s0, *(d[0] for d in data)),
        (s1, *(d[1] for d in data)),
        dealer=Dealer(seed),
    )
    (st0, out0), (st1, out1) = run.outputs
    state = {k: ring.reconstruct(st0[k], st1[k]) for k in st0}
    logits = {k: ring.decode(ring.reconstruct(out0[k], out1[k])) for k in out0}
    return state, logits, run


def _plain_step(config, params, real, z_d, z_g):
    with jax.enable_x64(True):
        step = jax.jit(T.make_plain_step(config))
        p = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), params)
        momenta = jax.tree.map(jnp.zeros_like, p)
        new, _, logits = step(p, momenta, *(jnp.asarray(v) for v in (real, z_d, z_g)))
        return jax.tree.map(np.asarray, new), jax.tree.map(np.asarray, logits)


@pytest.mark.parametrize("loss", T.LOSSES)
def test_secure_step_matches_the_plaintext_step(loss):
    config = _config(loss=loss, learning_rate=0.1, momentum=0.5)
    params = T.initial_params(config)
    real, z_d, z_g = (_fixed(v) for v in _inputs(config))
    state, logits, run = _secure_step(config, params, real, z_d, z_g)
    # the parties start from the weights rounded to the master format
    bits = ring.FRAC_BITS + T.MASTER_EXTRA_BITS
    start = jax.tree.map(lambda v: _fixed(v, bits), params)
    new_plain, logits_plain = _plain_step(config, start, real, z_d, z_g)
    for k in ("real", "fake", "generator"):
        assert np.max(np.abs(logits[k] - logits_plain[k])) < 2e-3, k
    for net in ("g", "d"):
        secure = T.decode_params(config, state, net)
        moved = max(np.max(np.abs(new_plain[net][k] - start[net][k])) for k in secure)
        assert moved > 1e-3  # the step did update the weights
        for k, value in secure.items():
            # fixed-point gradients: within 5% of the largest step (ReLU bits near 0 may flip)
            err = np.max(np.abs(value - new_plain[net][k]))
            assert err < 1e-4 + 0.05 * moved, (net, k, err, moved)
    cost = run.cost()
    assert cost["bytes_total"] > 0 and cost["rounds"] > 50


def test_secure_generator_layer_outputs_match_plaintext():
    config = _config()
    params = T.initial_params(config)["g"]
    layers = T.networks(config)["g"]
    z = _fixed(T.latents(config, 3)[0])
    prg = ring.Prg(5, domain=b"owner")
    names = sorted(params)
    shared = [ring.share(ring.encode(params[k]), prg) for k in names]
    z0, z1 = ring.share(ring.encode(z), prg)

    def per_layer(party, z, *ps):
        p = dict(zip(names, ps, strict=True))
        outs = []
        for i in range(len(layers)):
            z, _ = secure_forward(party, layers[i : i + 1], _shift(p, i), z)
            outs.append(z)
        return tuple(outs)

    run = run_two_party(
        per_layer, (z0, *(s[0] for s in shared)), (z1, *(s[1] for s in shared)), dealer=Dealer(1)
    )
    with jax.enable_x64(True):
        fixed_params = {k: _fixed(v) for k, v in params.items()}
        _, plain_outs = plain_forward(layers, fixed_params, jnp.asarray(z), collect=True)
    for i, (a, b, ref) in enumerate(zip(*run.outputs, plain_outs, strict=True)):
        err = np.max(np.abs(ring.decode(ring.reconstruct(a, b)) - np.asarray(ref)))
        assert err < 2e-3, (i, type(layers[i]).__name__, err)


def _shift(params, i):
    """Parameters of layer i renamed as layer 0's (to run one layer as a one-layer list)."""
    return {f"0.{k.split('.', 1)[1]}": v for k, v in params.items() if k.startswith(f"{i}.")}


def test_config_errors_name_the_problem():
    with pytest.raises(ConfigError, match="loss"):
        T.LpganConfig(loss="wasserstein")
    with pytest.raises(ConfigError, match="image_size"):
        ModelConfig(image_size=20)


# ---- real processes ---------------------------------------------------------------------------

TINY_EXPERIMENT = """
from egan_jax.lpgan.model import ModelConfig
from egan_jax.lpgan.train import LpganConfig


def get_config():
    return LpganConfig(
        model=ModelConfig(latent_dim=8, width=4, image_size=16, channels=1),
        steps=2, batch_size=4, log_every=1,
    )
"""


@pytest.mark.slow
def test_two_server_processes_train_resume_after_a_kill_and_sample(tmp_path):
    import socket

    from egan_jax.lpgan import owner
    from egan_jax.lpgan.server import free_port, load_checkpoint

    experiment = tmp_path / "tiny.py"
    experiment.write_text(TINY_EXPERIMENT)
    config = owner.load_experiment(experiment)
    ports = [free_port(), free_port(), free_port()]
    addresses = [("127.0.0.1", ports[0]), ("127.0.0.1", ports[1])]
    servers = [lpgan_server(p, ports[p], ports[2], tmp_path / f"s{p}") for p in (0, 1)]
    try:
        result = owner.train(config, tmp_path / "owner", addresses, log=lambda m: None)
        assert result["step"] == 2
        lines = (tmp_path / "owner" / "metrics.jsonl").read_text().splitlines()
        assert len(lines) == 2 and all(np.isfinite(json.loads(line)["d_loss"]) for line in lines)

        # each server holds shares only: one alone is far from the weights, both add up to them
        names = T.state_names(config)
        halves = [load_checkpoint(tmp_path / f"s{p}" / f"party{p}", 2, names) for p in (0, 1)]
        key = "g.master.0.w"
        both = ring.decode(ring.reconstruct(halves[0][key], halves[1][key]), 24)
        np.testing.assert_array_equal(both, result["generator"]["0.w"])
        assert np.max(np.abs(ring.decode(halves[0][key], 24))) > 1e6

        # a malformed message to a server is a clear error there; the server keeps serving
        with socket.create_connection(addresses[0]) as raw:
            raw.sendall(b"JUNK" + bytes(12))
            raw.settimeout(30)
            assert raw.recv(1) == b""  # the server dropped the session

        servers[1].kill()  # a server dies; it restarts from its share checkpoint
        servers[1].wait()
        servers[1] = lpgan_server(1, ports[1], ports[2], tmp_path / "s1")
        config3 = owner.load_experiment(experiment, steps=3)
        logs = []
        result = owner.train(config3, tmp_path / "owner", addresses, log=logs.append)
        assert result["step"] == 3 and any("resumed" in m and "step 2" in m for m in logs)

        images = owner.sample(config3, addresses, n=4, log=lambda m: None)
        assert images.shape == (4, 16, 16, 1) and np.all(np.abs(images) <= 1.0 + 1e-3)
        assert np.std(images) > 1e-3
    finally:
        stop_lpgan_servers(addresses, servers)
    out = servers[0].stdout.read()
    assert "malformed frame" in out, out


def test_dealer_keys_survive_the_wire_and_malformed_commands_are_refused():
    from egan_jax.lpgan.server import key_from_json, key_to_json, recv_command, send_command
    from egan_jax.mpc.channel import ChannelError, local_pair
    from egan_jax.mpc.ring import Bilinear

    keys = [
        ("beaver", Bilinear("conv2d_kernel_grad", (2, 2), ((1, 1), (1, 1)), None, (4, 4)),
         (2, 8, 8, 3), (2, 4, 4, 5)),
        ("beaver", Bilinear("conv2d", (1, 1), "SAME"), (1, 4, 4, 2), (3, 3, 2, 2)),
        ("dabit", (7, 3)),
    ]  # fmt: skip
    for key in keys:
        assert key_from_json(json.loads(json.dumps(key_to_json(key)))) == key
    a, b = local_pair(timeout=5)
    send_command(a, "train", {"step": 3}, [np.arange(3, dtype=np.uint64)])
    command, meta, arrays = recv_command(b)
    assert (command, meta["step"], arrays[0].tolist()) == ("train", 3, [0, 1, 2])
    a.send(np.frombuffer(b"{not json", np.uint8))
    with pytest.raises(ChannelError, match="malformed command header"):
        recv_command(b)
    a.send(np.arange(2, dtype=np.uint64))
    with pytest.raises(ChannelError, match="uint8 JSON header"):
        recv_command(b)


@pytest.mark.slow
def test_a_server_killed_mid_step_resumes_and_finishes_bit_identical(tmp_path, monkeypatch):
    """S1 is killed (SIGKILL) in the middle of step 2, while it waits for dealer material; it
    restarts from its share checkpoint, the owner replays the step, and the run ends with exactly
    the generator and losses of an uninterrupted run. The replayed step hands the servers the very
    same dealer material (and input shares) as the aborted try, so their views only repeat."""
    from egan_jax.lpgan import owner
    from egan_jax.lpgan.server import free_port
    from egan_jax.mpc.channel import ChannelError

    experiment = tmp_path / "tiny.py"
    experiment.write_text(TINY_EXPERIMENT)
    config = owner.load_experiment(experiment, steps=3)
    ports = [free_port(), free_port(), free_port()]
    addresses = [("127.0.0.1", ports[0]), ("127.0.0.1", ports[1])]
    servers = [lpgan_server(p, ports[p], ports[2], tmp_path / f"s{p}") for p in (0, 1)]
    handed: dict[str, list] = {}  # dealer items per try of "step 1": (key, digest of both halves)
    kill_at = 40  # dealer requests into step 2 (of ~500 per step)

    class Recording(owner.OwnerRandomness):
        def dealer(self, label):
            dealer = super().dealer(label)
            if label != "step 1":
                return dealer
            items = handed.setdefault(f"try {len(handed)}", [])
            request = dealer.request

            def spy(pid, key):
                half = request(pid, key)
                items.append((pid, repr(key), [np.asarray(h).tobytes() for h in half]))
                if len(handed) == 1 and len(items) == kill_at:
                    servers[1].kill()  # mid-step: S1 holds a half-done step in memory
                    servers[1].wait()
                return half

            dealer.request = spy
            return dealer

    monkeypatch.setattr(owner, "OwnerRandomness", Recording)
    try:
        with pytest.raises(ChannelError):
            owner.train(config, tmp_path / "owner", addresses, owner_seed=7, log=lambda m: None)
        assert servers[0].poll() is None  # S0 survives the peer's death and keeps serving
        servers[1] = lpgan_server(1, ports[1], ports[2], tmp_path / "s1")
        logs = []
        result = owner.train(config, tmp_path / "owner", addresses, owner_seed=7, log=logs.append)
    finally:
        stop_lpgan_servers(addresses, servers)
    assert result["step"] == 3 and any("resumed" in m and "step 1" in m for m in logs), logs

    # the same run without the kill, both servers in this process, same owner seed
    monkeypatch.undo()
    generator, records = owner.train_local(config, owner_seed=7)
    for k, v in generator.items():
        np.testing.assert_array_equal(result["generator"][k], v, err_msg=k)
    lines = [json.loads(x) for x in (tmp_path / "owner" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3]
    for got, want in zip(lines, records, strict=True):
        assert (got["d_loss"], got["g_loss"]) == (want["d_loss"], want["g_loss"])

    # no leak from the replay: the aborted try's material is a prefix of the replay's, item by item
    aborted, replay = handed["try 0"], handed["try 1"]
    # the dealer serves both servers concurrently: S0 may fetch an item or two after the kill
    assert kill_at <= len(aborted) < len(replay)
    by_party = [[i for i in items if i[0] == p] for items in (aborted, replay) for p in (0, 1)]
    for first, second in ((by_party[0], by_party[2]), (by_party[1], by_party[3])):
        assert first == second[: len(first)]
    # only whole share checkpoints on disk, no half-written file from the killed step
    for p in (0, 1):
        files = [f.name for f in (tmp_path / f"s{p}" / f"party{p}").iterdir()]
        assert files and all(re.fullmatch(r"step_\d{6}\.npz", f) for f in files), files


# ---- learning-rate schedules ------------------------------------------------------------------


def test_learning_rate_schedules_decay_from_the_base_rate_and_never_reach_zero():
    for schedule in ("linear", "cosine"):
        config = _config(learning_rate=0.02, lr_schedule=schedule, steps=300)
        rates = [T.learning_rate_at(config, k) for k in range(300)]
        assert rates[0] == 0.02 and 0 < rates[-1] < 0.02 * 1e-2
        assert all(a > b for a, b in zip(rates[:-1], rates[1:], strict=True)), schedule
    assert T.learning_rate_at(_config(learning_rate=0.03, steps=5), 4) == 0.03
    linear = _config(learning_rate=0.02, lr_schedule="linear", steps=4)
    assert [T.learning_rate_at(linear, k) for k in range(4)] == [0.02, 0.015, 0.01, 0.005]
    with pytest.raises(ConfigError, match="lr_schedule"):
        _config(lr_schedule="step")
    for bad in ({"momentum": 1.0}, {"momentum": -1.0}, {"d_lr_scale": 0.0}):
        with pytest.raises(ConfigError, match="momentum < 1.*d_lr_scale > 0"):
            _config(**bad)


def test_a_small_public_rate_keeps_its_significant_bits():
    # the base rate encodes as before (so constant-rate runs repeat bit for bit) ...
    assert T._encode_rate(0.02, 16) == (int(ring.encode(0.02)), 0)
    # ... and a decayed rate far below 2^-16 keeps 11 significant bits through extra fraction bits
    for lr in (0.3, 0.02, 6.7e-5, 5.5e-7):
        rate, extra = T._encode_rate(lr, 16)
        assert 2**10 <= rate < 2**11 or (extra == 0 and rate >= 2**10)
        assert abs(rate / 2.0 ** (16 + extra) / lr - 1) < 2**-10


@pytest.mark.parametrize("step, d_lr_scale", [(0, 1.0), (9, 0.25)])
def test_secure_step_follows_the_scheduled_rate(step, d_lr_scale):
    # the last of 10 linearly decayed steps runs at a tenth of the base rate (the discriminator at
    # a quarter of that): the secure update must follow the plaintext update at those rates (the
    # base rate would move 10× or 40× too far)
    config = _config(
        learning_rate=0.1, momentum=0.5, lr_schedule="linear", steps=10, d_lr_scale=d_lr_scale
    )
    params = T.initial_params(config)
    real, z_d, z_g = (_fixed(v) for v in _inputs(config))
    prg = ring.Prg(0, domain=b"owner")
    s0, s1 = T.share_state(T.encode_state(config, params), prg)
    data = [ring.share(ring.encode(v), prg) for v in (real, z_d, z_g)]
    run = run_two_party(
        lambda party, st, *xs: T.secure_train_step(party, config, st, *xs, step=step),
        (s0, *(d[0] for d in data)),
        (s1, *(d[1] for d in data)),
        dealer=Dealer(0),
    )
    (st0, _), (st1, _) = run.outputs
    state = {k: ring.reconstruct(st0[k], st1[k]) for k in st0}
    start = jax.tree.map(lambda v: _fixed(v, ring.FRAC_BITS + T.MASTER_EXTRA_BITS), params)
    lr = T.learning_rate_at(config, step)
    with jax.enable_x64(True):
        new_plain, _, _ = jax.jit(T.make_plain_step(config))(
            jax.tree.map(jnp.asarray, start),
            jax.tree.map(lambda v: jnp.zeros_like(jnp.asarray(v)), start),
            *(jnp.asarray(v) for v in (real, z_d, z_g)),
            lr,
        )
    for net in ("g", "d"):
        secure = T.decode_params(config, state, net)
        moved = max(np.max(np.abs(new_plain[net][k] - start[net][k])) for k in secure)
        assert moved > 1e-5  # the step did update the weights
        for k, value in secure.items():
            err = np.max(np.abs(value - np.asarray(new_plain[net][k])))
            assert err < 2e-6 + 0.05 * moved, (net, k, step, err, moved)


@pytest.mark.slow
def test_secure_update_with_negative_momentum_matches_plaintext():
    # m ← μ·m + g with μ < 0 (negative momentum) on shares: the public −0.5 is a ring constant
    from egan_jax.lpgan import trace

    config = _config(learning_rate=0.02, momentum=-0.5, loss_scale_bits=10)
    params = T.initial_params(config)
    momenta = jax.tree.map(lambda v: np.random.default_rng(1).normal(size=np.shape(v)), params)
    real, z_d, z_g = (_fixed(v) for v in _inputs(config))
    plain, _ = trace.plain_trace(config, params, momenta, real, z_d, z_g)
    secure = trace.secure_trace(config, params, momenta, real, z_d, z_g)
    for net in ("g", "d"):
        names = [k for k in plain if k.startswith(f"update.{net}.")]
        s = np.concatenate([np.ravel(secure[k]) for k in names])
        p = np.concatenate([np.ravel(plain[k]) for k in names])
        assert np.linalg.norm(s - p) < 0.02 * np.linalg.norm(p), net
        # the old momentum dominates these updates: with +0.5 they would point the other way
        assert np.dot(s, p) > 0.9 * np.dot(p, p), net


def test_the_digits_experiments_load_and_differ_only_in_momentum_and_steps():
    from egan_jax.lpgan.owner import load_experiment

    default = load_experiment("experiments/lpgan_digits.py")
    stable = load_experiment("experiments/lpgan_digits_stable.py")
    positive = load_experiment("experiments/lpgan_digits_momentum.py")
    assert (default.momentum, default.steps) == (-0.5, 600)
    assert dataclasses.replace(default, steps=300) == stable
    assert dataclasses.replace(default, momentum=0.5, steps=300) == positive
