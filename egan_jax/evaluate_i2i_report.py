"""The report of `egan evaluate` for egan_srgan / egan_cyclegan: summary, goals, markdown, PNG grid.

Rows come from `egan_jax.evaluate_i2i`; `summarize` computes per-kind mean ± sd and the worst case
(the unauthorized input closest to working) and checks the issue's goals, `write_report` writes
`report.json`, `report.md` and `grid.png`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from egan_jax.logging_utils import image_grid

GOAL_PSNR_DROP_DB = 0.2
GOAL_CYCLE_RATIO = 3.0
ADAPTER_REMOVED = "adapter removed, raw input"
# the same outputs after a thief's global colour correction (CycleGAN; `evaluate_i2i`)
COLOUR_CORRECTED = "adapter removed, colour-corrected"

UNAUTHORIZED = (
    "no_key", "random_key", "near_key", "near_material", "adapter_removed", "colour_corrected",
)  # fmt: skip


def summarize(family: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-kind mean ± sd and the worst case (the unauthorized input closest to working); goals."""
    metric, higher_is_better = ("psnr_y", True) if family == "egan_srgan" else ("fd_a_to_b", False)
    by_kind: dict[str, list[float]] = {}
    for row in rows:
        if row.get(metric) is not None:
            by_kind.setdefault(row["kind"], []).append(row[metric])
    best = max if higher_is_better else min
    kinds = {
        kind: {
            "count": len(values),
            "mean": float(np.mean(values)),
            "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "worst": float(best(values)),
        }
        for kind, values in by_kind.items()
    }
    summary: dict[str, Any] = {"metric": metric, "kinds": kinds, "goals": {}}
    unauthorized = [kinds[k]["worst"] for k in UNAUTHORIZED if k in kinds]
    correct = kinds["authorized"]["mean"]
    if family == "egan_srgan":
        worst = max(unauthorized)
        if "baseline" in kinds:
            drop = kinds["baseline"]["mean"] - correct
            summary["correct_drop_db"] = drop
            summary["goals"][f"correct key PSNR <= {GOAL_PSNR_DROP_DB} dB below baseline"] = (
                drop <= GOAL_PSNR_DROP_DB
            )
        bicubic = kinds["bicubic"]["mean"]
        summary["worst_unauthorized_psnr"] = worst
        summary["worst_unauthorized_gap_db"] = correct - worst  # ≈ 0: that input works as well
        summary["goals"]["every unauthorized PSNR below bicubic"] = worst < bicubic
    else:
        worst = min(unauthorized)
        summary["worst_unauthorized_ratio"] = worst / correct
        summary["goals"][f"every unauthorized FD >= {GOAL_CYCLE_RATIO}x the correct key's"] = (
            worst / correct >= GOAL_CYCLE_RATIO
        )
        if "baseline" in kinds:
            summary["correct_ratio_to_baseline"] = correct / kinds["baseline"]["mean"]
    return summary


