"""``grodt meta``: the meta-controller's performance model.

- ``grodt meta train CONFIG --train 3y --test 1y [--meta COMPONENT.yaml]``: walk the config
  forward in BacktestNodes with the meta-controller on its static policy, gather every test
  window's allocation records into the training set (``dataset.parquet``, every row out of
  sample), fit the quantile model and its calibrators (:mod:`grodt.experiments.meta_train`),
  write ``meta_model.json`` and track the run in MLflow with its out-of-sample figures, the model
  registered;
- ``grodt meta evaluate DATASET [--model FILE]``: pinball loss, interval coverage, ECE and
  directional accuracy beside the naive "same sign as the last window" baseline — walk-forward
  over the dataset, or the given model on the rows after its training data.
"""

import json
import math
from pathlib import Path
from typing import Any

import click

from grodt.cli._options import config_catalog_option

__all__ = ["command"]


@click.group(name="meta")
def command() -> None:
    """Meta-controller: train and evaluate the strategy-performance model."""


def _echo_metrics(metrics: dict[str, float]) -> None:
    order = (
        "rows",
        "rows_nonzero",
        "pinball_q10",
        "pinball_q50",
        "pinball_q90",
        "coverage_raw",
        "coverage",
        "ece",
        "brier",
        "directional_accuracy",
        "naive_directional_accuracy",
    )
    for key in order:
        value = metrics.get(key, math.nan)
        text = f"{value:,.0f}" if key.startswith("rows") else f"{value:.4f}"
        click.echo(f"  {key:<28} {text}")


@command.command(name="train")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--train", "train_window", required=True, help="Walk-forward train window (3y).")
@click.option("--test", "test_window", required=True, help="Walk-forward test window (1y).")
@click.option("--step", default=None, help="Move windows by this (default: --test).")
@click.option("--expanding", is_flag=True, help="Train windows grow from the first bar.")
@click.option(
    "--meta",
    "meta_component",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Meta-controller component YAML to add when CONFIG has none.",
)
@config_catalog_option
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a config value (repeatable), as in grodt backtest.",
)
@click.option("--splits", default=5, show_default=True, help="Walk-forward splits of the rows.")
@click.option("--name", "register_name", default="meta_performance", show_default=True)
@click.option("--alias", "aliases", multiple=True, help="Registry alias (repeatable).")
@click.option("--track/--no-track", default=True, help="Track in MLflow (default: on).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def train(
    config: Path,
    train_window: str,
    test_window: str,
    step: str | None,
    expanding: bool,
    meta_component: Path | None,
    catalog: Path | None,
    overrides: tuple[str, ...],
    splits: int,
    register_name: str,
    aliases: tuple[str, ...],
    track: bool,
    as_json: bool,
) -> None:
    """Walk CONFIG forward, build the out-of-sample training set, fit and register the model."""
    from grodt.core.errors import GrodtError

    if "champion" in aliases:
        raise GrodtError(
            "--alias champion: a trained model does not become champion ungated; register it "
            "with --alias challenger and run `grodt models challenge NAME --policy-log RUN_DIR` "
            "(gated), or promote a version with `grodt models promote NAME VERSION --reason ...` "
            "(audited)",
        )
    from grodt.experiments.meta_dataset import collect_dataset
    from grodt.experiments.meta_train import fit_meta_model
    from grodt.tracking.training import TrainingRun
    from node_configs.loader import load_document

    params: dict[str, Any] = {
        "config": str(config),
        "train": train_window,
        "test": test_window,
        "step": step or test_window,
        "expanding": expanding,
        "splits": splits,
        "overrides": list(overrides),
    }
    with TrainingRun(register_name, params=params, store="auto" if track else None) as run:
        rows, walk = collect_dataset(
            config,
            catalog,
            train_window,
            test_window,
            step,
            expanding,
            run_dir=run.run_dir / "walkforward",
            meta_component=meta_component,
            overrides=overrides,
        )
        dataset = run.run_dir / "dataset.parquet"
        rows.to_parquet(dataset)
        document = load_document(config, overrides)
        horizon = _horizon(document, meta_component)
        fit = fit_meta_model(rows, horizon_bars=horizon, n_splits=splits)
        model_path = fit.model.save(run.run_dir / "meta_model.json")
        fit.predictions.to_parquet(run.run_dir / "oos_predictions.parquet")
        run.log_summary(fit.metrics)
        run.register_model(
            fit.model,
            register_name,
            aliases=list(aliases),
            filename="meta_model.json",
        )
    result = {
        "model": str(model_path),
        "version": fit.model.version_,
        "dataset": str(dataset),
        "rows": len(rows),
        "strategies": sorted(rows["strategy"].unique()),
        "folds": len(walk.folds),
        "trained_until": str(rows["end"].max()),
        "metrics": fit.metrics,
        "run_dir": str(run.run_dir),
        "run_id": run.run_id,
    }
    if as_json:
        click.echo(json.dumps(result, default=str))
        return
    click.echo(
        f"meta model {fit.model.version_}: {len(rows):,} rows from {len(walk.folds)} "
        f"walk-forward test windows, {len(result['strategies'])} strategies",
    )
    click.echo("Out of sample (later half of the walk-forward predictions, calibrated on the")
    click.echo("earlier half):")
    _echo_metrics(fit.metrics)
    click.echo(f"Model: {model_path}")
    click.echo(f"Dataset: {dataset}")


