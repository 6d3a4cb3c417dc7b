"""Run the peers (CrypTen, SecretFlow SPU) in their own venvs and set their per-layer costs beside
ours: online bytes each party sends per output element, rounds, online time and error, for the
layers both run (ReLU, sigmoid, batch-norm normalisation, a 4×4 stride-2 convolution), on the same
shapes and inputs (bench_mpc._cases).

A peer whose venv is missing is skipped with the command that sets it up; a peer that fails is
reported with the tail of its log. Used by `python -m bench.bench_mpc`.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PEERS = {
    "crypten": (
        BENCH / ".venv-crypten" / "bin" / "python",
        BENCH / "peer_crypten.py",
        "python3.11 -m venv bench/.venv-crypten && SKLEARN_ALLOW_DEPRECATED_SKLEARN_PACKAGE_INSTALL="
        "True bench/.venv-crypten/bin/pip install torch==2.13.0 crypten==0.4.1",
    ),
    "spu": (
        BENCH / ".venv-spu" / "bin" / "python",
        BENCH / "peer_spu.py",
        'python3.11 -m venv bench/.venv-spu && bench/.venv-spu/bin/pip install spu==0.9.5 "jax<=0.4.34"'
        ' "jaxlib<=0.4.34" "numpy<2"',
    ),
}
LAYERS = ("relu", "sigmoid", "batch_norm_normalize", "conv2d_k4s2")
GOAL_LAYERS = ("relu", "sigmoid", "batch_norm_normalize")  # bytes and rounds no worse than a peer's


def run_peer(name: str, quick: bool, timeout: float = 900.0) -> dict:
    python, script, setup = PEERS[name]
    if not python.exists():
        return {
            "skipped": f"{python.relative_to(BENCH.parent)} is missing; set it up with: {setup}"
        }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.json"
        command = [str(python), str(script), "--out", str(out)] + (["--quick"] if quick else [])
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"failed": f"{name} did not finish within {timeout:g} s"}
        if done.returncode != 0 or not out.exists():
            return {"failed": f"exit {done.returncode}: {(done.stdout + done.stderr)[-1500:]}"}
        return json.loads(out.read_text())


def _row(r: dict, bytes_key: str, error_key: str) -> dict:
    return {
        "bytes_per_elem": round(r[bytes_key], 2),
        "rounds": r["rounds"],
        "online_ms": round(1e3 * r["online_s"], 2),
        "max_abs_error": r[error_key],
    }


def comparison(ours: dict, peers: dict) -> dict:
    """Per layer: our row and each peer's; per goal layer and peer: whether ours is no worse."""
    table, goals = {}, {}
    for layer in LAYERS:
        row = {
            "ours": _row(
                ours[layer],
                "bytes_per_output_element_per_party",
                "max_abs_error_vs_float64_on_fixed_point_inputs",
            )
        }
        for name, peer in peers.items():
            if layer in peer.get("protocols", {}):
                row[name] = _row(
                    peer["protocols"][layer],
                    "bytes_per_output_element_per_party",
                    "max_abs_error_vs_float64",
                )
        table[layer] = row
        if layer in GOAL_LAYERS:
            goals[layer] = {
                name: {
                    "bytes_no_worse": row["ours"]["bytes_per_elem"] <= row[name]["bytes_per_elem"],
                    "rounds_no_worse": row["ours"]["rounds"] <= row[name]["rounds"],
                }
                for name in row
                if name != "ours"
            }
    return {"table": table, "goals_bytes_and_rounds_no_worse": goals}
