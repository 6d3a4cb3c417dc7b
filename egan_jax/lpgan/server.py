"""A server process (S0 or S1): one TCP channel to the peer server, one to the data owner.

Topology: S0 listens for S1 on ``peer_port``; S1 connects to it; each server then listens on ``port``
for the data owner. The owner's connection carries commands, the owner's shares, and the dealer's
correlated randomness (the dealer runs inside the owner's process; each server pulls its half of
every item on demand, and the time and bytes of those pulls are the offline cost, counted apart from
the online traffic between the servers).

Messages on the owner channel are framed like every other message (`egan_mpc.channel`): a JSON header
(command and public metadata) as a uint8 array, then arrays. A server keeps its state shares on disk
after every step (``party<i>/step_<k>.npz``, written atomically, the last three kept), so a server
that is killed restarts from its last checkpoint: ``resume`` picks the latest step both servers have.
Neither server ever holds a plaintext value of the data, the weights or the outputs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from pathlib import Path

import numpy as np

from egan_jax.errors import CheckpointError, ConfigError
from egan_jax.lpgan.model import ModelConfig
from egan_jax.lpgan.train import LpganConfig, secure_generate, secure_train_step, state_names
from egan_jax.mpc import ring
from egan_jax.mpc.channel import ChannelError, Endpoint, TcpEndpoint, tcp_listener
from egan_jax.mpc.protocols import Party
from egan_jax.mpc.ring import Bilinear

KEEP_CHECKPOINTS = 3


# ---- wire helpers ----------------------------------------------------------------------------


def send_command(endpoint: Endpoint, command: str, meta: dict | None = None, arrays=()) -> None:
    header = json.dumps({"command": command, **(meta or {})}).encode()
    endpoint.send(np.frombuffer(header, np.uint8), *arrays)


def recv_command(endpoint: Endpoint) -> tuple[str, dict, list[np.ndarray]]:
    message = endpoint.recv()
    if not message or message[0].dtype != np.uint8:
        raise ChannelError("malformed command: the first array must be a uint8 JSON header")
    try:
        meta = json.loads(message[0].tobytes().decode())
        command = meta.pop("command")
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, AttributeError) as err:
        raise ChannelError(f"malformed command header: {err}") from None
    return command, meta, list(message[1:])


def config_to_json(config: LpganConfig) -> dict:
    return dataclasses.asdict(config)


def config_from_json(data: dict) -> LpganConfig:
    try:
        return LpganConfig(**{**data, "model": ModelConfig(**data["model"])})
    except (TypeError, KeyError) as err:
        raise ConfigError(f"malformed LP-GAN configuration from the owner: {err}") from None


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def key_to_json(key: tuple) -> dict:
    kind, *rest = key
    if kind == "beaver":
        op, x_shape, y_shape = rest
        return {"kind": kind, "op": dataclasses.asdict(op), "x": x_shape, "y": y_shape}
    return {"kind": kind, "shape": rest[0]}


def key_from_json(data: dict) -> tuple:
    if data["kind"] == "beaver":
        op = Bilinear(**{k: _tuples(v) for k, v in data["op"].items()})
        return ("beaver", op, _tuples(data["x"]), _tuples(data["y"]))
    return (data["kind"], _tuples(data["shape"]))


class RemoteDealer:
    """A server's dealer access: every request is a round trip to the owner's dealer, timed."""

    def __init__(self, control: Endpoint, party_id: int):
        self._control, self.party_id = control, party_id
        self.seconds, self.bytes = 0.0, 0

    def request(self, key: tuple) -> tuple[np.ndarray, ...]:
        start = time.perf_counter()
        before = self._control.stats.bytes_received
        send_command(self._control, "dealer", key_to_json(key))
        command, _, arrays = recv_command(self._control)
        if command != "material":
            raise ChannelError(f"expected dealer material from the owner, got {command!r}")
        self.seconds += time.perf_counter() - start
        self.bytes += self._control.stats.bytes_received - before
        return tuple(arrays)

    def beaver(self, op, x_shape, y_shape):
        return self.request(("beaver", op, tuple(x_shape), tuple(y_shape)))

    def square(self, shape):
        return self.request(("square", tuple(shape)))

    def and_triple(self, shape):
        return self.request(("and", tuple(shape)))

    def and_private(self, shape):
        return self.request(("and_private", tuple(shape)))

    def dabit(self, shape):
        return self.request(("dabit", tuple(shape)))

    def powers(self, shape):
        return self.request(("powers", tuple(shape)))

    def square_mul(self, x_shape, y_shape):
        return self.request(("square_mul", (tuple(x_shape), tuple(y_shape))))


# ---- checkpoints -----------------------------------------------------------------------------


def checkpoint_steps(directory: Path) -> list[int]:
    return sorted(int(p.stem.split("_")[1]) for p in directory.glob("step_*.npz"))


def save_checkpoint(directory: Path, step: int, state: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".step_{step:06d}.{os.getpid()}.tmp.npz"
    np.savez(tmp, **state)
    tmp.replace(directory / f"step_{step:06d}.npz")
    for old in checkpoint_steps(directory)[:-KEEP_CHECKPOINTS]:
        (directory / f"step_{old:06d}.npz").unlink(missing_ok=True)


def load_checkpoint(directory: Path, step: int, names: list[str]) -> dict:
    path = directory / f"step_{step:06d}.npz"
    try:
        with np.load(path) as data:
            state = {k: np.array(data[k], dtype=np.uint64) for k in names}
    except (OSError, KeyError, ValueError) as err:
        raise CheckpointError(
            f"cannot read share checkpoint {path}: {err}; delete it to fall back to an older one"
        ) from None
    return state


# ---- the server ------------------------------------------------------------------------------


def connect_peer(
    party_id: int, host: str, peer_port: int, timeout: float, listener: socket.socket | None
) -> TcpEndpoint:
    """S0 accepts S1 on its peer listener; S1 connects (retrying until S0 listens)."""
    if party_id == 0:
        return TcpEndpoint.accept(listener, timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return TcpEndpoint.connect(host, peer_port, timeout=timeout)
        except ChannelError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def serve(
    party_id: int,
    *,
    port: int,
    peer_port: int,
    workdir: str | os.PathLike,
    host: str = "127.0.0.1",
    timeout: float = 600.0,
    log=print,
) -> None:
    """Run server ``party_id`` until the owner sends ``shutdown``. Owner sessions come one after
    another on ``port``; each session's ``setup`` opens a fresh channel to the peer server, so a
    restarted peer joins the next session."""
    if party_id not in (0, 1):
        raise ConfigError(f"--party must be 0 or 1, got {party_id}")
    directory = Path(workdir) / f"party{party_id}"
    listener = tcp_listener(host, port)
    peer_listener = tcp_listener(host, peer_port) if party_id == 0 else None
    log(f"lpgan server {party_id}: owner port {listener.getsockname()[1]}, peer port {peer_port}")
    try:
        while True:
            owner = TcpEndpoint.accept(listener, timeout=None)
            session = _Session(party_id, owner, directory, log)
            try:
                if (
                    session.run(
                        lambda: connect_peer(party_id, host, peer_port, timeout, peer_listener)
                    )
                    == "shutdown"
                ):
                    return
            except (ChannelError, CheckpointError, ConfigError) as err:
                log(f"lpgan server {party_id}: owner session ended ({type(err).__name__}): {err}")
            finally:
                owner.close()
                if session.peer is not None:
                    session.peer.close()
    finally:
        listener.close()
        if peer_listener is not None:
            peer_listener.close()


class _Session:
    """One owner connection: commands until the owner leaves or asks to shut down."""

    def __init__(self, party_id: int, owner: Endpoint, directory: Path, log):
        self.party_id, self.owner, self.directory, self.log = party_id, owner, directory, log
        self.peer: Endpoint | None = None

    def run(self, connect) -> str:
        party_id, owner, directory, log = self.party_id, self.owner, self.directory, self.log
        config, state, step = None, None, -1
        dealer = RemoteDealer(owner, party_id)
        while True:
            command, meta, arrays = recv_command(owner)
            if command == "shutdown":
                send_command(owner, "ok")
                return "shutdown"
            if command == "setup":
                config = config_from_json(meta["config"])
                names = state_names(config)
                ring.set_local_backend(config.local_backend)  # this process is one party
                log(
                    f"lpgan server {party_id}: element-wise ring arithmetic in {config.local_backend}"
                )
                if self.peer is not None:
                    self.peer.close()
                self.peer = connect()
                send_command(owner, "ok", {"steps": checkpoint_steps(directory)})
                continue
            if config is None:
                raise ChannelError(f"command {command!r} before setup")
            if command == "init":
                if len(arrays) != len(names):
                    raise ChannelError(f"init sent {len(arrays)} arrays, expected {len(names)}")
                state, step = dict(zip(names, arrays, strict=True)), 0
                for old in checkpoint_steps(directory):  # a fresh run: drop the old run's shares
                    (directory / f"step_{old:06d}.npz").unlink()
                save_checkpoint(directory, 0, state)
                send_command(owner, "ok", {"step": step})
            elif command == "resume":
                step = int(meta["step"])
                state = load_checkpoint(directory, step, names)
                log(f"lpgan server {party_id}: resumed from step {step}")
                send_command(owner, "ok", {"step": step})
            elif command in ("train", "sample"):
                if state is None:
                    raise ChannelError(f"{command} before init or resume")
                party = Party(party_id, self.peer, dealer, config.frac_bits)
                before = self.peer.stats.copy()
                dealer.seconds, dealer.bytes = 0.0, 0
                start = time.perf_counter()
                if command == "train":
                    if int(meta["step"]) != step:
                        raise ChannelError(
                            f"owner asks for step {meta['step']}, this server is at {step}"
                        )
                    state, logits = secure_train_step(party, config, state, *arrays, step=step)
                    out = [logits["real"], logits["fake"], logits["generator"]]
                    step += 1
                    if step % config.checkpoint_every == 0 or step == config.steps:
                        save_checkpoint(directory, step, state)
                else:
                    out = [secure_generate(party, config, state, arrays[0])]
                seconds = time.perf_counter() - start
                sent = self.peer.stats - before
                cost = {
                    "seconds": seconds,
                    "offline_seconds": dealer.seconds,
                    "online_seconds": seconds - dealer.seconds,
                    "online_bytes_sent": sent.bytes_sent,
                    "rounds": sent.rounds,
                    "offline_bytes": dealer.bytes,
                    "step": step,
                }
                send_command(owner, "result", cost, out)
            elif command == "export":
                keys = [k for k in names if k.startswith("g.master.")]
                send_command(owner, "ok", {"names": keys}, [state[k] for k in keys])
            else:
                raise ChannelError(f"unknown command {command!r} from the owner")


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (for tests and local runs)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
