"""Tests of egan_jax.imageio: PNG (8/16-bit) and .npy files with egan_jax metadata."""

import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

import egan_jax
from egan_jax.errors import ConfigError, DataError, EganError, ShapeError
from egan_jax.imageio import VERSION_FIELD, check_metadata, read_image, write_image

FINGERPRINT = "egk1-0123456789abcdef"
METADATA = {
    "transform": {"name": "kiya", "block_size": 4, "ffx": "decimal", "inverse": False},
    "key_fingerprint": FINGERPRINT,
    "note": "blöck — ünïcode",
}


def _png_header(path):
    data = path.read_bytes()
    width, height, depth, color_type = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, color_type


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("channels", [1, 3])
def test_uint8_png_round_trip(tmp_path, rng, channels):
    array = rng.integers(0, 256, (9, 7, channels), dtype=np.uint8)
    path = tmp_path / "x.png"
    write_image(path, array, METADATA)
    back, metadata = read_image(path)
    assert back.dtype == np.uint8 and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert _png_header(path)[2] == 8
    assert metadata == {**METADATA, VERSION_FIELD: egan_jax.__version__}


def test_real_photo_round_trip(tmp_path):
    from skimage import data

    photo = data.astronaut()[100:164, 200:264]
    write_image(tmp_path / "a.png", photo, {"key_fingerprint": FINGERPRINT})
    back, _ = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(back, photo)


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.int64])
@pytest.mark.parametrize("channels", [1, 3])
def test_values_above_255_become_16bit_png(tmp_path, rng, dtype, channels):
    array = rng.integers(0, 1000, (6, 11, channels)).astype(dtype)
    array[0, 0] = 999
    path = tmp_path / "ffx.png"
    write_image(path, array, METADATA)
    width, height, depth, color_type = _png_header(path)
    assert (width, height, depth, color_type) == (11, 6, 16, {1: 0, 3: 2}[channels])
    back, metadata = read_image(path)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, array)
    assert back.max() == 999
    assert metadata[VERSION_FIELD] == egan_jax.__version__
    assert metadata["key_fingerprint"] == FINGERPRINT


def test_16bit_png_is_readable_by_pillow(tmp_path, rng):
    """Our encoder writes standard PNGs: Pillow reads the 16-bit gray file exactly and the text."""
    array = rng.integers(0, 65536, (5, 8, 1)).astype(np.uint16)
    path = tmp_path / "g.png"
    write_image(path, array, METADATA)
    with Image.open(path) as image:
        assert image.mode == "I;16"
        np.testing.assert_array_equal(np.asarray(image), array[..., 0])
        assert json.loads(image.info["egan_jax"])["key_fingerprint"] == FINGERPRINT


def test_reads_16bit_gray_written_by_pillow(tmp_path):
    """Pillow filters the rows of its own 16-bit files: this checks our decoder's unfiltering."""
    y, x = np.mgrid[0:40, 0:50]
    array = (y * 1300 + x * 17 + (x * y) % 7).astype(np.uint16)
    Image.fromarray(array).save(tmp_path / "p.png")
    back, metadata = read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(back[..., 0], array)
    assert metadata == {}


def _filter_row(kind, row, previous, bpp):
    """Forward PNG filter of one scanline (spec 9.2), written plainly for the test."""
    out = bytearray(len(row))
    for i, value in enumerate(row):
        left = row[i - bpp] if i >= bpp else 0
        up = previous[i]
        upper_left = previous[i - bpp] if i >= bpp else 0
        if kind == 0:
            predictor = 0
        elif kind == 1:
            predictor = left
        elif kind == 2:
            predictor = up
        elif kind == 3:
            predictor = (left + up) // 2
        else:
            p = left + up - upper_left
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - upper_left)
            predictor = left if pa <= pb and pa <= pc else up if pb <= pc else upper_left
        out[i] = (value - predictor) % 256
    return bytes(out)


