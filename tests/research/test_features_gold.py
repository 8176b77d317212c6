"""The gold table over a real catalog: features, targets, lineage back to the raw file and row,
the cache keyed by (catalog fingerprint, feature-set version), and `grodt features build`."""

import hashlib

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from features_kit import REFERENCE
from features_kit import SUBJECT
from features_kit import every_kind_set
from features_kit import ingest_csv
from features_kit import minute_bars
from features_kit import regime_frame

from catalogs.reader import read_bars_frame
from grodt.cli import main
from research.features import FeatureSet
from research.features import compute_batch
from research.features.gold import build_gold_table
from research.labels import target_table

N_BARS = 300


@pytest.fixture()
def scene(tmp_path):
    catalog = tmp_path / "catalog"
    raw_a = ingest_csv(catalog, minute_bars(N_BARS, seed=1), "FEATA.XTST", "a.csv")
    ingest_csv(catalog, minute_bars(N_BARS, seed=2), "FEATB.XTST", "b.csv")
    bars = read_bars_frame(catalog, SUBJECT)
    regimes = tmp_path / "probs.parquet"
    regime_frame(bars.index, every=1, seed=3).to_parquet(regimes)
    feature_set = every_kind_set(tmp_path / "every_kind.yaml")
    return {
        "root": tmp_path,
        "catalog": catalog,
        "raw_a": raw_a,
        "regimes": regimes,
        "set": feature_set,
    }


def _build(scene, **kwargs):
    return build_gold_table(
        scene["catalog"],
        FeatureSet.from_yaml(scene["set"]),
        scene["root"] / "gold",
        bar_types=[SUBJECT, REFERENCE],
        regime_files={
            "FEATA.XTST": scene["regimes"],
            "FEATB.XTST": scene["regimes"],
        },
        **kwargs,
    )


def test_gold_rows_hold_features_targets_and_trace_to_the_raw_file_and_row(scene):
    table = _build(scene)
    gold = pd.read_parquet(table.path)
    assert table.rows == len(gold) == 2 * N_BARS
    rows = gold[gold["bar_type"] == SUBJECT].reset_index(drop=True)
    bars = read_bars_frame(scene["catalog"], SUBJECT)
    feature_set = FeatureSet.from_yaml(scene["set"])
    expected = compute_batch(
        bars,
        feature_set,
        references={REFERENCE: read_bars_frame(scene["catalog"], REFERENCE)},
        regimes=pd.read_parquet(scene["regimes"]),
    )
    for column in feature_set.columns:
        np.testing.assert_array_equal(rows[column].to_numpy(), expected[column].to_numpy())
    targets = target_table(bars["close"], horizons=(1, 5, 15))
    for column in targets.columns:
        np.testing.assert_array_equal(
            rows[f"target_{column}"].to_numpy(dtype=float), targets[column].to_numpy(dtype=float)
        )

    # Lineage: the bronze copy is the raw file byte for byte, and row N of it is this bar.
    raw_bytes = scene["raw_a"].read_bytes()
    assert set(rows["source_sha256"]) == {hashlib.sha256(raw_bytes).hexdigest()}
    bronze = scene["catalog"] / rows["source_file"].iloc[0]
    assert bronze.read_bytes() == raw_bytes
    raw = pd.read_csv(bronze)
    for position in (0, 137, N_BARS - 1):
        line = raw.iloc[int(rows["source_row"].iloc[position]) - 1]  # 1-based data row
        assert pd.Timestamp(line["timestamp"], tz="UTC") == rows["ts_event"].iloc[position]
        assert line["close"] == bars["close"].iloc[position]


def test_an_unchanged_build_is_reused_and_a_changed_catalog_or_set_is_rebuilt(scene):
    first = _build(scene)
    again = _build(scene)
    assert (again.reused, again.path) == (True, first.path)
    assert not first.reused

    # A longer window is another feature version, hence another key.
    changed = scene["set"].read_text().replace("period: 10", "period: 11")
    scene["set"].write_text(changed)
    other_set = _build(scene)
    assert not other_set.reused and other_set.key != first.key

    # New bars in the catalog change its fingerprint.
    later = minute_bars(50, seed=4, start="2024-01-03 06:00")
    ingest_csv(scene["catalog"], later, "FEATA.XTST", "a_later.csv")
    grown = _build(scene)
    assert not grown.reused and grown.key not in {first.key, other_set.key}
    assert grown.rows == 2 * N_BARS + 50
    gold = pd.read_parquet(grown.path)
    assert gold["source_file"].str.endswith("a_later.csv").sum() == 50


def test_bars_ingested_from_a_dataframe_have_no_lineage(tmp_path):
    from features_kit import SPEC_YAML

    from catalogs.ingest import ingest_frame

    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC_YAML.format(id="FEATA.XTST"))
    ingest_frame(minute_bars(120, seed=1), spec, tmp_path / "catalog")
    set_path = tmp_path / "set.yaml"
    set_path.write_text("- {kind: sma, period: 5}\n")
    table = build_gold_table(tmp_path / "catalog", FeatureSet.from_yaml(set_path), tmp_path / "g")
    gold = pd.read_parquet(table.path)
    assert gold["source_file"].isna().all() and gold["source_row"].isna().all()
    assert gold["sma_5"].notna().sum() == 116


def test_the_cli_builds_with_progress_then_reuses(scene):
    runner = CliRunner()
    args = [
        "features",
        "build",
        "--catalog",
        str(scene["catalog"]),
        "--set",
        str(scene["set"]),
        "--out",
        str(scene["root"] / "gold"),
        "--bar-type",
        SUBJECT,
        "--bar-type",
        REFERENCE,
        "--regimes",
        f"FEATA.XTST={scene['regimes']}",
        "--regimes",
        f"FEATB.XTST={scene['regimes']}",
    ]
    built = runner.invoke(main, args)
    assert built.exit_code == 0, built.output
    assert "Gold table built: 600 rows" in built.output
    assert "0/2 [" in built.output and f"{SUBJECT} (300 rows)" in built.output  # progress
    reused = runner.invoke(main, [*args, "--json"])
    assert reused.exit_code == 0, reused.output
    assert '"reused": true' in reused.output


def test_the_cli_names_what_is_missing(scene):
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "features",
            "build",
            "--catalog",
            str(scene["catalog"]),
            "--set",
            str(scene["set"]),
            "--out",
            str(scene["root"] / "gold"),
            "--bar-type",
            SUBJECT,
        ],
    )
    # The set has a regime feature and the catalog holds no regime records of FEATA.XTST.
    assert result.exit_code == 2, result.output
    assert "RegimeProbabilities records of FEATA.XTST" in result.output
    assert "--to-catalog" in result.output
