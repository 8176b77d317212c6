"""The run directory every node writes into, and the JSON files it holds (``summary.json``, ...)."""

import json
import math
import secrets
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["json_safe", "new_run_dir", "write_json"]


def new_run_dir(runs_dir: Path, name: str) -> Path:
    """A fresh directory ``<runs_dir>/<name>/<UTC timestamp>-<random>``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = Path(runs_dir) / name / f"{stamp}-{secrets.token_hex(3)}"
    path.mkdir(parents=True, exist_ok=False)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return str(value)


def write_json(path: Path, payload: Any) -> None:
    """``payload`` as indented JSON (NaN/inf as null, other non-JSON values as strings)."""
    path.write_text(json.dumps(json_safe(payload), indent=2, default=_json_default) + "\n")


def json_safe(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null (strict parsers reject the bare tokens)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
