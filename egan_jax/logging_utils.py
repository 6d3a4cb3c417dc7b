"""What a run shows and writes: a progress bar, metrics as JSON lines and TensorBoard events, and
PNG grids of samples. Only process 0 writes; every other process gets silent no-op writers."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from egan_jax.data import to_uint8


def image_grid(images: np.ndarray, *, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """Tiles NHWC images in [-1, 1] into one uint8 HWC image (grey images keep one channel)."""
    images = to_uint8(np.asarray(images))
    if images.ndim != 4:
        raise ValueError(f"expected NHWC images, got shape {images.shape}")
    count, height, width, channels = images.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.zeros(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels),
        np.uint8,
    )
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid


def save_image_grid(images: np.ndarray, path: str | Path, *, columns: int | None = None) -> Path:
    """Writes NHWC images in [-1, 1] as one PNG grid; returns the path."""
    grid = image_grid(images, columns=columns)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)
    return path


class MetricsLogger:
    """Appends `{"step": s, "time": t, **metrics}` to `metrics.jsonl` and, optionally, TensorBoard
    scalars under `workdir/tensorboard`. A disabled logger writes nothing."""

    def __init__(self, workdir: str | Path, *, tensorboard: bool = True, enabled: bool = True):
        self.enabled = enabled
        self._writer = None
        if not enabled:
            return
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._jsonl = (self.workdir / "metrics.jsonl").open("a")
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(str(self.workdir / "tensorboard"))

    def write(self, step: int, metrics: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        values = {name: float(value) for name, value in metrics.items()}
        self._jsonl.write(json.dumps({"step": int(step), "time": time.time(), **values}) + "\n")
        self._jsonl.flush()
        if self._writer is not None:
            for name, value in values.items():
                self._writer.add_scalar(name, value, step)
            self._writer.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        self._jsonl.close()
        if self._writer is not None:
            self._writer.close()


class ProgressBar:
    """A tqdm bar with steps/s and the latest losses; silent when `quiet` or stderr is no TTY."""

    def __init__(self, *, total: int, initial: int, quiet: bool = False):
        disabled = quiet or not sys.stderr.isatty()
        self._bar = tqdm(
            total=total, initial=initial, disable=disabled, unit="step", dynamic_ncols=True
        )

    def update(self, steps: int = 1, metrics: Mapping[str, Any] | None = None) -> None:
        self._bar.update(steps)
        if metrics:
            self._bar.set_postfix({name: f"{float(v):.4g}" for name, v in metrics.items()})

    def close(self) -> None:
        self._bar.close()


def read_metrics(workdir: str | Path) -> list[dict[str, Any]]:
    """The records of `workdir/metrics.jsonl`, in order (empty if there is none). A last line cut
    short (the file is being written, or its writer was killed) is left out."""
    path = Path(workdir) / "metrics.jsonl"
    if not path.exists():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines[:-1]]
    try:
        records.append(json.loads(lines[-1]))
    except (IndexError, json.JSONDecodeError):
        pass
    return records
