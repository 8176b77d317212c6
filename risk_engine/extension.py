"""The risk gate as a node extension (``risk:`` section of a node config).

The same three hooks run in BacktestNode and TradingNode (see :mod:`node_configs.extensions`):

1. :meth:`RiskExtension.actors` — the HRP target actor (when ``risk.hrp`` is set);
2. :meth:`RiskExtension.install` — the gate takes over the ``RiskEngine.execute`` and
   ``OrderEmulator.execute`` endpoints of the built kernel;
3. :meth:`RiskExtension.finish` — verdict and denial counts for the run summary, and the rest
   of ``risk_verdicts.csv`` in the run directory (rows are appended in chunks as verdicts come,
   so a long-running live node holds only a bounded window of them in memory).
"""

import csv
import logging
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nautilus_trader.common.config import ImportableActorConfig

from grodt.core.errors import ConfigError
from node_configs.schema import NodeSpec
from risk_engine.config import RiskConfig
from risk_engine.config import parse_risk_config
from risk_engine.gate import PortfolioRiskGate
from risk_engine.verdict_recorder import VERDICT_COLUMNS

log = logging.getLogger(__name__)

ACTOR_PATH = "risk_engine.hrp_actor:HrpTargetActor"
ACTOR_CONFIG_PATH = "risk_engine.hrp_actor:HrpTargetActorConfig"


def strategy_bar_types(spec: NodeSpec) -> list[str]:
    """Every ``bar_type``/``bar_types`` value in the node's strategy configs, in order."""
    found: list[str] = []

    def add(values: Iterable[Any]) -> None:
        for value in values:
            if isinstance(value, str) and value not in found:
                found.append(value)

    for component in spec.strategies:
        config = component.config
        if isinstance(config.get("bar_type"), str):
            add([config["bar_type"]])
        if isinstance(config.get("bar_types"), list):
            add(config["bar_types"])
    return found


class VerdictCsv:
    """``risk_verdicts.csv``, written in chunks: the header on the first write, then rows appended
    (the file is opened per chunk, so nothing stays open if the run fails).

    A node restarted into the same run directory (``grodt live --supervise``) appends to the
    file its crashed predecessor wrote; a file with other columns is moved aside to
    ``risk_verdicts.<n>.csv`` first, so no verdict row is ever overwritten.
    """

    def __init__(self, path: Path, columns: Iterable[str]) -> None:
        self.path = path
        self.columns = tuple(columns)
        self.rows = 0
        self._started = False

    def write(self, rows: Iterable[tuple[Any, ...]]) -> None:
        write_header = False
        if not self._started:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_header = not self._continues_existing_file()
            self._started = True
        with self.path.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if write_header:
                writer.writerow(self.columns)
            for row in rows:
                writer.writerow("" if isinstance(v, float) and math.isnan(v) else v for v in row)
                self.rows += 1

    def _continues_existing_file(self) -> bool:
        """True when the file exists with this header (a restart appends to it); a file with
        another header is moved aside, never overwritten."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return False
        with self.path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
        if tuple(header) == self.columns:
            return True
        n = 1
        while (aside := self.path.with_name(f"{self.path.stem}.{n}{self.path.suffix}")).exists():
            n += 1
        self.path.rename(aside)
        log.warning("%s has other columns: moved aside to %s", self.path, aside.name)
        return False


class RiskExtension:
    """Node extension wrapping one :class:`PortfolioRiskGate`.

    Parameters
    ----------
    config : RiskConfig
        The validated section.
    bar_types : list[str]
        Bars for the HRP actor (resolved from ``auto``).
    run_dir : Path | None
        Where ``risk_verdicts.csv`` goes (None: not written).
    """

    name = "risk"

    def __init__(self, config: RiskConfig, bar_types: list[str], run_dir: Path | None) -> None:
        self.config = config
        self.bar_types = bar_types
        self.run_dir = run_dir
        self.gate: PortfolioRiskGate | None = None
        self.verdicts_csv: VerdictCsv | None = None

    def actors(self) -> list[ImportableActorConfig]:
        hrp = self.config.hrp
        if hrp is None:
            return []
        return [
            ImportableActorConfig(
                actor_path=ACTOR_PATH,
                config_path=ACTOR_CONFIG_PATH,
                config={
                    "component_id": f"{self.config.component_id}-HRP",
                    "bar_types": list(self.bar_types),
                    "method": hrp.method,
                    "codependence": hrp.codependence,
                    "linkage": hrp.linkage,
                    "risk_measure": hrp.risk_measure,
                    "max_k": hrp.max_k,
                    "leaf_order": hrp.leaf_order,
                    "sampling": hrp.sampling,
                    "rebalance": hrp.rebalance,
                    "window": hrp.window,
                    "min_history": hrp.min_history,
                    "returns": hrp.returns,
                },
            ),
        ]

    def install(self, kernel: Any) -> None:
        self.gate = PortfolioRiskGate(self.config)
        self.gate.install(kernel)
        if self.run_dir is not None and self.config.write_verdicts:
            self.verdicts_csv = VerdictCsv(
                Path(self.run_dir) / "risk_verdicts.csv", VERDICT_COLUMNS
            )
            self.gate.stream_verdicts(self.verdicts_csv.write)

    def finish(self, kernel: Any) -> dict[str, Any]:
        if self.gate is None:
            return {}
        gate = self.gate
        summary = gate.summary()
        if self.verdicts_csv is not None:
            gate.flush_verdicts()
            self.verdicts_csv.write(())  # the header, if no verdict came
            summary["verdicts_csv"] = str(self.verdicts_csv.path)
        gate.uninstall()
        return summary


def create_extension(section: dict, spec: NodeSpec, run_dir: Path | None) -> RiskExtension:
    """Validate the ``risk:`` section (ConfigError naming ``risk.<field>``); open nothing."""
    config = parse_risk_config(section)
    bar_types: list[str] = []
    if config.hrp is not None:
        if config.hrp.bar_types == "auto":
            bar_types = strategy_bar_types(spec)
            if not bar_types:
                raise ConfigError(
                    "risk.hrp.bar_types: 'auto' found no bar_type/bar_types in the node's "
                    "strategy configs; list the bar types",
                )
        else:
            bar_types = list(config.hrp.bar_types)
    return RiskExtension(config, bar_types, run_dir)
