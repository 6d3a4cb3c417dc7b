"""Image files at the CLI's edge: PNG (8- and 16-bit) and ``.npy``, with egan_jax metadata.

Arrays here are ``[H, W, C]`` (``C`` = 1 or 3) of ``uint8`` or ``uint16`` pixel values, as files hold
them; the library's ``[-1, 1]`` floats are converted elsewhere. Transformed images can hold values above
255 (the decimal FFX variant maps 0..255 into 0..999), so any integer array that is not ``uint8`` is
written as a 16-bit PNG — values are never clipped to 8 bits.

8-bit PNGs are written and read with Pillow. Pillow 12 can neither write nor read 16-bit RGB PNGs
(``Image.fromarray`` refuses ``(H, W, 3) uint16`` and its reader keeps only the high byte), so 16-bit PNGs
of every colour type go through the small encoder and decoder below (zlib + struct, PNG spec 1.2).

Metadata is a JSON object stored in a PNG ``iTXt`` chunk with keyword ``"egan_jax"`` (a ``tEXt`` chunk
of that keyword is read too), or for ``.npy`` in a sidecar file ``<path>.json``. It records what was
done (transform config, key fingerprint, egan_jax version); it must never hold key material, so field
names that look like secrets are refused (:func:`check_metadata`).
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from egan_jax import __version__
from egan_jax.errors import ConfigError, DataError, ShapeError

METADATA_KEY = "egan_jax"
VERSION_FIELD = "egan_jax_version"
SUFFIXES = (".png", ".npy")
# Field names (lower-cased substrings) that would put key material into a file.
SECRET_FIELD_PARTS = ("secret", "key_bytes", "keybytes", "key_material", "raw_key", "aes_key",
                      "password", "passphrase", "private")  # fmt: skip
SECRET_FIELD_NAMES = ("key",)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS_OF_COLOR_TYPE = {0: 1, 2: 3, 4: 2, 6: 4}  # gray, RGB, gray+alpha, RGBA
_COLOR_TYPE_OF_CHANNELS = {1: 0, 3: 2}
_MAX_PIXELS = 2**28


# --- metadata -----------------------------------------------------------------------------------
def check_metadata(metadata: dict | None) -> dict:
    """Validate metadata for a file and return a copy with ``egan_jax_version`` filled in.

    Raises:
      ConfigError: not a JSON object with string keys, not JSON-serialisable, holds raw bytes, or has
        a field whose name looks like key material (``secret``, ``key_bytes``, ``password``, ``key``…).
        The message names the field, never its value.
    """
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise ConfigError(f"image metadata must be a dict, got {type(metadata).__name__}.")
    _refuse_secrets(metadata, "metadata")
    record = {VERSION_FIELD: __version__, **metadata}
    try:
        json.dumps(record, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"image metadata is not JSON-serialisable ({error}); store plain numbers, strings, "
            "lists and dicts."
        ) from None
    return record


def _refuse_secrets(value: object, where: str) -> None:
    if isinstance(value, bytes | bytearray | memoryview):
        raise ConfigError(
            f"{where} holds raw bytes; image metadata may not contain key material or binary data. "
            "Store the key fingerprint (SecretKey.fingerprint) instead."
        )
    if isinstance(value, dict):
        for name, item in value.items():
            if not isinstance(name, str):
                raise ConfigError(
                    f"{where} has a non-string field name {name!r}; JSON needs strings."
                )
            lowered = name.lower()
            if lowered in SECRET_FIELD_NAMES or any(p in lowered for p in SECRET_FIELD_PARTS):
                raise ConfigError(
                    f"{where}.{name} looks like key material; image metadata may hold only the key "
                    "fingerprint (SecretKey.fingerprint), never a key or secret."
                )
            _refuse_secrets(item, f"{where}.{name}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _refuse_secrets(item, f"{where}[{index}]")


def _parse_metadata(text: str, path: Path) -> dict:
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError:
        raise DataError(
            f"{path}: the egan_jax metadata is not valid JSON; the file is corrupt."
        ) from None
    if not isinstance(metadata, dict):
        raise DataError(f"{path}: the egan_jax metadata is not a JSON object; the file is corrupt.")
    return metadata


# --- arrays -------------------------------------------------------------------------------------
def _as_image_array(array: object, path: Path) -> np.ndarray:
    """``[H, W, C]`` uint8 stays; any other integer array in 0..65535 becomes uint16."""
    array = np.asarray(array)
    if array.ndim != 3 or array.shape[2] not in (1, 3) or 0 in array.shape:
        raise ShapeError(
            f"{path}: an image array must be [H, W, C] with C = 1 or 3, got shape {array.shape}; "
            "add a channel axis to a gray image with x[..., None]."
        )
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise ShapeError(
            f"{path}: pixel values must be integers (uint8, or up to 65535), got dtype {array.dtype}; "
            "convert images in [-1, 1] to uint8 first, e.g. round((x + 1) * 127.5)."
        )
    low, high = int(array.min()), int(array.max())
    if low < 0 or high > 65535:
        raise ShapeError(
            f"{path}: pixel values must lie in 0..65535 to be stored, got {low}..{high}."
        )
    return array.astype(np.uint16)


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ConfigError(
            f"{path}: unsupported image file type {suffix or '(none)'!r}; use .png or .npy (lossy "
            "formats such as JPEG would destroy transformed pixel values)."
        )
    return suffix


# --- public API ---------------------------------------------------------------------------------
def write_image(path: str | os.PathLike, array: np.ndarray, metadata: dict | None = None) -> None:
    """Write ``[H, W, C]`` pixel values and metadata to ``.png`` or ``.npy`` (chosen by extension).

    ``uint8`` arrays become 8-bit PNGs; other integer arrays with values in 0..65535 (e.g. the decimal
    FFX variant's 0..999) become 16-bit PNGs. Metadata (see :func:`check_metadata`) goes into an
    ``iTXt`` chunk ``"egan_jax"``, or for ``.npy`` into ``<path>.json``.
    """
    path = Path(path)
    suffix = _suffix(path)
    array = _as_image_array(array, path)
    text = json.dumps(check_metadata(metadata), sort_keys=True, allow_nan=False)
    try:
        if suffix == ".npy":
            with open(path, "wb") as handle:
                np.save(handle, array, allow_pickle=False)
            Path(str(path) + ".json").write_text(text + "\n")
        elif array.dtype == np.uint8:
            info = PngImagePlugin.PngInfo()
            info.add_itxt(METADATA_KEY, text)
            image = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
            image.save(path, format="PNG", pnginfo=info)
        else:
            path.write_bytes(_encode_png16(array, text))
    except OSError as error:
        raise DataError(f"cannot write {path}: {error.strerror or error}.") from None


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read an image written by :func:`write_image` (or any PNG / ``.npy`` image).

    Returns:
      ``(array, metadata)``: ``[H, W, C]`` uint8 or uint16 with ``C`` = 1 (gray) or 3 (RGB; palette
      images become RGB, an alpha channel is dropped when fully opaque), and the metadata dict (``{}``
      when the file has none).

    Raises:
      DataError: missing, unreadable, truncated or corrupt file, or translucent alpha.
      ConfigError: unsupported extension.
    """
    path = Path(path)
    suffix = _suffix(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}.") from None
    if suffix == ".npy":
        return _read_npy(path, data)
    return _read_png(path, data)


def _read_npy(path: Path, data: bytes) -> tuple[np.ndarray, dict]:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError, OSError) as error:
        raise DataError(
            f"{path} is not a readable .npy array ({error}); truncated or corrupt?"
        ) from None
    sidecar = Path(str(path) + ".json")
    metadata = _parse_metadata(sidecar.read_text(), sidecar) if sidecar.is_file() else {}
    return _as_image_array(array, path), metadata


