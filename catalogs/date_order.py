"""Day-first or month-first: numeric dates such as ``02/01/2024`` read one way for a whole column.

``02/01/2024`` is 2 January in most of the world and 1 February in the US. The order is decided
from the whole column, never row by row: a value whose first part is above 12 (``25/01/2024``)
proves day-first, one whose second part is above 12 (``01/25/2024``) proves month-first. A column
with both is an error (a file never mixes the two conventions); a column with neither (every day
is 12 or less) is ambiguous and needs the caller to say which (``dayfirst``), unless both readings
give the same dates (``05/05/2024``). Matching values are rewritten to ISO-8601
(``2024-01-02`` + the rest of the text, e.g. `` 09:30``), which the ISO parsers then read.

Recognised: ``D/M/Y`` or ``M/D/Y`` with ``/``, ``.`` or ``-`` (the same one twice), one- or
two-digit day and month, four-digit years or two-digit years (``69``-``99`` → 19xx, ``00``-``68``
→ 20xx, as strptime's ``%y``), optionally followed by a space or ``T`` and a time of day.
"""

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from grodt.core.errors import DataValidationError

_NUMERIC_DATE = (
    r"^(?P<a>\d{1,2})(?P<s1>[/.-])(?P<b>\d{1,2})(?P<s2>[/.-])(?P<y>\d{4}|\d{2})"
    r"(?P<rest>(?:[ T].*)?)$"
)
_NUMERIC_DATE_RE = re.compile(_NUMERIC_DATE)
_HINT = (
    "say which with --dayfirst or --monthfirst (ReadOptions(dayfirst=...), or `dayfirst:` in "
    "the instrument spec), or give the format, e.g. --date-format '%d/%m/%Y'"
)


@dataclass(frozen=True)
class NumericDates:
    """A text column with numeric dates rewritten to ISO-8601.

    Attributes
    ----------
    text : pa.Array
        string, shape (n,): ISO dates where a value matched, the original text elsewhere.
    dayfirst : bool
        The order the column was read in.
    notes : dict[int, str]
        Position → why a matching value is not a date in that order (e.g. month 13).
    """

    text: pa.Array
    dayfirst: bool
    notes: dict[int, str]


def looks_like_numeric_date(value: str) -> bool:
    """Whether one value is a ``D/M/Y`` or ``M/D/Y`` date (checks a column's first value, so
    ISO columns skip the column-wide regex)."""
    return _NUMERIC_DATE_RE.match(value) is not None


def rewrite_numeric_dates(
    text: pa.Array,
    dayfirst: bool | None,
    rows: np.ndarray,
    source: str,
    column: str,
) -> NumericDates | None:
    """Read ``D/M/Y`` or ``M/D/Y`` dates of a column in one order; None if the column has none.

    Parameters
    ----------
    text : pa.Array
        string, shape (n,), trimmed timestamp text.
    dayfirst : bool | None
        The order the caller says; None detects it from the whole column.
    rows : np.ndarray
        int64, shape (n,): the 1-based data row of each value, for messages.
    source, column : str
        The file and column, for messages.

    Raises
    ------
    DataValidationError
        When the column mixes day-first and month-first dates, or (``dayfirst`` None) when it
        is ambiguous; the message names rows and says how to choose.
    """
    parts = pc.extract_regex(text, _NUMERIC_DATE)
    matched = np.asarray(pc.fill_null(pc.is_valid(parts), False).to_numpy(zero_copy_only=False))
    if not matched.any():
        return None
    separators_agree = np.asarray(
        pc.fill_null(
            pc.equal(pc.struct_field(parts, "s1"), pc.struct_field(parts, "s2")), False
        ).to_numpy(zero_copy_only=False)
    )
    matched &= separators_agree
    first = _integers(parts, "a")
    second = _integers(parts, "b")
    year = _integers(parts, "y")
    two_digit_year = np.asarray(
        pc.fill_null(pc.equal(pc.utf8_length(pc.struct_field(parts, "y")), 2), False).to_numpy(
            zero_copy_only=False
        )
    )
    year = np.where(two_digit_year, np.where(year >= 69, 1900 + year, 2000 + year), year)

    only_day_first = matched & (first > 12) & (second <= 12)
    only_month_first = matched & (second > 12) & (first <= 12)
    if dayfirst is None:
        if only_day_first.any() and only_month_first.any():
            a, b = int(np.argmax(only_day_first)), int(np.argmax(only_month_first))
            day_first_value, month_first_value = text[a].as_py(), text[b].as_py()
            raise DataValidationError(
                f"mixes day-first and month-first dates: row {rows[a]} ({day_first_value!r}) can "
                f"only be day-first, row {rows[b]} ({month_first_value!r}) only month-first; a "
                "file must use one convention: fix the file",
                source,
                column=column,
                check="parse",
            )
        if only_day_first.any():
            dayfirst = True
        elif only_month_first.any():
            dayfirst = False
        elif np.array_equal(first[matched], second[matched]):
            dayfirst = False  # 05/05/2024: both readings are the same date
        else:
            example = int(np.argmax(matched & (first != second)))
            raise DataValidationError(
                f"ambiguous dates: every day and month in the column is 12 or less, so "
                f"{text[example].as_py()!r} (row {rows[example]}) may be day-first or month-first; "
                + _HINT,
                source,
                column=column,
                check="parse",
            )
    day, month = (first, second) if dayfirst else (second, first)
    usable = matched & (month >= 1) & (month <= 12)
    order = "day-first" if dayfirst else "month-first"
    notes = {
        int(pos): f"month {month[pos]} > 12 reading the dates {order} (as the column is read)"
        for pos in np.flatnonzero(matched & ~usable)
    }
    iso = pc.binary_join_element_wise(
        _padded(year, 4),
        _padded(month, 2),
        _padded(day, 2),
        "-",
    )
    iso = pc.binary_join_element_wise(iso, pc.fill_null(pc.struct_field(parts, "rest"), ""), "")
    rewritten = pc.if_else(pa.array(usable), iso, text)
    return NumericDates(text=rewritten, dayfirst=dayfirst, notes=notes)


def _integers(parts: pa.Array, name: str) -> np.ndarray:
    field = pc.fill_null(pc.struct_field(parts, name), "0")
    return np.asarray(pc.cast(field, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _padded(values: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(pa.array(values.astype(str)), width, "0")


__all__ = ["NumericDates", "looks_like_numeric_date", "rewrite_numeric_dates"]
