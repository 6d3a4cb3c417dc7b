"""The data owner: shares the data, drives the two servers, runs the dealer, and reconstructs only
what it is entitled to (per-step logits for its loss monitor, the final generator, synthesised
images).

The dealer (correlated randomness, input-independent) lives in the owner's process and answers the
servers' pulls while a step runs; its cost is reported as the offline phase. The owner's share
randomness and the dealer's seed are fresh OS randomness unless a secret ``owner_seed`` is passed
(for reproducible tests): the configuration's public ``seed`` only fixes the data order, the initial
weights and the latents, never a share, since both servers know it.

Randomness is drawn per use (`OwnerRandomness`): the initial shares, each training step's input
shares and dealer material, each sampling call, from independent streams named by the use and a
digest of the configuration. Recovery after a server dies (even mid-step): both servers reload their
last common share checkpoint and the owner replays the steps after it. With a fixed ``owner_seed`` a
replayed step gets the very same shares and dealer material as the first try, so the servers' views
repeat exactly (nothing new to learn) and the result is bit-identical to an uninterrupted run; with
fresh randomness (the default) each owner session draws new streams, so a replay is a fresh,
independent execution of the same step (views again independent of the secrets) and the result equals
an uninterrupted run up to the fixed-point truncation noise (±1 in the last bit per product).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import threading
import time
from pathlib import Path

import numpy as np

from egan_jax.errors import ConfigError
from egan_jax.lpgan.server import (
    config_to_json,
    key_from_json,
    recv_command,
    send_command,
)
from egan_jax.lpgan.train import (
    LpganConfig,
    decode_params,
    encode_state,
    initial_params,
    latents,
    logit_losses,
    share_state,
    state_names,
)
from egan_jax.mpc import ring
from egan_jax.mpc.channel import ChannelError, TcpEndpoint
from egan_jax.mpc.dealer import Dealer


def load_experiment(path: str | Path, *, steps: int | None = None) -> LpganConfig:
    """An experiment file's ``get_config()`` (an `LpganConfig`), ``steps`` overriding its count."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"lpgan_experiment_{path.stem}", path)
    if spec is None or not path.is_file():
        raise ConfigError(
            f"experiment file {path} not found; pass e.g. experiments/lpgan_digits.py"
        )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    if not isinstance(config, LpganConfig):
        raise ConfigError(f"{path}: get_config() must return an LpganConfig")
    if steps is not None:
        config = dataclasses.replace(config, steps=steps)
    return config


# fields that change no step's data (the schedule, logging, which code does the local arithmetic)
_SCHEDULE_FIELDS = ("steps", "checkpoint_every", "log_every", "num_samples", "local_backend")


class OwnerRandomness:
    """The owner's secret randomness: one independent stream per use (label), derived from a base
    seed (``owner_seed``, or 32 fresh OS bytes per instance) and a digest of the public config, so a
    seed reused with another configuration never repeats a stream."""

    def __init__(self, config: LpganConfig, owner_seed: bytes | int | None = None):
        if owner_seed is None:
            raw = os.urandom(32)
        else:
            raw = owner_seed if isinstance(owner_seed, bytes) else str(owner_seed).encode()
        # these may change on resume (or between runs) without changing any step's data
        public = {k: v for k, v in config_to_json(config).items() if k not in _SCHEDULE_FIELDS}
        digest = hashlib.sha256(json.dumps(public, sort_keys=True).encode())
        self._base = hashlib.sha256(b"owner|" + raw + b"|" + digest.digest()).digest()

    def __repr__(self) -> str:
        return "OwnerRandomness(<secret seed>)"

    def _seed(self, kind: str, label: str) -> bytes:
        return hashlib.sha256(self._base + f"|{kind}|{label}".encode()).digest()

    def shares(self, label: str) -> ring.Prg:
        return ring.Prg(self._seed("shares", label), domain=b"owner")

    def dealer(self, label: str) -> Dealer:
        return Dealer(self._seed("dealer", label), record_plan=False)


