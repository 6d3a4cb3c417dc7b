"""FF1 format-preserving encryption (NIST SP 800-38G, Algorithm 7) and the FFX pixel tables built on it.

FF1 is a 10-round Feistel cipher on strings of ``n`` digits in base ``radix``; its round function is
AES-CBC-MAC (the PRF of SP 800-38G) keyed with a 128-, 192- or 256-bit AES key, and it takes a public
*tweak* of any length. :func:`ff1_encrypt` / :func:`ff1_decrypt` implement the algorithm exactly and are
checked against all nine NIST sample vectors (FF1samples.pdf; see tests/test_ff1.py).

Key-protected classifiers (AprilPyone & Kiya, APSIPA Trans. 2021) use FF1 ("FFX") on single pixel values:
a value ``v`` in 0..255 written as three decimal digits is encrypted with radix 10 and length 3, giving a
value in 0..999. Because one key and one tweak are used for every pixel, the cipher collapses to a fixed
table of 256 entries, which :func:`ffx_table` precomputes (the transforms then only index it).

Domain size and known attacks. SP 800-38G (2016) requires ``radix**minlen >= 100``; Rev. 1 raises this to
``radix**minlen >= 1_000_000`` because of message-recovery attacks on small domains (Bellare, Hoang and
Tessaro, CCS 2016; Hoang, Tessaro and Trieu, "The curse of small domains", CRYPTO 2018). This module
enforces only the 2016 bound, since Kiya et al.'s domains are smaller than Rev. 1 allows: 1000 strings
(decimal variant) and 256 (binary variant). We implement the algorithm for the scheme's domain and make
no standard-compliance claim for those tiny domains. In this use the attacks are beside the point: with a
single tweak the cipher *is* its 256-entry table, so anyone who sees one plain image and its transformed
version with all 256 pixel values reads the table off directly (a codebook, no cryptanalysis needed).
FF1 serves here as a keyed, reproducible pseudorandom permutation; the protection it gives must not be
assumed to survive known plaintext.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from egan_jax.errors import ConfigError, ShapeError

MIN_RADIX = 2
MAX_RADIX = 2**16
MIN_DOMAIN = 100  # SP 800-38G (2016): radix ** minlen >= 100 (Rev. 1 would require 1_000_000).
MAX_LENGTH = 2**32 - 1
AES_KEY_BYTES = (16, 24, 32)
FFX_VARIANTS = ("decimal", "binary")
_ROUNDS = 10

BlockCipher = Callable[[bytes], bytes]


def _aes_ecb(key: bytes) -> BlockCipher:
    """The AES block function CIPH_K; ``update`` on an ECB encryptor takes any whole number of blocks."""
    if not isinstance(key, bytes | bytearray):
        raise ShapeError(
            f"FF1 key must be bytes, got {type(key).__name__}; pass the raw AES key bytes."
        )
    if len(key) not in AES_KEY_BYTES:
        raise ShapeError(
            f"FF1 key must be 16, 24 or 32 bytes (AES-128/192/256), got {len(key)} bytes; derive one "
            "with egan_jax.keys.derive_bytes(key, label, 32)."
        )
    return Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor().update


def _check_radix(radix: int) -> int:
    try:
        radix = operator.index(radix)
    except TypeError:
        raise ConfigError(f"FF1 radix must be an integer, got {type(radix).__name__}.") from None
    if not MIN_RADIX <= radix <= MAX_RADIX:
        raise ConfigError(f"FF1 radix must be in [{MIN_RADIX}, {MAX_RADIX}], got {radix}.")
    return radix


def _check_tweak(tweak: bytes) -> bytes:
    if not isinstance(tweak, bytes | bytearray):
        raise ShapeError(f"FF1 tweak must be bytes, got {type(tweak).__name__}; use b'' for none.")
    if len(tweak) > MAX_LENGTH:
        raise ShapeError(f"FF1 tweak is {len(tweak)} bytes; the maximum is {MAX_LENGTH}.")
    return bytes(tweak)


def _check_digits(digits: Sequence[int], radix: int) -> list[int]:
    try:
        values = [operator.index(d) for d in digits]
    except TypeError:
        raise ShapeError(
            "FF1 input must be a sequence of integer digits (most significant first), e.g. [2, 5, 5]."
        ) from None
    n = len(values)
    if n < 2 or n > MAX_LENGTH:
        raise ShapeError(f"FF1 needs between 2 and {MAX_LENGTH} digits, got {n}.")
    if radix**n < MIN_DOMAIN:
        raise ShapeError(
            f"FF1 domain radix**n = {radix}**{n} = {radix**n} is below {MIN_DOMAIN} (SP 800-38G); "
            "use more digits."
        )
    for position, d in enumerate(values):
        if not 0 <= d < radix:
            raise ShapeError(
                f"FF1 digit {d} at position {position} is outside [0, {radix}) for radix {radix}."
            )
    return values


def _num(digits: Sequence[int], radix: int) -> int:
    """NUM_radix(X): the integer a digit string denotes, most significant digit first."""
    x = 0
    for d in digits:
        x = x * radix + d
    return x


def _str(x: int, radix: int, m: int) -> list[int]:
    """STR^m_radix(x): the m-digit representation of 0 <= x < radix**m."""
    out = [0] * m
    for i in range(m - 1, -1, -1):
        x, out[i] = divmod(x, radix)
    return out


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(16, "big")


def _ff1(ciph: BlockCipher, tweak: bytes, x: list[int], radix: int, *, decrypt: bool) -> list[int]:
    """Algorithms 7 (encrypt) and 8 (decrypt) of SP 800-38G on validated input."""
    n = len(x)
    u = n // 2
    v = n - u
    # b = ceil(ceil(v * log2(radix)) / 8); (radix**v - 1).bit_length() is ceil(log2(radix**v)) exactly.
    b = ((radix**v - 1).bit_length() + 7) // 8
    d = 4 * ((b + 3) // 4) + 4
    t = len(tweak)
    p_block = (
        bytes([1, 2, 1])
        + radix.to_bytes(3, "big")
        + bytes([10, u % 256])
        + n.to_bytes(4, "big")
        + t.to_bytes(4, "big")
    )
    mac_of_p = ciph(p_block)  # the PRF is CBC-MAC over P || Q, and P is the same in every round
    q_prefix = tweak + bytes((-t - b - 1) % 16)
    extra_blocks = (d + 15) // 16 - 1
    modulus = {u: radix**u, v: radix**v}

    def round_value(i: int, half: int) -> int:
        q = q_prefix + bytes([i]) + half.to_bytes(b, "big")
        r = mac_of_p
        for j in range(0, len(q), 16):
            r = ciph(_xor(r, q[j : j + 16]))
        s = r + b"".join(ciph(_xor(r, j.to_bytes(16, "big"))) for j in range(1, extra_blocks + 1))
        return int.from_bytes(s[:d], "big")

    a, bb = _num(x[:u], radix), _num(x[u:], radix)
    if not decrypt:
        for i in range(_ROUNDS):
            m = u if i % 2 == 0 else v
            a, bb = bb, (a + round_value(i, bb)) % modulus[m]
    else:
        for i in reversed(range(_ROUNDS)):
            m = u if i % 2 == 0 else v
            bb, a = a, (bb - round_value(i, a)) % modulus[m]
    return _str(a, radix, u) + _str(bb, radix, v)


def ff1_encrypt(key: bytes, tweak: bytes, digits: Sequence[int], radix: int) -> list[int]:
    """FF1.Encrypt(K, T, X) of NIST SP 800-38G (Algorithm 7).

    Args:
      key: AES key, 16, 24 or 32 bytes.
      tweak: public tweak, any length (``b""`` for none).
      digits: plaintext ``X``, ``n >= 2`` digits in ``[0, radix)``, most significant first, with
        ``radix**n >= 100``.
      radix: base, 2..65536.

    Returns:
      The ciphertext, ``n`` digits in ``[0, radix)``.

    Raises:
      ShapeError: bad key length, tweak type, digit count or digit value.
      ConfigError: radix out of range.
    """
    radix = _check_radix(radix)
    x = _check_digits(digits, radix)
    return _ff1(_aes_ecb(key), _check_tweak(tweak), x, radix, decrypt=False)


def ff1_decrypt(key: bytes, tweak: bytes, digits: Sequence[int], radix: int) -> list[int]:
    """FF1.Decrypt(K, T, Y) of NIST SP 800-38G (Algorithm 8): the inverse of :func:`ff1_encrypt`."""
    radix = _check_radix(radix)
    y = _check_digits(digits, radix)
    return _ff1(_aes_ecb(key), _check_tweak(tweak), y, radix, decrypt=True)


def _variant_format(variant: str) -> tuple[int, int]:
    """(radix, length) in which a pixel value 0..255 is written for FF1."""
    if variant == "decimal":
        return 10, 3
    if variant == "binary":
        return 2, 8
    raise ConfigError(f"Unknown FFX variant {variant!r}; choose one of {FFX_VARIANTS}.")


def ffx_table(aes_key: bytes, *, variant: str = "decimal", tweak: bytes = b"") -> np.ndarray:
    """FF1 applied to every pixel value 0..255, as a lookup table.

    Args:
      aes_key: AES key (16, 24 or 32 bytes), e.g. ``egan_jax.keys.derive_bytes(key, "ffx", 32)``.
      variant: ``"decimal"`` (Kiya et al.): ``v`` as three decimal digits, FF1 with radix 10 and length
        3; entries lie in 0..999 and form a bijection onto a 256-element subset (FF1 permutes all 1000
        three-digit strings, so 0..255 may map anywhere in 0..999). ``"binary"``: ``v`` as 8 bits, radix
        2, length 8; the table is a permutation of 0..255.
      tweak: FF1 tweak (public), default none.

    Returns:
      int32 array ``[256]``: ``table[v]`` is the encrypted value of ``v``.
    """
    radix, length = _variant_format(variant)
    ciph = _aes_ecb(aes_key)
    tweak = _check_tweak(tweak)
    table = np.empty(256, np.int32)
    for value in range(256):
        encrypted = _ff1(ciph, tweak, _str(value, radix, length), radix, decrypt=False)
        table[value] = _num(encrypted, radix)
    return table


def ffx_inverse_table(table: np.ndarray, *, size: int) -> np.ndarray:
    """The inverse of an injective lookup table.

    Args:
      table: integer array ``[k]`` with distinct values in ``[0, size)``, e.g. from :func:`ffx_table`.
      size: the range of the table (1000 for the decimal variant, 256 for the binary one).

    Returns:
      int32 array ``[size]``: ``inverse[table[v]] == v``; ``-1`` where no ``v`` maps.
    """
    table = np.asarray(table)
    if table.ndim != 1 or not np.issubdtype(table.dtype, np.integer):
        raise ShapeError(
            f"Lookup table must be a 1-D integer array, got shape {table.shape}, dtype {table.dtype}."
        )
    if table.size and (table.min() < 0 or table.max() >= size):
        raise ShapeError(
            f"Lookup table values must lie in [0, {size}), got [{table.min()}, {table.max()}]; "
            "pass size=1000 for the decimal FFX variant, 256 for the binary one."
        )
    if np.unique(table).size != table.size:
        raise ShapeError("Lookup table is not injective (repeated values); it cannot be inverted.")
    inverse = np.full(size, -1, np.int32)
    inverse[table] = np.arange(table.size, dtype=np.int32)
    return inverse
