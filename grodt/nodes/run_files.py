"""The run directory every node writes into, and the files it holds (``config.yaml``,
``summary.json``, ...), secret values redacted (:func:`node_configs.secrets.redact_secrets`)."""

import json
import math
import secrets
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from node_configs.secrets import redact_secrets

__all__ = ["json_safe", "new_run_dir", "write_config_yaml", "write_json"]


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
    """``payload`` as indented JSON (NaN/inf as null, other non-JSON values as strings, secret
    values as ``***``)."""
    text = json.dumps(json_safe(redact_secrets(payload)), indent=2, default=_json_default)
    path.write_text(text + "\n")


def write_config_yaml(run_dir: Path, document: Any) -> Path:
    """The run's resolved node config as ``<run_dir>/config.yaml``, secret values as ``***``
    (``env:NAME`` references stay: they say which variable the run read)."""
    path = Path(run_dir) / "config.yaml"
    path.write_text(yaml.safe_dump(redact_secrets(document), sort_keys=False))
    return path


def json_safe(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null (strict parsers reject the bare tokens)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