def _connect(host: str, port: int, timeout: float, wait: float = 120.0) -> TcpEndpoint:
    """Connect to a server, waiting up to ``wait`` seconds for it to start listening."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return TcpEndpoint.connect(host, port, timeout=timeout)
        except ChannelError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


class Servers:
    """The owner's connections to S0 and S1, and the dealer that serves them."""

    def __init__(self, addresses, randomness: OwnerRandomness, *, timeout: float = 600.0):
        if len(addresses) != 2:
            raise ConfigError(f"need two server addresses (S0, S1), got {addresses}")
        self.ends = [_connect(h, int(p), timeout) for h, p in addresses]
        self.randomness = randomness
        self.use("setup")

    def use(self, label: str) -> None:
        """Draw the next shares and dealer material from the streams of ``label``."""
        self.dealer = self.randomness.dealer(label)
        self.prg = self.randomness.shares(label)

    def close(self) -> None:
        for end in self.ends:
            end.close()

    def call(self, command: str, meta: dict, arrays=((), ())) -> list[tuple[dict, list]]:
        """Send a command to both servers, serve their dealer pulls, return both replies."""
        replies: list = [None, None]
        errors: list = [None, None]

        def talk(pid: int) -> None:
            end = self.ends[pid]
            try:
                send_command(end, command, meta, arrays[pid])
                while True:
                    reply, reply_meta, reply_arrays = recv_command(end)
                    if reply != "dealer":
                        break
                    half = self.dealer.request(pid, key_from_json(reply_meta))
                    send_command(end, "material", None, half)
                replies[pid] = (reply_meta, reply_arrays)
            except BaseException as err:  # re-raised below
                errors[pid] = err
                end.close()

        threads = [threading.Thread(target=talk, args=(p,)) for p in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for err in errors:
            if err is not None:
                raise err
        return replies

    def share(self, *values: np.ndarray) -> tuple[list, list]:
        halves = [ring.share(ring.encode(v), self.prg) for v in values]
        return [h[0] for h in halves], [h[1] for h in halves]


def _start(servers: Servers, config: LpganConfig, *, resume: bool, log) -> int:
    replies = servers.call("setup", {"config": config_to_json(config)})
    common = sorted(set(replies[0][0]["steps"]) & set(replies[1][0]["steps"]))
    if resume and common:
        step = common[-1]
        servers.call("resume", {"step": step})
        log(f"resumed both servers from their share checkpoints at step {step}")
        return step
    state = encode_state(config, initial_params(config))
    names = state_names(config)
    servers.use("init")
    s0, s1 = share_state(state, servers.prg)
    servers.call("init", {}, ([s0[k] for k in names], [s1[k] for k in names]))
    return 0


def train(
    config: LpganConfig,
    workdir: str | Path,
    addresses,
    *,
    owner_seed: bytes | int | None = None,
    resume: bool = True,
    log=print,
) -> dict:
    """Drive ``config.steps`` secure steps; write metrics.jsonl and generator.npz to ``workdir``."""
    from egan_jax.data import batch_at, load_images

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    images = load_images(
        config.dataset, image_size=config.model.image_size, channels=config.model.channels
    )
    servers = Servers(addresses, OwnerRandomness(config, owner_seed))
    try:
        step = _start(servers, config, resume=resume, log=log)
        with open(workdir / "metrics.jsonl", "a") as metrics:
            while step < config.steps:
                real = batch_at(images, step, batch_size=config.batch_size, seed=config.seed)
                z_d, z_g = latents(config, step)
                start = time.perf_counter()
                servers.use(f"step {step}")
                replies = servers.call("train", {"step": step}, servers.share(real, z_d, z_g))
                seconds = time.perf_counter() - start
                logits = [
                    ring.decode(ring.reconstruct(a, b))
                    for a, b in zip(replies[0][1], replies[1][1], strict=True)
                ]
                step += 1
                record = {"step": step, "seconds": seconds, **logit_losses(config.loss, *logits)}
                for key in ("online_seconds", "offline_seconds", "online_bytes_sent", "rounds"):
                    record[key] = max(r[0][key] for r in replies)
                record["offline_bytes"] = sum(r[0]["offline_bytes"] for r in replies)
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()
                if step % config.log_every == 0 or step == config.steps:
                    log(
                        f"step {step}: d_loss {record['d_loss']:.4f} g_loss {record['g_loss']:.4f}"
                        f" ({seconds:.1f} s, {record['online_bytes_sent'] / 1e6:.1f} MB online "
                        f"per server, {record['rounds']} rounds)"
                    )
        generator = export_generator(servers, config)
        np.savez(workdir / "generator.npz", **generator)
        return {"step": step, "generator": generator}
    finally:
        servers.close()


def export_generator(servers: Servers, config: LpganConfig) -> dict[str, np.ndarray]:
    """Reconstruct the trained generator (the owner's right; the servers never see it)."""
    replies = servers.call("export", {})
    names = replies[0][0]["names"]
    if names != replies[1][0]["names"]:
        raise ChannelError("the servers exported different generator parameters")
    state = {
        k: ring.reconstruct(a, b)
        for k, a, b in zip(names, replies[0][1], replies[1][1], strict=True)
    }
    return decode_params(config, state, "g")


def sample(
    config: LpganConfig,
    addresses,
    *,
    n: int,
    seed: int = 0,
    owner_seed: bytes | int | None = None,
    log=print,
) -> np.ndarray:
    """Secure synthesis: the shared generator runs on shared latents; only the owner reconstructs
    the images ([n, H, W, C] in [-1, 1]). Uses the servers' latest common checkpoint."""
    servers = Servers(addresses, OwnerRandomness(config, owner_seed))
    try:
        step = _start(servers, config, resume=True, log=log)
        if step == 0:
            log("no trained checkpoint on the servers: sampling the initial generator")
        z = np.random.default_rng([seed, 2]).normal(size=(n, config.model.latent_dim))
        servers.use(f"sample {step} {seed} {n}")
        replies = servers.call("sample", {}, servers.share(z))
        return ring.decode(ring.reconstruct(replies[0][1][0], replies[1][1][0]))
    finally:
        servers.close()


def shutdown(addresses) -> None:
    """Ask both servers to exit."""
    for host, port in addresses:
        end = _connect(host, int(port), 30.0, wait=10.0)
        try:
            send_command(end, "shutdown")
            recv_command(end)
        finally:
            end.close()


def train_local(
    config: LpganConfig, *, owner_seed: bytes | int = 0, steps: int | None = None
) -> tuple[dict[str, np.ndarray], list[dict]]:
    """The same secure training with both servers as threads of this process (in-process channel,
    dealer in this process): for experiments and benchmarks. Returns the reconstructed generator and
    per-step records (losses from the reconstructed logits, online bytes and rounds per party)."""
    from egan_jax.data import batch_at, load_images
    from egan_jax.lpgan.train import secure_train_step
    from egan_jax.mpc.protocols import run_two_party

    steps = config.steps if steps is None else steps
    images = load_images(
        config.dataset, image_size=config.model.image_size, channels=config.model.channels
    )
    randomness = OwnerRandomness(config, owner_seed)
    s0, s1 = share_state(encode_state(config, initial_params(config)), randomness.shares("init"))
    inputs: tuple[list, list] = ([], [])
    for step in range(steps):
        real = batch_at(images, step, batch_size=config.batch_size, seed=config.seed)
        prg = randomness.shares(f"step {step}")  # the same streams as `train` over TCP
        for value in (real, *latents(config, step)):
            a, b = ring.share(ring.encode(value), prg)
            inputs[0].append(a)
            inputs[1].append(b)
    dealers = [randomness.dealer(f"step {step}") for step in range(steps)]

    def run(party, state, flat):
        logits, costs = [], []
        for step in range(steps):
            before, start = party.channel.stats.copy(), time.perf_counter()
            step_party = dataclasses.replace(party, dealer=dealers[step].endpoint(party.id))
            batch = flat[3 * step : 3 * step + 3]
            state, out = secure_train_step(step_party, config, state, *batch, step=step)
            sent = party.channel.stats - before
            costs.append((time.perf_counter() - start, sent.bytes_sent, sent.rounds))
            logits.append(out)
        return state, logits, costs

    setup = randomness.dealer("setup")
    with ring.local_backend(config.local_backend):
        result = run_two_party(run, (s0, inputs[0]), (s1, inputs[1]), dealer=setup, timeout=3600)
    (st0, lg0, c0), (st1, lg1, _) = result.outputs
    state = {k: ring.reconstruct(st0[k], st1[k]) for k in st0}
    records = []
    for step, (a, b, cost) in enumerate(zip(lg0, lg1, c0, strict=True)):
        logits = [ring.decode(ring.reconstruct(a[k], b[k])) for k in ("real", "fake", "generator")]
        records.append(
            {
                "step": step + 1,
                "seconds": cost[0],
                "bytes_sent": cost[1],
                "rounds": cost[2],
                **logit_losses(config.loss, *logits),
            }
        )
    return decode_params(config, state, "g"), records