def _cell(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown_table(family: str, rows: list[dict[str, Any]], metric_name: str = "") -> str:
    if family == "egan_srgan":
        lines = ["| input | kind | Y-PSNR (dB) | Y-SSIM |", "|---|---|---:|---:|"]
        for r in rows:
            lines.append(
                f"| {r['name']} | {r['kind']} | {_cell(r['psnr_y'])} | {_cell(r['ssim_y'], 3)} |"
            )
        return "\n".join(lines)
    lines = [
        f"| input | kind | A→B {metric_name} | A→B→A cycle PSNR (dB) | note |",
        "|---|---|---:|---:|---|",
    ]
    for r in rows:
        note = r.get("note", "")
        if r.get("fd_b_to_a") is not None:
            note = f"B→A Fréchet distance {r['fd_b_to_a']:.2f}"
        lines.append(
            f"| {r['name']} | {r['kind']} | {_cell(r.get('fd_a_to_b'))} | "
            f"{_cell(r.get('cycle_psnr_a'))} | {note} |"
        )
    return "\n".join(lines)


def load_attack_rows(workdir: Path) -> list[dict[str, Any]]:
    """Rows that `egan attack` stored under `workdir/attacks/*.json` (`attack_runs_i2i`), in name
    order; empty when no attack ran."""
    rows = []
    for path in sorted((Path(workdir) / "attacks").glob("*.json")):
        rows.extend(json.loads(path.read_text()).get("rows", []))
    return rows


def attack_table(family: str, rows: list[dict[str, Any]]) -> str:
    """The attack rows: the family's metric (SRGAN Y-PSNR/SSIM, CycleGAN A→B FD) and a note."""
    if family.endswith("srgan"):
        lines = ["| attack | kind | Y-PSNR (dB) | Y-SSIM | note |", "|---|---|---:|---:|---|"]
        cells = lambda r: f"{_cell(r.get('psnr_y'))} | {_cell(r.get('ssim_y'), 3)}"  # noqa: E731
    else:
        lines = ["| attack | kind | A→B Fréchet distance | note |", "|---|---|---:|---|"]
        cells = lambda r: _cell(r.get("fd_a_to_b"))  # noqa: E731
    for r in rows:
        lines.append(f"| {r['name']} | {r['kind']} | {cells(r)} | {r.get('note', '')} |")
    return "\n".join(lines)


def save_rgb_grid(previews: dict[str, np.ndarray], path: Path, *, scale: int = 2) -> Path:
    """One row of images per input kind, its name on the left (RGB PNG)."""
    label_width = 170
    rows = [image_grid(images, columns=len(images)) for images in previews.values()]
    height = max(r.shape[0] for r in rows) * scale
    width = max(r.shape[1] for r in rows) * scale
    canvas = Image.new("RGB", (label_width + width, height * len(rows)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (name, grid) in enumerate(zip(previews, rows, strict=True)):
        grid = np.repeat(grid, 3, axis=-1) if grid.shape[-1] == 1 else grid
        tile = Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale))
        canvas.paste(tile, (label_width, i * height))
        draw.text((4, i * height + height // 2 - 5), name, fill=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def _grid_subset(previews: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    keep = [n for n in previews if not n.startswith(("random key", "near", ADAPTER_REMOVED))]
    for prefix, count in (
        ("random key", 2),
        ("near key", 1),
        ("near material", 2),
        (ADAPTER_REMOVED, 1),
    ):
        keep += [n for n in previews if n.startswith(prefix)][:count]
    return {n: previews[n] for n in keep}


def write_report(
    out: Path, family: str, rows, summary, previews, meta, attacks=()
) -> dict[str, Path]:
    """`report.json`, `report.md` (with the `attacks` rows, if any) and `grid.png` under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    grid = save_rgb_grid(_grid_subset(previews), out / "grid.png")
    (out / "report.json").write_text(
        json.dumps(
            {"meta": meta, "rows": rows, "summary": summary, "attacks": list(attacks)}, indent=2
        )
        + "\n"
    )
    lines = [f"- {kind}: {s['count']} × mean {s['mean']:.2f} ± {s['sd']:.2f}, worst {s['worst']:.2f}"
             for kind, s in summary["kinds"].items()]  # fmt: skip
    if "worst_unauthorized_gap_db" in summary:
        lines.append(
            f"- the best unauthorized input is {summary['worst_unauthorized_gap_db']:.2f} dB below "
            "the correct key"
        )
    lines += [f"- goal {g}: {'met' if ok else 'NOT met'}" for g, ok in summary["goals"].items()]
    if attacks:  # `egan attack ...` rows (WORKDIR/attacks/*.json)
        lines += ["", "## Attacks", "", attack_table(family, attacks)]
    md = [
        f"# EGAN protection report ({family}): {meta['workdir']}",
        "",
        f"Key {meta['key_fingerprint']}, step {meta['step']}, seed {meta['seed']}, "
        f"{meta['images']} held-out images. Worst = the unauthorized input closest to working.",
        "",
        markdown_table(family, rows, meta.get("metric_name", "")),
        "",
        *lines,
        "",
        "![samples](grid.png)",
        "",
    ]
    (out / "report.md").write_text("\n".join(md))
    return {"json": out / "report.json", "markdown": out / "report.md", "grid": grid}
