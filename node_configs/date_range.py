"""The one date range of a run.

A node config may write its range at node level (``start``/``end``) or inside its ``data:``
entries. Whatever is reported (bars, the equity curve, CAGR/Sharpe/volatility, the final mark of
an open position) must cover the same range as the bars the engine saw, so the range is resolved
once, when the config is validated:

- every ``start`` written (node level and data entries) must name the same instant, and so must
  every ``end``; two different ones are an error naming both fields;
- the resolved values become the node's ``start``/``end``, which every data entry, the engine
  and the reports then use;
- ``start`` after ``end`` is an error naming the field; an unparseable date names its field.

Dates are ISO 8601 strings (``2010-01-01``, ``2010-01-01T21:00:00Z``); naive ones are UTC.
"""

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import pandas as pd

__all__ = ["resolve_date_range", "to_utc"]


def to_utc(value: str, field: str) -> pd.Timestamp:
    """Parse an ISO date or timestamp as UTC (naive values are taken as UTC).

    Raises
    ------
    ValueError
        Naming ``field`` when ``value`` is not a date.
    """
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{field}: {value!r} is not an ISO date or timestamp ({e})") from None
    if pd.isna(stamp):
        raise ValueError(f"{field}: {value!r} is not an ISO date or timestamp")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _entry_value(entry: Any, name: str) -> Any:
    if isinstance(entry, Mapping):
        return entry.get(name)
    return getattr(entry, name, None)


def resolve_date_range(
    start: Any,
    end: Any,
    data: Sequence[Any],
    prefix: str = "",
) -> tuple[str | None, str | None]:
    """The run's ``(start, end)`` from the node-level values and the data entries' own.

    Parameters
    ----------
    start, end
        The node-level values as written (ISO strings, or None).
    data
        The ``data:`` entries (mappings or :class:`~node_configs.schema.DataSpec`).
    prefix
        Where the node-level fields sit, for messages (``"data_clients[0]."`` for a replay
        client).

    Returns
    -------
    tuple[str | None, str | None]
        The agreed start and end as written where they were first found (None: unbounded).

    Raises
    ------
    ValueError
        Two fields naming different instants (both named), an unparseable date, or start
        after end.
    """
    resolved: dict[str, tuple[str, str, pd.Timestamp] | None] = {}
    for name, node_value in (("start", start), ("end", end)):
        candidates: list[tuple[str, Any]] = [(f"{prefix}{name}", node_value)]
        candidates += [
            (f"{prefix}data[{index}].{name}", _entry_value(entry, name))
            for index, entry in enumerate(data)
        ]
        agreed: tuple[str, str, pd.Timestamp] | None = None
        for field, value in candidates:
            if value is None:
                continue
            text = str(value)
            stamp = to_utc(text, field)
            if agreed is None:
                agreed = (field, text, stamp)
            elif stamp != agreed[2]:
                raise ValueError(
                    f"{field} ({text!r}) and {agreed[0]} ({agreed[1]!r}) differ: a run has one "
                    f"date range; write it once (node-level `{name}`) or make them equal",
                )
        resolved[name] = agreed
    first, last = resolved["start"], resolved["end"]
    if first is not None and last is not None and first[2] > last[2]:
        raise ValueError(
            f"{first[0]}: {first[1]!r} is after {last[0]} ({last[1]!r})",
        )
    return (first[1] if first else None, last[1] if last else None)
