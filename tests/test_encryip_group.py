"""The CS-lite groups: RFC 3526 prime re-derived, safe primes, arithmetic known answers, encodings."""

import hashlib
import random

import pytest

from egan_jax.encryip import group as G
from egan_jax.encryip.group import RFC3526_2048, TEST_GROUP_64, TOY_GROUP_23, Group
from egan_jax.errors import KeyFileError, ShapeError


def _pi_times_power_of_two(bits: int) -> int:
    """floor(pi * 2^bits) by Machin's formula in integers (64 guard bits)."""
    guard = 64
    one = 1 << (bits + guard)

    def arctan_inverse(n: int) -> int:
        total, term, k, sign = 0, one // n, 1, 1
        while term:
            total += sign * (term // k)
            term //= n * n
            k, sign = k + 2, -sign
        return total

    return (16 * arctan_inverse(5) - 4 * arctan_inverse(239)) >> guard


def test_rfc3526_prime_matches_its_defining_formula():
    # RFC 3526 section 3: p = 2^2048 - 2^1984 - 1 + 2^64 * { [2^1918 pi] + 124476 }
    formula = 2**2048 - 2**1984 - 1 + 2**64 * (_pi_times_power_of_two(1918) + 124476)
    assert RFC3526_2048.p == formula
    assert RFC3526_2048.p.bit_length() == 2048
    assert RFC3526_2048.element_bytes == 256


def test_groups_are_safe_primes():
    for group in (RFC3526_2048, TEST_GROUP_64, TOY_GROUP_23):
        assert G.verify_safe_prime(group.p), group.name
        assert group.p == 2 * group.q + 1
    assert not G.verify_safe_prime(2**61 - 1)  # a prime whose (p - 1) / 2 is not prime
    assert not G.is_probable_prime(RFC3526_2048.p + 2)


def test_miller_rabin_agrees_with_trial_division():
    def slow(n):
        return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))

    rng = random.Random(0)
    assert [n for n in range(2000) if G.is_probable_prime(n, rng=rng)] == [
        n for n in range(2000) if slow(n)
    ]
    assert not G.is_probable_prime(561 * 1105, rng=rng)  # product of Carmichael numbers


def test_toy_group_known_answers():
    toy = TOY_GROUP_23
    assert (toy.p, toy.q, toy.g) == (23, 11, 4)
    # 4^1 .. 4^11 mod 23, worked by hand: 4, 16, 64-46, 72-69, 12, 48-46, 8, 32-23, 36-23, 52-46, 1
    assert [toy.exp(4, k) for k in range(1, 12)] == [4, 16, 18, 3, 12, 2, 8, 9, 13, 6, 1]
    squares = {x * x % 23 for x in range(1, 23)}
    assert squares == {1, 2, 3, 4, 6, 8, 9, 12, 13, 16, 18}
    assert [x for x in range(-2, 30) if toy.is_member(x)] == sorted(squares - {1})
    assert toy.inv(4) == 6 and toy.mul(4, 6) == 1 and toy.div(3, 4) == 18
    assert toy.exp(4, 11 + 3) == toy.exp(4, 3)  # exponents live mod q


def test_jacobi_known_values_and_euler_criterion():
    assert [G.jacobi(a, 15) for a in (1, 2, 7, 5)] == [1, 1, -1, 0]  # (2|15)=(2|3)(2|5)=1
    assert G.jacobi(2, 7) == 1 and G.jacobi(3, 7) == -1
    rng = random.Random(1)
    for group in (TEST_GROUP_64, RFC3526_2048):
        for _ in range(6):
            x = rng.randrange(2, group.p - 1)
            euler = pow(x, group.q, group.p)
            assert group.is_member(x) == (euler == 1)
            assert G.jacobi(x, group.p) == (1 if euler == 1 else -1)
    with pytest.raises(ValueError):
        G.jacobi(3, 10)