# --- PNG ----------------------------------------------------------------------------------------
def _chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def _encode_png16(array: np.ndarray, metadata_text: str) -> bytes:
    """A 16-bit gray or RGB PNG, filter type 0 on every row, with an uncompressed ``iTXt`` chunk."""
    height, width, channels = array.shape
    header = struct.pack(">IIBBBBB", width, height, 16, _COLOR_TYPE_OF_CHANNELS[channels], 0, 0, 0)
    rows = array.astype(">u2").reshape(height, -1).view(np.uint8)
    scanlines = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1)
    itxt = METADATA_KEY.encode() + b"\x00\x00\x00\x00\x00" + metadata_text.encode()
    return b"".join(
        [
            _PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"iTXt", itxt),
            _chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6)),
            _chunk(b"IEND", b""),
        ]
    )


def _png_chunks(path: Path, data: bytes) -> list[tuple[bytes, bytes]]:
    if not data.startswith(_PNG_SIGNATURE):
        raise DataError(f"{path} is not a PNG file (no PNG signature); is it another format?")
    chunks, offset = [], len(_PNG_SIGNATURE)
    while True:
        if offset + 12 > len(data):
            raise DataError(f"{path} is truncated: the PNG ends before its IEND chunk.")
        (length,) = struct.unpack_from(">I", data, offset)
        kind = data[offset + 4 : offset + 8]
        end = offset + 8 + length
        if end + 4 > len(data):
            raise DataError(
                f"{path} is truncated: PNG chunk {kind!r} runs past the end of the file."
            )
        (crc,) = struct.unpack_from(">I", data, end)
        if zlib.crc32(data[offset + 4 : end]) != crc:
            raise DataError(f"{path} is corrupt: PNG chunk {kind!r} fails its CRC check.")
        chunks.append((kind, data[offset + 8 : end]))
        offset = end + 4
        if kind == b"IEND":
            return chunks


