"""The int128 fixed-point codec against Nautilus' own Price and Quantity."""

import numpy as np
import pytest
from nautilus_trader.model.objects import PRICE_MAX
from nautilus_trader.model.objects import QUANTITY_MAX
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity

from catalogs.fixed_point import decode_fixed128
from catalogs.fixed_point import encode_fixed128
from catalogs.fixed_point import mantissas
from catalogs.validation import PRICE_MAX as GRODT_PRICE_MAX
from catalogs.validation import QUANTITY_MAX as GRODT_QUANTITY_MAX


def _raw_ints(array) -> list[int]:
    words = np.frombuffer(array.buffers()[1], dtype=np.uint64).reshape(-1, 2)
    values = []
    for low, high in words:
        raw = int(low) | (int(high) << 64)
        values.append(raw - (1 << 128) if raw >= 1 << 127 else raw)
    return values


EDGE_VALUES = [
    0.0,
    -0.0,
    0.125,  # a binary tie: Nautilus rounds half away from zero
    -0.125,
    2.5,
    -2.5,
    0.49999999999999994,  # trunc(x + 0.5) would round this up; Rust's round does not
    1.005,
    922.3372036854775,  # raw above 2^63: the high word is used
    123456.789,
    -98765.4321,
    1e10 + 0.5,
]


@pytest.mark.parametrize("precision", [0, 1, 2, 3, 5, 9])
def test_encode_matches_nautilus_price_raw(precision):
    rng = np.random.default_rng(precision)
    values = np.r_[EDGE_VALUES, rng.normal(0, 5e3, 500), rng.uniform(-1, 1, 200)]
    values = values[np.abs(values * 10**precision) < 2**53]
    encoded = encode_fixed128(values, precision)
    expected = [Price(float(v), precision).raw for v in values]
    assert _raw_ints(encoded) == expected


def test_encode_matches_nautilus_quantity_raw():
    values = np.array([0.0, 1.5, 2.5, 2300413.7295, 0.00005, 1e9])
    for precision in (0, 4):
        expected = [Quantity(float(v), precision).raw for v in values]
        assert _raw_ints(encode_fixed128(values, precision)) == expected


def test_decode_returns_the_decimal_value():
    values = np.array([-1234.5678, -0.0001, 0.0, 1.1076, 46321.05, 17_000_000.25])
    decoded = decode_fixed128(encode_fixed128(values, 4), 4)
    assert decoded.tolist() == [float(str(Price(float(v), 4))) for v in values]


def test_mantissa_overflow_is_an_error():
    with pytest.raises(ValueError, match="64-bit mantissa"):
        mantissas(np.array([1e12]), 9)


def test_limits_match_nautilus():
    assert GRODT_PRICE_MAX == PRICE_MAX
    assert GRODT_QUANTITY_MAX == QUANTITY_MAX