def _horizon(document: dict[str, Any], meta_component: Path | None) -> int:
    """The meta-controller's rebalance_every (the model's horizon, in clock bars)."""
    from grodt.experiments.meta_dataset import with_static_meta_controller

    resolved = with_static_meta_controller(document, meta_component)
    for actor in resolved["actors"]:
        if actor.get("path") == "actors.meta_controller:MetaController":
            return int((actor.get("config") or {}).get("rebalance_every", 5))
    return 5


@command.command(name="evaluate")
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--model",
    "model_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Evaluate this model on the rows after its training data (default: walk-forward).",
)
@click.option("--splits", default=5, show_default=True, help="Walk-forward splits of the rows.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def evaluate(dataset: Path, model_path: Path | None, splits: int, as_json: bool) -> None:
    """Pinball loss, coverage, ECE and directional accuracy (vs the naive last-window sign)."""
    import pandas as pd

    from grodt.core.errors import ConfigError
    from grodt.experiments.meta_train import fit_meta_model
    from grodt.experiments.meta_train import prediction_metrics
    from models.meta.features import feature_names
    from models.meta.model import MetaModel

    rows = pd.read_parquet(dataset)
    missing = [c for c in (*feature_names(), "ts", "end", "target") if c not in rows.columns]
    if missing:
        raise ConfigError(f"{dataset}: not a meta training set (missing columns {missing})")
    if model_path is None:
        metrics = fit_meta_model(rows, horizon_bars=1, n_splits=splits).metrics
        how = "walk-forward over the dataset (calibrated on the earlier half of the predictions)"
    else:
        model = MetaModel.load(model_path)
        after = rows[pd.DatetimeIndex(rows["ts"]).asi8 > model.trained_until_ns]
        if after.empty:
            raise ConfigError(
                f"{dataset}: no row after {model_path}'s training data "
                f"({pd.Timestamp(model.trained_until_ns, tz='UTC')}): nothing out of sample",
            )
        prediction = model.quantiles.predict(after[feature_names()].to_numpy(dtype=float))
        frame = after[["ts", "strategy", "target", "last_window_return"]].copy()
        for j, name in enumerate(("q10", "q50", "q90")):
            frame[name] = prediction.values[:, j]
        metrics = prediction_metrics(frame, model.interval, model.probability)
        how = f"model {model.version_} on the {len(after):,} rows after its training data"
    if as_json:
        click.echo(json.dumps({"evaluation": how, "metrics": metrics}))
        return
    click.echo(f"{dataset}: {how}")
    _echo_metrics(metrics)
