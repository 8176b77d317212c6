"""Nautilus fixed-point values as numpy arrays: float <-> 128-bit raw, vectorised.

NautilusTrader (high-precision build, as shipped in the 1.221.0 wheels) stores a ``Price`` or
``Quantity`` as a signed/unsigned 128-bit integer ``raw = value × 10^16`` (``FIXED_PRECISION``).
Parquet keeps each raw value as ``fixed_size_binary[16]``, little-endian two's complement.

Nautilus computes the raw value of a float ``x`` at precision ``p`` as
``round_half_away_from_zero(x × 10^p) × 10^(16 − p)`` (Rust ``f64::round`` on an ``f64`` product,
then exact integer arithmetic). :func:`encode_fixed128` reproduces that bit for bit, doing the
128-bit multiplication with pairs of ``uint64`` words because numpy has no 128-bit integers.
"""

import numpy as np
import pyarrow as pa

FIXED_PRECISION = 16
"""Decimal places of a Nautilus raw value (``nautilus_trader.model.objects.FIXED_PRECISION``)."""

MAX_MANTISSA = float(2**63)
"""Exclusive bound of ``|x × 10^precision|`` handled here (the mantissa must fit an int64)."""

_LOW32 = np.uint64(0xFFFF_FFFF)
_SHIFT32 = np.uint64(32)
_ONE = np.uint64(1)


def round_half_away(scaled: np.ndarray) -> np.ndarray:
    """Round to the nearest integer, ties away from zero (Rust ``f64::round``), exactly.

    ``np.round`` rounds ties to even and ``trunc(x + 0.5)`` misrounds ``0.49999999999999994``; the
    fractional part ``x − trunc(x)`` is exact in binary floating point, so comparing it with 0.5
    gives the same result as Rust.

    Parameters
    ----------
    scaled : np.ndarray
        float64 array, shape (n,).

    Returns
    -------
    np.ndarray
        float64 array of integral values, shape (n,).
    """
    whole = np.trunc(scaled)
    fraction = scaled - whole
    whole += (fraction >= 0.5).astype(np.float64)
    whole -= (fraction <= -0.5).astype(np.float64)
    return whole


def mantissas(values: np.ndarray, precision: int) -> np.ndarray:
    """Integer mantissas at ``precision`` decimals, exactly as Nautilus rounds a float.

    Parameters
    ----------
    values : np.ndarray
        float64, shape (n,), finite, with ``|value × 10^precision| < 2^63``.
    precision : int
        Decimal places, 0..16.

    Returns
    -------
    np.ndarray
        int64, shape (n,): ``round_half_away(value × 10^precision)``.
    """
    _check_precision(precision)
    scaled = np.asarray(values, dtype=np.float64) * float(10**precision)
    rounded = round_half_away(scaled)
    if rounded.size and not np.all(np.abs(rounded) < MAX_MANTISSA):
        raise ValueError(f"a value times 10^{precision} does not fit a 64-bit mantissa")
    return rounded.astype(np.int64)


def encode_fixed128(values: np.ndarray, precision: int) -> pa.FixedSizeBinaryArray:
    """Encode floats as Nautilus raw values, ``fixed_size_binary[16]`` little-endian int128.

    Parameters
    ----------
    values : np.ndarray
        float64, shape (n,); finite and within the 64-bit mantissa bound (see :func:`mantissas`).
    precision : int
        Decimal places of the instrument (price or size precision), 0..16.

    Returns
    -------
    pa.FixedSizeBinaryArray
        Length n, no nulls; element i is ``mantissa_i × 10^(16 − precision)`` as int128.
    """
    return encode_mantissas(mantissas(values, precision), precision)


