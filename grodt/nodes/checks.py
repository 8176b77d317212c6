"""``grodt live CONFIG --check``: validate a live config and its environment without connecting.

Every problem found is listed (not only the first), each naming what to fix: the config field,
the missing environment variable and what it is for, the missing adapter extra, the bar type
absent from the catalog, the instrument a strategy trades that no data client provides.
Environment variables are reported as set or missing, never with their values. What is ready but
risky (an execution client that trades real money) is a ``WARN`` line, never an ``ok`` one.
"""

import importlib
import os
import tempfile
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId

from grodt.core.errors import ConfigError
from grodt.nodes.adapters import adapter_for
from grodt.nodes.catalog_data import check_catalog
from grodt.nodes.trading_config import resolve_catalog
from grodt.nodes.trading_config import trading_node_config
from node_configs.live_schema import LiveNodeSpec
from node_configs.live_schema import load_live_config

_INSTRUMENT_KEYS = ("instrument_id", "instrument_ids")
_BAR_TYPE_KEYS = ("bar_type", "bar_types")


@dataclass
class CheckItem:
    """One check: what was checked, whether it passed, and what to do if not. A ``warning`` passed
    (it does not block the node) but needs the operator's attention (real money)."""

    name: str
    ok: bool
    detail: str = ""
    warning: bool = False


@dataclass
class CheckResult:
    config: str
    items: list[CheckItem] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return all(item.ok for item in self.items)

    @property
    def missing(self) -> list[CheckItem]:
        return [item for item in self.items if not item.ok]

    @property
    def warnings(self) -> list[CheckItem]:
        return [item for item in self.items if item.warning]

    def add(self, name: str, ok: bool, detail: str = "") -> None:
        self.items.append(CheckItem(name, ok, detail))

    def warn(self, name: str, detail: str) -> None:
        """A check that passed but must be read (not shown as ``ok``)."""
        self.items.append(CheckItem(name, True, detail, warning=True))

    def as_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "ready": self.ready,
            "checks": [
                {"name": i.name, "ok": i.ok, "warning": i.warning, "detail": i.detail}
                for i in self.items
            ],
        }


def format_checks(result: CheckResult) -> str:
    lines = [f"{result.config}:"]
    for item in result.items:
        mark = "FAIL" if not item.ok else "WARN" if item.warning else "ok  "
        lines.append(f"  {mark} {item.name}" + (f": {item.detail}" if item.detail else ""))
    warnings = result.warnings
    if result.ready and warnings:
        names = ", ".join(item.name for item in warnings)
        lines.append(
            f"ready, with {len(warnings)} warning(s) to read first: {names} (nothing was "
            "connected)",
        )
    elif result.ready:
        lines.append("ready: every check passed (nothing was connected)")
    else:
        names = ", ".join(item.name for item in result.missing)
        lines.append(f"NOT READY: {len(result.missing)} problem(s): {names}")
    return "\n".join(lines)


def component_instruments(spec: LiveNodeSpec) -> dict[str, set[str]]:
    """Instrument ids each component trades or reads, from its config's instrument/bar keys."""
    found: dict[str, set[str]] = {}
    for kind in ("actors", "strategies"):
        for index, component in enumerate(getattr(spec, kind)):
            ids: set[str] = set()
            for key, value in component.config.items():
                values = value if isinstance(value, list) else [value]
                for item in values:
                    if not isinstance(item, str):
                        continue
                    try:
                        if key in _INSTRUMENT_KEYS:
                            ids.add(str(InstrumentId.from_str(item)))
                        elif key in _BAR_TYPE_KEYS:
                            ids.add(str(BarType.from_str(item).instrument_id))
                    except ValueError:
                        continue
            if ids:
                found[f"{kind}[{index}] ({component.path})"] = ids
    return found


def provided_instruments(spec: LiveNodeSpec) -> set[str]:
    """Instrument ids the data clients provide (replayed bar types' instruments included)."""
    provided: set[str] = set()
    for client in spec.data_clients:
        provided.update(adapter_for(client.type).instruments(client))
    return provided


