"""``grodt features``: feature sets and the gold table.

- ``grodt features build --catalog DIR --set FEATURES.yaml --out DIR``: features, targets and
  lineage of every bar into ``<out>/<key>/gold.parquet``, reused while the catalog and the set
  are unchanged;
- ``grodt features show FEATURES.yaml``: each feature's columns, warm-up and version.
"""

import json
from pathlib import Path

import click


@click.group(name="features")
def command() -> None:
    """Features: one definition, computed in batch (gold table) and per bar (streaming)."""


def _regime_files(values: tuple[str, ...]) -> dict[str, Path]:
    from grodt.core.errors import ConfigError

    files = {}
    for value in values:
        instrument, sep, path = value.partition("=")
        if not sep or not instrument or not path:
            raise ConfigError(f"--regimes {value!r}: expected INSTRUMENT_ID=FILE.parquet")
        files[instrument] = Path(path)
    return files


@command.command(name="build")
@click.option(
    "--catalog",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Catalog directory (default: GRODT_CATALOG, else data/catalog).",
)
@click.option(
    "--set",
    "set_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Feature-set YAML (e.g. node_configs/features/default.yaml).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory of gold tables; the build lands in OUT/<key>/gold.parquet.",
)
@click.option(
    "--bar-type",
    "bar_types",
    multiple=True,
    help="Only this bar type (repeatable; default: every bar type of the catalog).",
)
@click.option(
    "--horizon",
    "horizons",
    type=int,
    multiple=True,
    help="Target horizon in bars (repeatable; default 1, 5, 15).",
)
@click.option(
    "--regimes",
    "regimes",
    multiple=True,
    help="INSTRUMENT_ID=FILE: regime probabilities from `grodt regime infer --out` (repeatable; "
    "else the catalog's records).",
)
@click.option("--force", is_flag=True, help="Rebuild even when a cached table matches.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def build_command(
    catalog: Path | None,
    set_path: Path,
    out: Path,
    bar_types: tuple[str, ...],
    horizons: tuple[int, ...],
    regimes: tuple[str, ...],
    force: bool,
    as_json: bool,
) -> None:
    """Build the gold table of a catalog: instrument, bar_type, ts_event, the set's features,
    targets (target_*) and lineage (source_sha256, source_file, source_row)."""
    from tqdm import tqdm

    from grodt.core.settings import get_settings
    from research.features import FeatureSet
    from research.features.gold import build_gold_table

    catalog_path = catalog or get_settings().catalog
    if not catalog_path.is_dir():
        raise click.BadParameter(
            f"{catalog_path}: no such catalog directory", param_hint="--catalog"
        )
    feature_set = FeatureSet.from_yaml(set_path)
    from catalogs.reader import list_bar_types

    total = len(bar_types) or len(list_bar_types(catalog_path))
    with tqdm(total=total, unit="bar type", disable=as_json, leave=False) as progress:

        def advance(bar_type: str, rows: int) -> None:
            progress.set_postfix_str(f"{bar_type} ({rows:,} rows)")
            progress.update(1)

        table = build_gold_table(
            catalog_path,
            feature_set,
            out,
            bar_types=list(bar_types) or None,
            horizons=tuple(horizons) or (1, 5, 15),
            regime_files=_regime_files(regimes),
            on_progress=advance,
            force=force,
        )
    result = {
        "path": str(table.path),
        "key": table.key,
        "rows": table.rows,
        "bar_types": len(table.bar_types),
        "features": len(feature_set.columns),
        "feature_set_version": feature_set.version,
        "reused": table.reused,
        "seconds": table.seconds,
    }
    if as_json:
        click.echo(json.dumps(result))
        return
    how = "reused (catalog and feature set unchanged)" if table.reused else "built"
    click.echo(
        f"Gold table {how}: {table.rows:,} rows x {len(feature_set.columns)} features of "
        f"{len(table.bar_types)} bar type(s), set {feature_set.name!r} v{feature_set.version} "
        f"({table.seconds:.2f} s)"
    )
    click.echo(f"  {table.path}")


@command.command(name="show")
@click.argument("set_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def show_command(set_path: Path, as_json: bool) -> None:
    """Each feature of SET_PATH: kind, parameters, columns, warm-up (bars) and version."""
    from research.features import FeatureSet

    feature_set = FeatureSet.from_yaml(set_path)
    described = [spec.describe() for spec in feature_set]
    if as_json:
        click.echo(
            json.dumps(
                {"name": feature_set.name, "version": feature_set.version, "features": described}
            )
        )
        return
    click.echo(
        f"{feature_set.name}: {len(feature_set)} features, {len(feature_set.columns)} columns, "
        f"warm-up {feature_set.warm_up} bars, version {feature_set.version}"
    )
    for item in described:
        params = ", ".join(f"{k}={v}" for k, v in item["params"].items())
        click.echo(
            f"  {item['name']:<36} {item['kind']}({params})  warm-up {item['warm_up']}  "
            f"v{item['version']}"
        )
