"""Flatten node configs into MLflow params and run summaries into MLflow metrics.

MLflow params are flat ``key → string`` pairs (key ≤ 250 characters of ``[A-Za-z0-9_.\\- :/]``,
value ≤ 6000 characters); metrics are flat ``key → float``. A node config is a nested YAML
document, so::

    {"strategies": [{"path": "strategies.ema_cross:EMACross",
                     "config": {"fast_ema_period": 20}}]}

becomes ``{"strategies.0.path": "strategies.ema_cross:EMACross",
"strategies.0.config.fast_ema_period": "20"}``. Lists of scalars stay one param holding their
JSON text (``data.0.bar_types = ["SPX.SAMPLE-1-DAY-LAST-EXTERNAL"]``), so a param's meaning
does not depend on list length. The full YAML is logged as an artifact as well, so a truncated
value never loses information. At most :data:`MAX_PARAMS` params are logged (the largest shipped
config flattens to 1,492); beyond that ``params.truncated`` says how many were left out, so a
pathological config can never stall the tracking store with hundreds of thousands of rows.
"""

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from node_configs.secrets import redact_secrets

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_PARAMS = 2000
_TRUNCATED = "…[truncated]"
_BAD_KEY_CHARS = re.compile(r"[^\w.\- :/]")


def sanitise_key(key: str) -> str:
    """A valid MLflow key: bad characters become ``_``, repeated/edge slashes are removed."""
    key = _BAD_KEY_CHARS.sub("_", key)
    key = re.sub(r"/+", "/", key).strip("/")
    parts = [p if p not in (".", "..") else p.replace(".", "_") for p in key.split("/")]
    key = "/".join(parts)
    if len(key) > MAX_KEY_LENGTH:
        digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:8]
        key = key[: MAX_KEY_LENGTH - 9] + "~" + digest
    return key or "_"


def _param_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def _is_scalar_list(value: list | tuple) -> bool:
    return all(not isinstance(item, Mapping | list | tuple) for item in value)


def flatten_params(document: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten a config document into MLflow params (see the module docstring).

    Parameters
    ----------
    document : Mapping[str, Any]
        A resolved YAML document (includes already merged).
    prefix : str
        Prepended to every key (``"node."``).

    Returns
    -------
    dict[str, str]
        Sanitised keys in document order; values are strings, truncated to 6000 characters; at
        most ``MAX_PARAMS`` keys plus ``params.truncated`` (the number left out) when cut. Secret
        values are ``***`` (:func:`node_configs.secrets.redact_secrets`).
    """
    flat: dict[str, str] = {}
    left_out = 0

    def visit(value: Any, key: str) -> None:
        nonlocal left_out
        if isinstance(value, Mapping):
            if not value and key:
                flat[key] = "{}"
            for name, child in value.items():
                visit(child, f"{key}.{name}" if key else str(name))
            return
        if isinstance(value, list | tuple) and value and not _is_scalar_list(value):
            for index, child in enumerate(value):
                visit(child, f"{key}.{index}")
            return
        if len(flat) >= MAX_PARAMS:
            left_out += 1
            return
        text = _param_text(list(value) if isinstance(value, tuple) else value)
        if len(text) > MAX_PARAM_VALUE_LENGTH:
            text = text[: MAX_PARAM_VALUE_LENGTH - len(_TRUNCATED)] + _TRUNCATED
        flat[sanitise_key(key)] = text

    visit(redact_secrets(document), prefix.rstrip("."))
    if left_out:
        flat["params.truncated"] = str(left_out)
    return flat


def _numeric(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def flatten_metrics(
    values: Mapping[str, Any],
    prefix: str = "",
    skip: frozenset[str] = frozenset(),
) -> dict[str, float]:
    """Numeric leaves of a nested mapping as ``prefix.a.b → float``.

    Strings, lists and ``None`` are left out (they are params or artifacts, not metrics).
    NaN is kept (MLflow stores it as NaN); ±inf is kept as well (MLflow clamps it to ±1.7e308),
    so "profit factor = inf" is not silently lost.
    """
    flat: dict[str, float] = {}
    for key, value in values.items():
        if key in skip:
            continue
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, name))
            continue
        number = _numeric(value)
        if number is not None:
            flat[sanitise_key(name)] = number
    return flat
