"""``grodt regime fit|infer``: fit the HMM regime model, and compute causal probabilities per bar.

Model settings come from the regime actor's config class, so the CLI and the actor agree: pass an
actor component file with ``--config`` (e.g. ``node_configs/components/actors/regime_spx.yaml``)
and override single settings with options.
"""

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import click

from grodt.core.errors import GrodtError

_MODEL_OPTIONS = (
    ("feature", "features"),
    ("n_states", "n_states"),
    ("covariance_type", "covariance_type"),
    ("min_covar", "min_covar"),
    ("n_iter", "n_iter"),
    ("n_init", "n_init"),
    ("random_state", "random_state"),
    ("label_z", "label_z"),
    ("transition_pseudocount", "transition_pseudocount"),
    ("temperature", "temperature"),
)
"""CLI option → field of the ``walk_forward`` mapping of the regime actor config."""

_SCHEDULE_FIELDS = frozenset({"train_bars", "min_train_bars", "refit_every"})
"""Options of ``grodt regime infer`` that set the ``walk_forward`` refit schedule."""


def _model_options(function: Any) -> Any:
    options = [
        click.option(
            "--catalog",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="Catalog directory (default: GRODT_CATALOG).",
        ),
        click.option(
            "--bar-type",
            default=None,
            help="Bar type, e.g. SPX.SAMPLE-1-DAY-LAST-EXTERNAL (default: the config's only one).",
        ),
        click.option("--start", default=None, help="First bar close (inclusive), UTC."),
        click.option("--end", default=None, help="Last bar close (inclusive), UTC."),
        click.option(
            "--config",
            "config_file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="A regime actor component YAML (path + config) to take settings from.",
        ),
        click.option(
            "--feature",
            multiple=True,
            help="Feature spec, repeatable (log_return, realized_vol:20, trend:50, ...).",
        ),
        click.option("--n-states", type=int, default=None, help="Hidden states (default 3)."),
        click.option(
            "--covariance-type",
            type=click.Choice(["full", "diag", "spherical", "tied"]),
            default=None,
        ),
        click.option("--min-covar", type=float, default=None, help="Covariance floor."),
        click.option("--n-iter", type=int, default=None, help="Max EM iterations."),
        click.option("--n-init", type=int, default=None, help="Cold EM starts."),
        click.option("--random-state", type=int, default=None, help="Seed."),
        click.option("--label-z", type=float, default=None, help="Drift t for bull/bear."),
        click.option(
            "--transition-pseudocount",
            type=float,
            default=None,
            help="Dirichlet pseudo-count per transition.",
        ),
        click.option(
            "--temperature",
            type=float,
            default=None,
            help="Emission tempering of the filter (>= 1).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON object."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _actor_config(
    config_file: Path | None,
    bar_type: str | None,
    options: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> tuple[Any, str]:
    """The regime actor config from ``--config`` + options; returns (config, bar type)."""
    import msgspec

    from actors.regime_actor import RegimeActorConfig
    from grodt.core.errors import ConfigError
    from node_configs.loader import load_yaml_document

    settings: dict[str, Any] = {}
    source = ""
    if config_file is not None:
        source = str(config_file)
        document = load_yaml_document(config_file)
        settings = dict(document.get("config", document))
    walk_forward = dict(settings.get("walk_forward") or {})
    for option_name, field in _MODEL_OPTIONS:
        value = options.get(option_name)
        if value is None or value == ():
            continue
        walk_forward[field] = list(value) if isinstance(value, tuple) else value
    for field, value in (extra or {}).items():
        if value is None:
            continue
        if field in _SCHEDULE_FIELDS:
            walk_forward[field] = value
        else:
            settings[field] = value
    settings["walk_forward"] = walk_forward
    if bar_type is None:
        configured = settings.get("bar_types") or []
        if len(configured) != 1:
            raise ConfigError(
                "--bar-type: required (the config names "
                f"{len(configured)} bar types: {configured})",
            )
        bar_type = str(configured[0])
    settings["bar_types"] = [bar_type]
    try:
        config = RegimeActorConfig.parse(msgspec.json.encode(settings))
    except msgspec.ValidationError as e:
        message, _, at = str(e).partition(" - at `$")
        where = at.rstrip("`").lstrip(".")
        prefix = f"{source}: " if source else ""
        raise ConfigError(
            f"{prefix}{where}: {message}" if where else f"{prefix}{message}"
        ) from None
    except (TypeError, ValueError, ConfigError) as e:
        raise ConfigError(f"{source}: {e}" if source else str(e)) from None
    return config, bar_type


def _instrument_id(bar_type: str) -> str:
    from nautilus_trader.model.data import BarType

    return str(BarType.from_str(bar_type).instrument_id)


def _catalog(catalog: Path | None) -> Path:
    from grodt.core.settings import get_settings

    return catalog or get_settings().catalog


def _echo_warnings() -> Any:
    def warn(message: str) -> None:
        click.echo(f"warning: {message}", err=True)

    return warn


@click.group(name="regime")
def command() -> None:
    """Market regime model: fit the HMM, compute causal probabilities per bar."""


@command.command(name="fit")
@_model_options
@click.option(
    "--train-bars",
    type=int,
    default=None,
    help="Fit on the last N bars of the range (default: every bar in it).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Model file (default: <GRODT_RUNS_DIR>/regime/models/<instrument>/<version>.json).",
)
@click.option(
    "--register",
    "register_name",
    default="regime_hmm",
    show_default=True,
    help="Registered model name the fit becomes a new version of.",
)
@click.option(
    "--alias",
    "aliases",
    multiple=True,
    help="Alias to point at the new version, repeatable (e.g. challenger).",
)
@click.option(
    "--no-track",
    is_flag=True,
    help="Do not log or register now (the run's bundle is kept for `grodt tracking sync`).",
)
@click.option("--tracking-uri", default=None, help="Tracking and registry store for this fit.")
def fit_command(
    catalog: Path | None,
    bar_type: str | None,
    start: str | None,
    end: str | None,
    config_file: Path | None,
    as_json: bool,
    train_bars: int | None,
    out: Path | None,
    register_name: str,
    aliases: tuple[str, ...],
    no_track: bool,
    tracking_uri: str | None,
    **options: Any,
) -> None:
    """Fit the regime HMM on the bars of BAR-TYPE in [START, END], save it, and register it.

    Prints the model version (a content hash), the fitted states with their labels, and any
    warnings (degenerate covariances, non-convergence). The saved JSON is what the regime
    actor's ``model`` and ``grodt regime infer --model`` read. The fit is an MLflow training
    run (experiment ``train/<register name>``: the actor config as params, the fit's figures as
    metrics, the bars' data fingerprint and the git commit) that registers the model as a new
    version of ``--register`` (version tags ``grodt.model_version``,
    ``grodt.data_fingerprint``, ``grodt.code_version``).
    """
    if "champion" in aliases:
        raise GrodtError(
            "--alias champion: a fit does not become champion ungated; register it with "
            "--alias challenger and run `grodt models challenge` (gated), or promote a version "
            "with `grodt models promote NAME VERSION --reason ...` (audited)",
        )
    import numpy as np

    from grodt.cli.tracking import echo_warnings
    from grodt.core.errors import ConfigError
    from grodt.core.settings import get_settings
    from grodt.tracking.provenance import git_state
    from grodt.tracking.registry_training import bars_fingerprint
    from grodt.tracking.store import resolve_store
    from grodt.tracking.training import TrainingRun
    from models.regime.catalog_io import load_bars
    from models.regime.features import FeatureExtractor
    from models.regime.features import parse_features

    config, bar_type = _actor_config(config_file, bar_type, options)
    walk = config.walk_forward
    series = load_bars(_catalog(catalog), bar_type, start, end)
    features = FeatureExtractor(parse_features(walk.features)).transform(series.close)
    valid = np.isfinite(features).all(axis=1)
    rows = np.flatnonzero(valid)
    if train_bars is not None:
        if train_bars < 1:
            raise ConfigError(f"--train-bars: must be positive, was {train_bars}")
        rows = rows[-train_bars:]
    model = walk.new_model()
    if len(rows) < model.min_training_rows:
        raise ConfigError(
            f"{bar_type}: too few bars to fit: {len(series)} bars in range, {len(rows)} with "
            f"valid features after a warm-up of {FeatureExtractor(model.features).warmup_bars}; "
            f"a {model.n_states}-state model on {model.n_features} features needs "
            f"{model.min_training_rows}",
        )
    started = time.perf_counter()
    model.fit(
        features[rows],
        train_start_ns=int(series.ts_event[rows[0]]),
        train_end_ns=int(series.ts_event[rows[-1]]),
    )
    seconds = time.perf_counter() - started
    instrument_id = _instrument_id(bar_type)
    path = out or (
        get_settings().runs_dir / "regime" / "models" / instrument_id / f"{model.version_}.json"
    )
    model.save(path)
    echo_warnings()
    fingerprint = bars_fingerprint(series.ts_event[rows], series.close[rows])
    code_version = git_state().commit or "unknown"
    params = {
        "bar_type": bar_type,
        "start": start,
        "end": end,
        "train_bars": train_bars,
        "walk_forward": {k: getattr(walk, k) for k in walk.__dataclass_fields__},
        "data.fingerprint": fingerprint,
        "data.first_ns": int(series.ts_event[rows[0]]),
        "data.last_ns": int(series.ts_event[rows[-1]]),
    }
    metrics = {
        "log_likelihood": model.log_likelihood_,
        "log_likelihood_per_bar": model.log_likelihood_ / len(rows),
        "train_rows": len(rows),
        "fit_seconds": seconds,
        "converged": float(model.converged_),
        "fit_warnings": len(model.fit_warnings_),
    }
    store = None if no_track else resolve_store(tracking_uri)
    with TrainingRun(register_name, params=params, store=store, stream=False) as run:
        run.log_summary(metrics)
        run.register_model(
            model,
            register_name,
            aliases=list(aliases),
            filename="regime.json",
            tags={"grodt.data_fingerprint": fingerprint, "grodt.code_version": code_version},
        )
    outcome = run.result
    registered = None
    if outcome is not None and outcome.ok and outcome.model_versions:
        registered = f"{register_name}/{outcome.model_versions.get(register_name)}"
    result = {
        "version": model.version_,
        "registered": registered,
        "aliases": list(aliases),
        "run_id": run.run_id,
        "run_dir": str(run.run_dir),
        "data_fingerprint": fingerprint,
        "code_version": code_version,
        "path": str(path),
        "bar_type": bar_type,
        "bars": len(series),
        "train_rows": len(rows),
        "skipped_rows": int((~valid).sum()),
        "log_likelihood": model.log_likelihood_,
        "fit_seconds": seconds,
        "states": model.describe(),
        "warnings": list(model.fit_warnings_),
    }
    if as_json:
        click.echo(json.dumps(result, default=str))
        return
    for message in model.fit_warnings_:
        click.echo(f"warning: {message}", err=True)
    click.echo(
        f"{model.version_}: {model.n_states}-state HMM on {len(rows):,} bars of {bar_type} "
        f"({seconds:.2f} s, log-likelihood {model.log_likelihood_:,.1f})",
    )
    for state in model.describe():
        means = ", ".join(f"{k}={v:.3g}" for k, v in state["mean"].items())
        click.echo(
            f"  state {state['state']}: {state['label']:<8} weight {state['weight']:.2f}  "
            f"drift t {state['drift_t']:+.1f}  duration {state['expected_duration_bars']:.0f} "
            f"bars  mean {means}",
        )
    click.echo(f"Model: {path}")
    if registered:
        shown = "".join(f" @{a}" for a in aliases)
        click.echo(f"Registered: {registered}{shown} (MLflow run {run.run_id})")
    else:
        click.echo(
            f"Not registered{' (--no-track)' if no_track else ''}: the training run is in "
            f"{run.run_dir}; `grodt tracking sync {run.run_dir}` registers it later",
        )


@command.command(name="infer")
@_model_options
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Parquet file of filtered probabilities per bar.",
)
@click.option(
    "--model",
    "model_ref",
    default=None,
    help="Start from this fitted model: a file or a registry reference (regime_hmm@champion, "
    "regime_hmm/7); else the config's model, else the neutral prior.",
)
@click.option("--train-bars", type=int, default=None, help="Trailing training window (bars).")
@click.option("--min-train-bars", type=int, default=None, help="Bars before the first fit.")
@click.option("--refit-every", type=int, default=None, help="Bars between refits (0: never).")
@click.option(
    "--to-catalog",
    is_flag=True,
    help="Also write the records into the catalog (replacing this instrument's earlier ones).",
)
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write an HTML chart of price and probabilities.",
)
def infer_command(
    catalog: Path | None,
    bar_type: str | None,
    start: str | None,
    end: str | None,
    config_file: Path | None,
    as_json: bool,
    out: Path,
    model_ref: str | None,
    train_bars: int | None,
    min_train_bars: int | None,
    refit_every: int | None,
    to_catalog: bool,
    chart: Path | None,
    **options: Any,
) -> None:
    """Causal regime probabilities for every bar of BAR-TYPE in [START, END].

    Runs exactly what the regime actor runs (features, forward filter, walk-forward refits) and
    writes one row per bar to OUT: ts_event, ts_init, p_bull, p_bear, p_sideways, most_likely,
    entropy, model_version, status, events. Row t only depends on bars up to t.
    """
    import pandas as pd

    from models.regime.catalog_io import load_bars
    from models.regime.catalog_io import regime_records
    from models.regime.catalog_io import replay_data_config
    from models.regime.catalog_io import write_regime_records
    from models.regime.hmm import GaussianRegimeHMM
    from models.regime.walk_forward import run_walk_forward

    extra = {
        "train_bars": train_bars,
        "min_train_bars": min_train_bars,
        "refit_every": refit_every,
        "model": model_ref,
    }
    config, bar_type = _actor_config(config_file, bar_type, options, extra)
    catalog_path = _catalog(catalog)
    series = load_bars(catalog_path, bar_type, start, end)
    warn = _echo_warnings()
    model = None
    if config.model is not None:
        from node_configs.model_refs import resolve_model_file

        model = GaussianRegimeHMM.load(resolve_model_file(config.model).path)
    if model is not None and model.train_end_ns_ and model.train_end_ns_ >= series.ts_event[0]:
        warn(
            f"model {model.version_} was fitted on bars up to "
            f"{pd.Timestamp(model.train_end_ns_, tz='UTC')}, after the first inferred bar "
            f"{pd.Timestamp(int(series.ts_event[0]), tz='UTC')}: probabilities before that "
            "use parameters fitted on later data (in-sample, not causal)",
        )
    logging.getLogger("grodt.regime").setLevel(logging.WARNING)
    started = time.perf_counter()
    frame, engine = run_walk_forward(
        series.close,
        series.ts_event,
        config.walk_forward,
        model=model,
        on_warning=warn,
        on_info=lambda _message: None,
    )
    seconds = time.perf_counter() - started
    frame.insert(1, "ts_init", series.ts_init)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    instrument_id = _instrument_id(bar_type)
    written = None
    if to_catalog:
        written = write_regime_records(
            catalog_path,
            regime_records(frame, instrument_id),
            instrument_id,
        )
    chart_path = None
    if chart is not None:
        from models.regime.chart import regime_chart

        chart_path = regime_chart(
            frame,
            series.close,
            chart,
            title=f"Regime probabilities: {bar_type} ({engine.version})",
        )
    shares = frame["most_likely"].value_counts(normalize=True).to_dict()
    result = {
        "bar_type": bar_type,
        "bars": len(frame),
        "start": str(pd.Timestamp(int(series.ts_event[0]), tz="UTC")),
        "end": str(pd.Timestamp(int(series.ts_event[-1]), tz="UTC")),
        "fits": len(engine.fits),
        "failed_fits": engine.failed_fits,
        "skipped": engine.skipped,
        "prior_bars": int((frame["status"] == "prior").sum()),
        "model_versions": list(dict.fromkeys(frame["model_version"])),
        "most_likely_share": shares,
        "mean_entropy": float(frame["entropy"].mean()),
        "seconds": seconds,
        "us_per_bar": seconds / max(len(frame), 1) * 1e6,
        "out": str(out),
        "catalog_records": written,
        "chart": str(chart_path) if chart_path else None,
    }
    if as_json:
        click.echo(json.dumps(result, default=str))
        return
    click.echo(
        f"{bar_type}: {len(frame):,} bars {result['start']} → {result['end']}, "
        f"{len(engine.fits)} fits ({engine.failed_fits} failed), {engine.skipped} skipped, "
        f"{result['prior_bars']:,} on the prior "
        f"({seconds:.2f} s, {result['us_per_bar']:.1f} µs/bar)",
    )
    click.echo(
        "  most likely: "
        + ", ".join(
            f"{label} {shares.get(label, 0.0):.1%}" for label in ("bull", "bear", "sideways")
        )
        + f"; mean entropy {result['mean_entropy']:.3f} nats; last model {engine.version}",
    )
    click.echo(f"Probabilities: {out}")
    if written is not None:
        click.echo(f"Catalog: {written:,} RegimeProbabilities records for {instrument_id}; replay:")
        click.echo("  " + json.dumps(replay_data_config(instrument_id)))
    if chart_path is not None:
        click.echo(f"Chart: {chart_path}")
    sys.stdout.flush()