@pytest.mark.parametrize("group", [TEST_GROUP_64, RFC3526_2048], ids=lambda g: g.name)
def test_membership_rejects_out_of_range_and_non_residues(group):
    p = group.p
    for bad in (0, 1, p - 1, p, p + 4, -4, 4.0, True, "4"):
        assert not group.is_member(bad), bad
    assert group.is_member(4) and group.is_member(group.g)
    assert group.exp(group.g, group.q) == 1
    with pytest.raises(ShapeError, match="not an element"):
        group.check_member(p - 1, "u")


@pytest.mark.parametrize("window", [1, 4, 6])
def test_fixed_base_matches_pow(window):
    rng = random.Random(window)
    for group in (TEST_GROUP_64, RFC3526_2048):
        base = group.random_element(rng)
        table = group.fixed_base(base, window)
        exponents = [0, 1, group.q - 1, group.q, group.q + 5] + [
            group.random_scalar(rng) for _ in range(3)
        ]
        for e in exponents:
            assert table.exp(e) == pow(base, e % group.q, group.p)


def test_powmod_backend_equals_builtin_pow():
    rng = random.Random(2)
    p = RFC3526_2048.p
    for _ in range(3):
        b, e = rng.randrange(p), rng.randrange(p)
        assert G.powmod(b, e, p) == pow(b, e, p)
    assert G.BACKEND in ("gmpy2", "python")


@pytest.mark.parametrize("group", [TEST_GROUP_64, RFC3526_2048], ids=lambda g: g.name)
def test_class_encoding_round_trips_and_follows_its_spec(group):
    rng = random.Random(3)
    for k in (2, 10):
        for class_id in range(k):
            m = group.encode_class(class_id, k, rng)
            assert group.is_member(m)
            assert group.decode_class(m, k) == class_id
            digest = hashlib.sha256(
                b"egan_jax/encryip/v1/class" + m.to_bytes(group.element_bytes, "big")
            ).digest()
            assert int.from_bytes(digest, "big") % k == class_id
    with pytest.raises(ShapeError):
        group.encode_class(10, 10, rng)


def test_class_decoding_is_uniform_over_random_elements():
    rng = random.Random(4)
    counts = [0] * 10
    for _ in range(3000):
        counts[TEST_GROUP_64.decode_class(TEST_GROUP_64.random_element(rng), 10)] += 1
    # Binomial(3000, 0.1): mean 300, sd 16.4; 5 sd either side
    assert all(218 <= c <= 382 for c in counts), counts


def test_random_draws_are_in_range_and_reproducible():
    draws = [TEST_GROUP_64.random_scalar(random.Random(9)) for _ in range(2)]
    assert draws[0] == draws[1] and 1 <= draws[0] < TEST_GROUP_64.q
    production = {TEST_GROUP_64.random_scalar() for _ in range(4)}  # CSPRNG path
    assert len(production) == 4 and all(1 <= s < TEST_GROUP_64.q for s in production)
    assert all(TOY_GROUP_23.random_element(random.Random(s)) != 1 for s in range(50))


def test_hex_serialization_checks_width_and_membership():
    group = TEST_GROUP_64
    x = group.random_element(random.Random(5))
    assert group.from_hex(group.to_hex(x)) == x
    assert len(group.to_hex(x)) == 16
    with pytest.raises(ShapeError, match="16-digit"):
        group.from_hex(group.to_hex(x)[2:])
    with pytest.raises(ShapeError, match="not valid hex"):
        group.from_hex("zz" * 8)
    with pytest.raises(ShapeError, match="not an element"):
        group.from_hex(group.to_hex(group.p - 1))


def test_group_names_and_labels():
    assert RFC3526_2048.secure and "INSECURE" not in RFC3526_2048.name
    assert not TEST_GROUP_64.secure and "INSECURE" in TEST_GROUP_64.name
    assert G.group_by_name(RFC3526_2048.name) is RFC3526_2048
    with pytest.raises(KeyFileError, match="unknown group"):
        G.group_by_name("modp1024")
    with pytest.raises(ValueError, match="quadratic residue"):
        Group("bad", 23, 5)  # 5 is not a square mod 23
    assert "p=" not in repr(RFC3526_2048)