def _png_metadata(path: Path, chunks: list[tuple[bytes, bytes]]) -> dict:
    for kind, payload in chunks:
        keyword, _, rest = payload.partition(b"\x00")
        if keyword != METADATA_KEY.encode():
            continue
        if kind == b"tEXt":
            return _parse_metadata(rest.decode("latin-1"), path)
        if kind == b"iTXt" and len(rest) >= 2:
            compressed, text = rest[0], rest[2:]
            text = text.split(b"\x00", 2)[-1]  # skip language tag and translated keyword
            try:
                text = zlib.decompress(text) if compressed else text
                return _parse_metadata(text.decode("utf-8"), path)
            except (zlib.error, UnicodeDecodeError):
                raise DataError(f"{path}: the egan_jax metadata chunk is corrupt.") from None
    return {}


def _read_png(path: Path, data: bytes) -> tuple[np.ndarray, dict]:
    chunks = _png_chunks(path, data)
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise DataError(f"{path} is corrupt: a PNG must start with a 13-byte IHDR chunk.")
    width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if depth == 16:
        pixels = _decode_png16(path, chunks, width, height, color_type, interlace)
    else:
        pixels = _decode_with_pillow(path, data)
    return _drop_opaque_alpha(path, pixels), _png_metadata(path, chunks)


def _decode_with_pillow(path: Path, data: bytes) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.mode == "1":
                image = image.convert("L")
            elif image.mode in ("P", "PA"):
                has_alpha = image.mode == "PA" or "transparency" in image.info
                image = image.convert("RGBA" if has_alpha else "RGB")
            if image.mode not in ("L", "LA", "RGB", "RGBA"):
                raise DataError(f"{path}: unsupported PNG pixel mode {image.mode!r}.")
            pixels = np.asarray(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(
            f"{path} cannot be decoded as PNG ({error}); truncated or corrupt?"
        ) from None
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _drop_opaque_alpha(path: Path, pixels: np.ndarray) -> np.ndarray:
    if pixels.shape[2] in (2, 4):
        alpha = pixels[..., -1]
        if np.any(alpha != np.iinfo(pixels.dtype).max):
            raise DataError(
                f"{path} has transparent pixels; egan transforms take gray or RGB images. Flatten "
                "the image onto a background first."
            )
        pixels = pixels[..., :-1]
    return np.ascontiguousarray(pixels)


def _decode_png16(path, chunks, width, height, color_type, interlace) -> np.ndarray:
    if color_type not in _CHANNELS_OF_COLOR_TYPE:
        raise DataError(f"{path}: invalid colour type {color_type} for a 16-bit PNG.")
    if interlace:
        raise DataError(
            f"{path}: interlaced 16-bit PNGs are not supported; save it non-interlaced."
        )
    if not 0 < width * height <= _MAX_PIXELS:
        raise DataError(f"{path}: image size {width}x{height} is empty or too large.")
    channels = _CHANNELS_OF_COLOR_TYPE[color_type]
    bpp, stride = 2 * channels, 2 * channels * width
    try:
        raw = zlib.decompress(b"".join(p for kind, p in chunks if kind == b"IDAT"))
    except zlib.error:
        raise DataError(
            f"{path} is corrupt or truncated: its image data does not decompress."
        ) from None
    if len(raw) != height * (stride + 1):
        raise DataError(
            f"{path} is corrupt: {len(raw)} bytes of image data, expected {height * (stride + 1)}."
        )
    lines = np.frombuffer(raw, np.uint8).reshape(height, stride + 1)
    out = np.empty((height, stride), np.uint8)
    previous = np.zeros(stride, np.uint8)
    for row in range(height):
        out[row] = previous = _unfilter(path, int(lines[row, 0]), lines[row, 1:], previous, bpp)
    return out.view(">u2").reshape(height, width, channels).astype(np.uint16)


def _unfilter(
    path: Path, kind: int, line: np.ndarray, previous: np.ndarray, bpp: int
) -> np.ndarray:
    """Undo one scanline's PNG filter (spec section 9.2); uint8 arithmetic wraps modulo 256."""
    if kind == 0:
        return line
    if kind == 1:  # Sub: a running sum over pixels, per byte position
        return np.cumsum(line.reshape(-1, bpp), axis=0, dtype=np.uint8).reshape(-1)
    if kind == 2:  # Up
        return line + previous
    if kind not in (3, 4):
        raise DataError(f"{path} is corrupt: unknown PNG filter type {kind}.")
    # Average and Paeth depend on the reconstructed byte to the left: a sequential loop.
    cur, up = bytearray(line.tobytes()), previous.tobytes()
    for i in range(len(cur)):
        left = cur[i - bpp] if i >= bpp else 0
        if kind == 3:
            cur[i] = (cur[i] + ((left + up[i]) >> 1)) & 0xFF
            continue
        upper_left = up[i - bpp] if i >= bpp else 0
        estimate = left + up[i] - upper_left
        pa, pb, pc = abs(estimate - left), abs(estimate - up[i]), abs(estimate - upper_left)
        predictor = left if pa <= pb and pa <= pc else (up[i] if pb <= pc else upper_left)
        cur[i] = (cur[i] + predictor) & 0xFF
    return np.frombuffer(bytes(cur), np.uint8)
