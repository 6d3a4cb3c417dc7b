"""The EGAN protection report: per-kind summary with the issue's goals, markdown table, labelled
PNG grid and the JSON/markdown files (`write_report`), plus the attack rows stored by `egan attack`.

Pure formatting and file writing: the numbers come from `egan_jax.evaluate` and
`egan_jax.attack_runs`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from egan_jax.logging_utils import image_grid

GOAL_CORRECT_RATIO = 1.05
GOAL_UNAUTHORIZED_RATIO = 5.0


def summarize(rows: list[dict[str, Any]], baseline_fd: float | None) -> dict[str, Any]:
    """Per-kind statistics, ratios to the baseline and the issue's goals."""
    by_kind: dict[str, list[float]] = {}
    for row in rows:
        by_kind.setdefault(row["kind"], []).append(row["fd"])
    summary: dict[str, Any] = {"baseline_fd": baseline_fd, "kinds": {}}
    for kind, values in by_kind.items():
        values_arr = np.asarray(values)
        summary["kinds"][kind] = {
            "count": len(values),
            "mean": float(values_arr.mean()),
            "sd": float(values_arr.std(ddof=1)) if len(values) > 1 else 0.0,
            "worst": float(values_arr.min()),  # the wrong key closest to working
        }
    if baseline_fd:
        correct = summary["kinds"]["authorized"]["mean"]
        unauthorized = [v["worst"] for k, v in summary["kinds"].items() if k != "authorized"]
        worst_ratio = min(unauthorized) / baseline_fd if unauthorized else math.nan
        summary["correct_ratio"] = correct / baseline_fd
        summary["worst_unauthorized_ratio"] = worst_ratio
        summary["goals"] = {
            f"correct key FD ratio <= {GOAL_CORRECT_RATIO}": correct / baseline_fd
            <= GOAL_CORRECT_RATIO,
            f"every unauthorized FD >= {GOAL_UNAUTHORIZED_RATIO}x baseline": worst_ratio
            >= GOAL_UNAUTHORIZED_RATIO,
        }
    return summary


def save_labelled_grid(previews: dict[str, np.ndarray], path: Path, *, scale: int = 3) -> Path:
    """One row of samples per variant, its name on the left (PNG)."""
    names = list(previews)
    rows = [image_grid(previews[n], columns=len(previews[n])) for n in names]
    height, width = rows[0].shape[:2]
    label_width = 110
    canvas = Image.new("L", (label_width + width * scale, height * scale * len(rows)), 255)
    draw = ImageDraw.Draw(canvas)
    for i, (name, row) in enumerate(zip(names, rows, strict=True)):
        grey = row[..., 0] if row.shape[-1] == 1 else row.mean(axis=-1).astype(np.uint8)
        tile = Image.fromarray(grey).resize((width * scale, height * scale), Image.NEAREST)
        canvas.paste(tile, (label_width, i * height * scale))
        draw.text((4, i * height * scale + height * scale // 2 - 5), name, fill=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def markdown_table(rows: list[dict[str, Any]], baseline_fd: float | None) -> str:
    lines = [
        "| model / input | kind | digits FD | × baseline | note |",
        "|---|---|---:|---:|---|",
    ]
    for row in rows:
        fd = row.get("fd")
        ratio = f"{fd / baseline_fd:.2f}" if baseline_fd and fd is not None else "–"
        shown = f"{fd:.2f}" if fd is not None else "–"
        lines.append(
            f"| {row['name']} | {row['kind']} | {shown} | {ratio} | {row.get('note', '')} |"
        )
    return "\n".join(lines)


def _summary_lines(summary: dict[str, Any]) -> list[str]:
    lines = []
    for kind, stats in summary["kinds"].items():
        lines.append(
            f"- {kind}: {stats['count']} × FD mean {stats['mean']:.2f} ± {stats['sd']:.2f}, "
            f"lowest {stats['worst']:.2f}"
        )
    for goal, met in summary.get("goals", {}).items():
        lines.append(f"- goal {goal}: {'met' if met else 'NOT met'}")
    return lines


def attack_rows(workdir: Path) -> list[dict[str, Any]]:
    """Rows that `egan attack` stored under `workdir/attacks/*.json`, in name order."""
    rows = []
    for path in sorted((workdir / "attacks").glob("*.json")):
        rows.extend(json.loads(path.read_text()).get("rows", []))
    return rows


def write_report(
    out: Path,
    rows: list[dict[str, Any]],
    summary: dict[str, Any],
    previews: dict[str, np.ndarray],
    meta: dict[str, Any],
) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    grid_names = [n for n in previews if not n.startswith(("random key", "near"))]
    grid_names += [n for n in previews if n.startswith("random key")][:2]
    grid_names += [n for n in previews if n.startswith("near key")][:1]
    grid_names += [n for n in previews if n.startswith("near material")][:1]
    grid = save_labelled_grid({n: previews[n] for n in grid_names}, out / "grid.png")
    report = {"meta": meta, "rows": rows, "summary": summary}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    md = [
        f"# EGAN protection report: {meta.get('workdir', '')}",
        "",
        f"Design `{meta.get('design')}`, key {meta.get('key_fingerprint')}, step {meta.get('step')}, "
        f"{meta.get('num_samples')} samples, seed {meta.get('seed')}. Digits Fréchet distance "
        "(lower is better) against the real training digits.",
        "",
        markdown_table(rows, summary.get("baseline_fd")),
        "",
        *_summary_lines(summary),
        "",
        "![samples](grid.png)",
        "",
    ]
    (out / "report.md").write_text("\n".join(md))
    return {"json": out / "report.json", "markdown": out / "report.md", "grid": grid}