def check_deployment(config: Path, catalog: Path | None = None) -> CheckResult:
    """Run every check on ``config`` (see the module docstring)."""
    result = CheckResult(config=str(config))
    try:
        spec = load_live_config(config)
    except ConfigError as e:
        result.add("config", False, str(e))
        return result
    result.add(
        "config",
        True,
        f"{spec.name}: {len(spec.strategies)} strategies, {len(spec.actors)} actors, "
        f"sections {[s for s in ('risk', 'forensics') if getattr(spec, s)] or 'none'}",
    )
    _check_adapters(spec, result)
    _check_environment(spec, result)
    _check_paper(spec, catalog, result)
    _check_instruments(spec, result)
    _check_client_configs(spec, catalog, result)
    _check_paths(spec, result)
    return result


def _check_adapters(spec: LiveNodeSpec, result: CheckResult) -> None:
    kinds = sorted({c.type for c in [*spec.data_clients, *spec.exec_clients]})
    for kind in kinds:
        requires = adapter_for(kind).requires
        if requires is None:
            continue
        module, remedy = requires
        try:
            importlib.import_module(module)
        except ImportError as e:
            result.add(f"adapter {kind}", False, f"cannot import {module} ({e}); {remedy}")
        else:
            result.add(f"adapter {kind}", True, module)


def _check_environment(spec: LiveNodeSpec, result: CheckResult) -> None:
    for name, purpose in spec.required_env().items():
        value = os.environ.get(name)
        if value is None:
            result.add(f"env {name}", False, f"not set — {purpose}")
        elif not value.strip():
            result.add(f"env {name}", False, f"set but empty — {purpose}")
        else:
            result.add(f"env {name}", True, "set")
    for client in spec.exec_clients:
        for name, detail in adapter_for(client.type).notices(client):
            result.warn(name, detail)


def _check_paper(spec: LiveNodeSpec, catalog: Path | None, result: CheckResult) -> None:
    replay = spec.replay
    if replay is None:
        return
    catalog_path = resolve_catalog(spec, catalog)
    try:
        index = spec.data_clients.index(replay)
        check_catalog(
            replay.data,
            catalog_path,
            "replay",
            f"data_clients[{index}].",
            start=replay.start,
            end=replay.end,
        )
    except ConfigError as e:
        result.add("replay catalog", False, str(e))
        return
    result.add("replay catalog", True, str(catalog_path))
    venues = {sandbox.venue.name for sandbox in spec.sandboxes}
    provided = provided_instruments(spec)
    for instrument_id in sorted(provided):
        venue = InstrumentId.from_str(instrument_id).venue.value
        if venue not in venues:
            result.add(
                f"venue {venue}",
                False,
                f"{instrument_id} is replayed but no sandbox exec client simulates venue "
                f"{venue} (sandbox venues: {sorted(venues)})",
            )


def _check_instruments(spec: LiveNodeSpec, result: CheckResult) -> None:
    provided = provided_instruments(spec)
    for component, ids in component_instruments(spec).items():
        missing = sorted(ids - provided)
        if missing:
            result.add(
                f"instruments of {component}",
                False,
                f"{missing} not provided by any data client (provided: {sorted(provided)})",
            )
        else:
            result.add(f"instruments of {component}", True, ", ".join(sorted(ids)))


def _check_client_configs(spec: LiveNodeSpec, catalog: Path | None, result: CheckResult) -> None:
    """Build the Nautilus client configs (types, ids) without creating or connecting clients."""
    try:
        trading_node_config(spec, resolve_catalog(spec, catalog), run_dir=None, quiet=True)
    except ImportError as e:
        result.add("client configs", False, f"adapter not importable: {e}")
    except (ValueError, TypeError, ConfigError) as e:
        result.add("client configs", False, str(e))
    else:
        names = [c.type for c in [*spec.data_clients, *spec.exec_clients]]
        result.add("client configs", True, ", ".join(names))


def _check_paths(spec: LiveNodeSpec, result: CheckResult) -> None:
    from grodt.core.settings import get_settings

    runs_dir = Path(get_settings().runs_dir)
    result.add(*_writable("runs dir", runs_dir))
    kill_file = spec.operations.kill_switch.file
    if kill_file and Path(kill_file).is_absolute():
        result.add(*_writable("kill file dir", Path(kill_file).parent))


def _writable(name: str, directory: Path) -> tuple[str, bool, str]:
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".grodt-check-"):
            pass
    except OSError as e:
        return name, False, f"{directory} is not writable ({e})"
    return name, True, str(directory)
