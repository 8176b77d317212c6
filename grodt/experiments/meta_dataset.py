"""The meta-controller's training set (gold table) from walk-forward runs of a node config.

The meta-controller actor logs, in every :class:`~grodt.core.records.AllocationRecord`, the
features it saw (``context``: ``"<strategy>:<feature>"`` and the shared ``"<feature>"``) and each
strategy's return per unit of allocation over the window that just ended
(``"<strategy>:realised_return"``). A row of the training set pairs one record's features of one
strategy with the next record's realised return of that strategy: the actor's own inputs, so the
model is trained on exactly what it is served.

:func:`collect_dataset` makes every row out of sample: it runs the config walk-forward
(:func:`grodt.experiments.walkforward.run_walk_forward`: learning components such as the regime
HMM fitted on each fold's train window, the test window in a BacktestNode) with the
meta-controller forced to its ``static`` policy (the rows must not depend on a model), and reads
the allocation records of every test window.
"""

from collections.abc import Mapping
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import pandas as pd

from grodt.core.errors import ConfigError
from grodt.core.records import AllocationRecord
from grodt.core.topics import Topics
from grodt.experiments.walkforward import run_walk_forward
from grodt.forensics.reader import read_run
from models.meta.features import CONTEXT_FEATURES
from models.meta.features import STRATEGY_FEATURES
from models.meta.features import feature_names
from node_configs.loader import load_document
from node_configs.loader import load_yaml_document
from node_configs.overrides import apply_overrides

__all__ = ["META_ACTOR_PATH", "allocation_rows", "collect_dataset", "with_static_meta_controller"]

META_ACTOR_PATH = "actors.meta_controller:MetaController"

_WEIGHT_TOLERANCE = 1e-9


def allocation_rows(records: Sequence[AllocationRecord], fold: int = 0) -> pd.DataFrame:
    """Training rows from one run's allocation records (see the module docstring).

    Columns: ``ts`` and ``end`` (UTC: the rebalance and the next one, the target's window),
    ``fold``, ``strategy``, the features (:func:`models.meta.features.feature_names`),
    ``last_window_return`` (the window that ended at ``ts``: the naive baseline's input) and
    ``target`` (per-unit return over ``(ts, end]``). Records without features (warm-up) and
    strategies with a zero weight over the window (their return says nothing) give no row.
    """
    ordered = sorted(records, key=lambda r: r.ts_event)
    rows: list[dict[str, Any]] = []
    for record, following in pairwise(ordered):
        for strategy, weight in record.weights.items():
            keys = [f"{strategy}:{name}" for name in STRATEGY_FEATURES]
            target_key = f"{strategy}:realised_return"
            if weight <= _WEIGHT_TOLERANCE or target_key not in following.context:
                continue
            if not all(k in record.context for k in keys) or not all(
                k in record.context for k in CONTEXT_FEATURES
            ):
                continue
            row: dict[str, Any] = {
                "ts": record.ts_event,
                "end": following.ts_event,
                "fold": fold,
                "strategy": strategy,
            }
            row.update(
                {
                    name: record.context[key]
                    for name, key in zip(STRATEGY_FEATURES, keys, strict=True)
                }
            )
            row.update({name: record.context[name] for name in CONTEXT_FEATURES})
            row["last_window_return"] = record.context.get(target_key, float("nan"))
            row["target"] = following.context[target_key]
            rows.append(row)
    frame = pd.DataFrame(
        rows,
        columns=["ts", "end", "fold", "strategy", *feature_names(), "last_window_return", "target"],
    )
    for column in ("ts", "end"):
        frame[column] = pd.to_datetime(frame[column], unit="ns", utc=True)
    return frame


def with_static_meta_controller(
    document: dict[str, Any],
    meta_component: str | Path | None = None,
) -> dict[str, Any]:
    """``document`` with one meta-controller on its ``static`` policy — the config's own, or
    ``meta_component`` (a component YAML such as
    ``node_configs/components/actors/meta_controller_spx.yaml``) appended — and its forensics
    written to Parquet in the run directory (where :func:`collect_dataset` reads the records).

    Raises
    ------
    ConfigError
        No meta-controller in the config and no component given, or both.
    """
    actors = [dict(a) for a in document.get("actors") or []]
    found = [i for i, a in enumerate(actors) if a.get("path") == META_ACTOR_PATH]
    if meta_component is not None:
        if found:
            raise ConfigError(
                f"actors[{found[0]}]: the config has a meta-controller already; drop --meta"
            )
        actors.append(load_yaml_document(meta_component))
        found = [len(actors) - 1]
    if not found:
        raise ConfigError(
            f"actors: no {META_ACTOR_PATH} in the config; add one or pass --meta COMPONENT.yaml "
            "(e.g. node_configs/components/actors/meta_controller_spx.yaml)",
        )
    for index in found:
        config = dict(actors[index].get("config") or {})
        config["policy"] = "static"
        config["publish_records"] = True
        actors[index] = {**actors[index], "config": config}
    forensics = {**(document.get("forensics") or {}), "sink": "parquet"}
    return {**document, "actors": actors, "forensics": forensics}


def collect_dataset(
    config: str | Path | Mapping[str, Any],
    catalog: str | Path | None,
    train: str,
    test: str,
    step: str | None = None,
    expanding: bool = False,
    run_dir: Path | None = None,
    meta_component: str | Path | None = None,
    overrides: tuple[str, ...] = (),
) -> tuple[pd.DataFrame, Any]:
    """Walk ``config`` forward and gather the out-of-sample training rows of every test window.

    ``config`` is a node config file or a resolved document. Returns the rows
    (:func:`allocation_rows`, ``fold`` = the walk-forward fold) and the
    :class:`~grodt.experiments.results.WalkForwardResult`.
    """
    if isinstance(config, Mapping):
        loaded = apply_overrides(dict(config), overrides)
        source = str(config.get("name", "<document>"))
    else:
        loaded = load_document(config, overrides)
        source = str(config)
    document = with_static_meta_controller(loaded, meta_component)
    result = run_walk_forward(
        document,
        catalog,
        train,
        test,
        step,
        expanding,
        baseline=False,
        run_dir=run_dir,
        track=False,
        tearsheet=False,
    )
    frames = []
    for fold in result.folds:
        stored = read_run(fold.run_dir, topics=[Topics.ALLOCATIONS])
        records = [s.record for s in stored if isinstance(s.record, AllocationRecord)]
        frames.append(allocation_rows(records, fold=fold.index))
    rows = pd.concat(frames, ignore_index=True) if frames else allocation_rows([])
    if rows.empty:
        raise ConfigError(
            f"{source}: the walk-forward produced no training rows (are the test windows longer "
            "than the meta-controller's performance_window plus two rebalances?)",
        )
    return rows.sort_values(["ts", "strategy"], kind="stable").reset_index(drop=True), result
