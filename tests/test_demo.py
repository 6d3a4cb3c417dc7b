"""`make demo` runs end to end on the bundled default and decrypts exactly."""

import json

from PIL import Image

from egan_jax import demo


def test_demo_transforms_part(tmp_path):
    assert demo.main(["--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["transforms"]["decryption_exact"] is True
    grid = Image.open(tmp_path / "transforms.png")
    assert grid.width > 7 * 128 and grid.height > 128
    assert "secret" not in (tmp_path / "summary.json").read_text()