def _handmade_png16(array, color_type, text_chunk=None):
    height, width, channels = array.shape
    raw = array.astype(">u2").tobytes()
    stride, bpp = width * channels * 2, channels * 2
    previous, body = bytes(stride), b""
    for r in range(height):
        row = raw[r * stride : (r + 1) * stride]
        kind = r % 5  # every filter type, several times
        body += bytes([kind]) + _filter_row(kind, row, previous, bpp)
        previous = row

    def chunk(kind, payload):
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    extra = chunk(b"tEXt", text_chunk) if text_chunk else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + extra
        + chunk(b"IDAT", zlib.compress(body))
        + chunk(b"IEND", b"")
    )


def test_reads_all_png_filter_types_16bit_rgb(tmp_path, rng):
    array = rng.integers(0, 65536, (15, 32, 3)).astype(np.uint16)
    array[5:10] = np.cumsum(array[5:10] % 50, axis=1)  # smooth rows (small deltas)
    array[10:] = rng.integers(0, 4, (5, 32, 3))  # tiny values: many Paeth ties (tie-break order)
    path = tmp_path / "f.png"
    path.write_bytes(_handmade_png16(array, 2, b'egan_jax\x00{"a": 1}'))
    back, metadata = read_image(path)
    np.testing.assert_array_equal(back, array)
    assert metadata == {"a": 1}  # a tEXt chunk is read as well as iTXt


def test_opaque_alpha_dropped_translucent_refused(tmp_path, rng):
    rgba = rng.integers(0, 65536, (4, 6, 4)).astype(np.uint16)
    rgba[..., 3] = 65535
    (tmp_path / "o.png").write_bytes(_handmade_png16(rgba, 6))
    back, _ = read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(back, rgba[..., :3])

    rgba8 = rng.integers(0, 256, (4, 6, 4), dtype=np.uint8)
    rgba8[..., 3] = 255
    Image.fromarray(rgba8).save(tmp_path / "o8.png")
    np.testing.assert_array_equal(read_image(tmp_path / "o8.png")[0], rgba8[..., :3])
    rgba8[0, 0, 3] = 10
    Image.fromarray(rgba8).save(tmp_path / "t8.png")
    with pytest.raises(DataError, match="t8.png has transparent pixels"):
        read_image(tmp_path / "t8.png")


def test_palette_png_becomes_rgb(tmp_path, rng):
    rgb = rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)
    Image.fromarray(rgb).quantize(8).save(tmp_path / "p.png")
    expected = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"))
    back, _ = read_image(tmp_path / "p.png")
    assert back.shape == (5, 5, 3)
    np.testing.assert_array_equal(back, expected)


def test_one_bit_png_becomes_gray(tmp_path, rng):
    bits = rng.integers(0, 2, (6, 10)).astype(bool)
    Image.fromarray(bits).save(tmp_path / "b.png")
    assert _png_header(tmp_path / "b.png")[2] == 1
    back, _ = read_image(tmp_path / "b.png")
    assert back.shape == (6, 10, 1) and back.dtype == np.uint8
    np.testing.assert_array_equal(back[..., 0], bits.astype(np.uint8) * 255)


def test_text_chunk_metadata_from_pillow(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("egan_jax", json.dumps({"key_fingerprint": FINGERPRINT}))
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / "t.png", pnginfo=info)
    assert read_image(tmp_path / "t.png")[1] == {"key_fingerprint": FINGERPRINT}


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_npy_round_trip_with_sidecar(tmp_path, rng, dtype):
    array = rng.integers(0, 256 if dtype == np.uint8 else 1000, (4, 5, 3)).astype(dtype)
    path = tmp_path / "x.npy"
    write_image(path, array, METADATA)
    sidecar = tmp_path / "x.npy.json"
    assert json.loads(sidecar.read_text())["key_fingerprint"] == FINGERPRINT
    back, metadata = read_image(path)
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, array)
    assert metadata == {**METADATA, VERSION_FIELD: egan_jax.__version__}
    sidecar.unlink()
    assert read_image(path)[1] == {}