def encode_mantissas(mantissa: np.ndarray, precision: int) -> pa.FixedSizeBinaryArray:
    """Encode int64 mantissas at ``precision`` decimals as Nautilus int128 raw values.

    ``raw = mantissa × 10^(16 − precision)`` is computed exactly: with ``m = mh·2^32 + ml`` and
    ``s = sh·2^32 + sl`` (``s ≤ 10^16 < 2^54``, so ``sh < 2^22``), every partial product fits a
    uint64 and ``raw = ml·sl + (ml·sh + mh·sl)·2^32 + mh·sh·2^64``.

    Parameters
    ----------
    mantissa : np.ndarray
        int64, shape (n,).
    precision : int
        Decimal places, 0..16.

    Returns
    -------
    pa.FixedSizeBinaryArray
        Length n, 16 bytes per element (low word first, two's complement).
    """
    _check_precision(precision)
    mantissa = np.ascontiguousarray(mantissa, dtype=np.int64)
    n = mantissa.shape[0]
    scale = 10 ** (FIXED_PRECISION - precision)
    scale_high = np.uint64(scale >> 32)
    scale_low = np.uint64(scale & 0xFFFF_FFFF)

    negative = mantissa < 0
    magnitude = np.abs(mantissa).view(np.uint64)  # |int64 min| wraps to 2^63, still right
    m_low = magnitude & _LOW32
    m_high = magnitude >> _SHIFT32

    product_low = m_low * scale_low
    product_mid = m_low * scale_high
    product_mid += m_high * scale_low
    low = product_low + (product_mid << _SHIFT32)
    carry = (low < product_low).view(np.uint8).astype(np.uint64)
    high = m_high * scale_high
    high += product_mid >> _SHIFT32
    high += carry

    if negative.any():
        # Two's complement of the 128-bit value: invert both words and add one to the low word,
        # carrying into the high word when the low word wraps to zero.
        flip = negative.view(np.uint8).astype(np.uint64) * np.uint64(0xFFFF_FFFF_FFFF_FFFF)
        add = negative.view(np.uint8).astype(np.uint64)
        low ^= flip
        low += add
        high ^= flip
        high += add & (low == 0).view(np.uint8).astype(np.uint64)

    words = np.empty((n, 2), dtype=np.uint64)
    words[:, 0] = low
    words[:, 1] = high
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, pa.py_buffer(words)])


def decode_fixed128(column: pa.Array | pa.ChunkedArray, precision: int) -> np.ndarray:
    """Decode Nautilus int128 raw values to floats equal to the decimal value.

    The mantissa ``raw / 10^(16 − precision)`` is recovered by rounding (exact for mantissas below
    2^52, i.e. any value the encoder accepts with fewer than 16 significant digits) and divided by
    ``10^precision``; the quotient of two exactly representable numbers is
    correctly rounded, so the result equals ``float(str(Price))``.

    Parameters
    ----------
    column : pa.Array | pa.ChunkedArray
        ``fixed_size_binary[16]``, length n, no nulls.
    precision : int
        Decimal places the values were written with (parquet metadata ``price_precision`` or
        ``size_precision``).

    Returns
    -------
    np.ndarray
        float64, shape (n,).
    """
    _check_precision(precision)
    words = _words(column)
    low = words[:, 0].copy()
    high = words[:, 1].copy()
    negative = high >= np.uint64(1 << 63)
    if negative.any():
        # Work on the magnitude: converting a small negative value's words to float directly
        # would cancel catastrophically (−2^64 + a number near 2^64).
        low[negative] = ~low[negative] + _ONE
        high[negative] = ~high[negative] + (low[negative] == 0).view(np.uint8).astype(np.uint64)
    magnitude = high.astype(np.float64) * 18446744073709551616.0 + low.astype(np.float64)
    mantissa = np.rint(magnitude / float(10 ** (FIXED_PRECISION - precision)))
    mantissa[negative] = -mantissa[negative]
    return mantissa / float(10**precision)


def _words(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The (n, 2) uint64 words of a fixed_size_binary[16] column, without copying one chunk."""
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 0:
            return np.empty((0, 2), dtype=np.uint64)
        if column.num_chunks > 1:
            return np.concatenate([_words(chunk) for chunk in column.chunks])
        column = column.chunk(0)
    if column.null_count:
        raise ValueError("fixed-point column has nulls")
    data = column.buffers()[1]
    start = column.offset * 16
    raw = np.frombuffer(data, dtype=np.uint8, count=len(column) * 16, offset=start)
    return raw.view(np.uint64).reshape(-1, 2)


def _check_precision(precision: int) -> None:
    if not 0 <= precision <= FIXED_PRECISION:
        raise ValueError(f"precision must be 0..{FIXED_PRECISION}, was {precision}")
