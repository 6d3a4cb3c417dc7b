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