def test_non_image_and_truncated_files_raise_data_error(tmp_path, rng):
    (tmp_path / "text.png").write_text("this is not an image\n")
    array = rng.integers(0, 1000, (16, 16, 3)).astype(np.uint16)
    for name, arr in (("full16.png", array), ("full8.png", array.astype(np.uint8))):
        write_image(tmp_path / name, arr, METADATA)
        data = (tmp_path / name).read_bytes()
        (tmp_path / ("cut_" + name)).write_bytes(data[: len(data) // 2])
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0xFF
        (tmp_path / ("bad_" + name)).write_bytes(bytes(flipped))
    write_image(tmp_path / "a.npy", array, {})
    (tmp_path / "cut.npy").write_bytes((tmp_path / "a.npy").read_bytes()[:100])
    (tmp_path / "text.npy").write_text("not numpy")
    cases = {
        "text.png": "not a PNG",
        "cut_full16.png": "truncated",
        "cut_full8.png": "truncated",
        "bad_full16.png": "CRC",
        "bad_full8.png": "CRC",
        "cut.npy": "not a readable .npy",
        "text.npy": "not a readable .npy",
        "missing.png": "cannot read",
    }
    for name, fragment in cases.items():
        with pytest.raises(DataError) as info:
            read_image(tmp_path / name)
        assert name in str(info.value) and fragment in str(info.value), str(info.value)


@pytest.mark.parametrize(
    "metadata,field",
    [
        ({"secret": "c2VjcmV0"}, "metadata.secret"),
        ({"key_bytes": "00ff"}, "metadata.key_bytes"),
        ({"transform": {"ffx": {"AES_KEY": "00" * 32}}}, "metadata.transform.ffx.AES_KEY"),
        ({"key": "ab" * 32}, "metadata.key"),
        ({"runs": [{"passphrase": "hunter2"}]}, "metadata.runs[0].passphrase"),
        ({"key_fingerprint": b"\x01\x02"}, "metadata.key_fingerprint holds raw bytes"),
    ],
)
def test_secret_looking_metadata_is_refused(tmp_path, metadata, field):
    path = tmp_path / "s.png"
    with pytest.raises(ConfigError) as info:
        write_image(path, np.zeros((2, 2, 3), np.uint8), metadata)
    assert field in str(info.value)
    for secret in ("c2VjcmV0", "00ff", "hunter2", "abab"):
        assert secret not in str(info.value)
    assert not path.exists()


def test_check_metadata_accepts_fingerprint_and_keeps_input():
    metadata = {"key_fingerprint": FINGERPRINT, "ffx_table_size": 1000}
    record = check_metadata(metadata)
    assert record == {**metadata, VERSION_FIELD: egan_jax.__version__}
    assert VERSION_FIELD not in metadata
    with pytest.raises(ConfigError, match="JSON"):
        check_metadata({"value": float("nan")})
    with pytest.raises(ConfigError, match="must be a dict"):
        check_metadata(["a"])


@pytest.mark.parametrize(
    "array,error,fragment",
    [
        (np.zeros((4, 4, 3), np.float32), ShapeError, "must be integers"),
        (np.zeros((4, 4, 3), bool), ShapeError, "must be integers"),
        (np.full((4, 4, 3), -1, np.int32), ShapeError, "0..65535"),
        (np.full((4, 4, 3), 70000, np.int32), ShapeError, "0..65535"),
        (np.zeros((4, 4), np.uint8), ShapeError, "x[..., None]"),
        (np.zeros((4, 4, 2), np.uint8), ShapeError, "C = 1 or 3"),
    ],
)
def test_bad_arrays_refused(tmp_path, array, error, fragment):
    with pytest.raises(error, match=None) as info:
        write_image(tmp_path / "b.png", array, {})
    assert fragment in str(info.value) and "b.png" in str(info.value)
    assert isinstance(info.value, EganError)


def test_unsupported_extension_refused(tmp_path):
    with pytest.raises(ConfigError, match="use .png or .npy"):
        write_image(tmp_path / "x.jpg", np.zeros((2, 2, 3), np.uint8), {})
    with pytest.raises(ConfigError, match="use .png or .npy"):
        read_image(tmp_path / "x.tiff")


def test_unwritable_path_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot write"):
        write_image(tmp_path / "no_dir" / "x.png", np.zeros((2, 2, 1), np.uint16), {})
