"""`make demo` runs end to end on the bundled default and decrypts exactly."""

import json

import pytest
from PIL import Image

from egan_jax import demo


def test_demo_transforms_part(tmp_path):
    assert demo.main(["--out", str(tmp_path), "--transforms-only"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["transforms"]["decryption_exact"] is True
    grid = Image.open(tmp_path / "transforms.png")
    assert grid.width > 7 * 128 and grid.height > 128
    assert "secret" not in (tmp_path / "summary.json").read_text()


@pytest.mark.slow
def test_demo_quick_runs_both_parts(tmp_path):
    assert demo.main(["--out", str(tmp_path), "--quick"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["transforms"]["decryption_exact"] is True
    assert "rows" in json.loads((tmp_path / "report.json").read_text())
    assert (tmp_path / "grid.png").exists() and (tmp_path / "report.md").exists()
    key_secret = json.loads((tmp_path / "demo.key").read_text())["secret"]
    for name in ("summary.json", "report.json", "report.md", "egan_summary.json"):
        assert key_secret not in (tmp_path / name).read_text()
    quality = summary["egan_quality_over_seeds"]
    assert sorted(quality["seeds"]) == ["0", "1"]  # quick: seeds 0 and 1, each its own pair
    rows = quality["seeds"].values()
    assert len({row["baseline_fd"] for row in rows}) == 2  # different seeds, different runs
    keyed = [row["correct_key_fd"] for row in rows]
    assert quality["ratio_of_means"] == pytest.approx(
        sum(keyed) / sum(row["baseline_fd"] for row in rows)
    )
    assert "over seeds" in (tmp_path / "report.md").read_text()


def test_quality_over_seeds_judges_the_means():
    from egan_jax.egan_demo import quality_markdown, quality_over_seeds

    quality = quality_over_seeds({0: (30.0, 36.0), 1: (40.0, 30.0), 2: (35.0, 36.0)})
    assert quality["ratio_of_means"] == pytest.approx(102.0 / 105.0)
    assert quality["met"] is True  # seed 0 alone (1.20) would fail
    assert quality["seeds"]["0"]["ratio"] == pytest.approx(1.2)
    assert "**0.97**" in quality_markdown(quality)
    assert quality_over_seeds({0: (30.0, 33.0)})["met"] is False
