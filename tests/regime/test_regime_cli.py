"""``grodt regime fit|infer`` end to end on a tmp catalog."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from grodt.cli import main
from models.regime.catalog_io import REGIME_FRAME_COLUMNS
from models.regime.catalog_io import load_bars
from models.regime.catalog_io import read_regime_records
from models.regime.hmm import GaussianRegimeHMM
from models.regime.walk_forward import WalkForwardConfig
from models.regime.walk_forward import run_walk_forward

BAR_TYPE = "REG.TEST-1-MINUTE-LAST-EXTERNAL"
SMALL = ["--n-init", "1", "--n-iter", "50"]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["regime", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_fit_saves_a_loadable_model(regime_catalog, tmp_path):
    out = tmp_path / "model.json"
    code, stdout, _ = invoke(
        "fit", "--catalog", str(regime_catalog), "--bar-type", BAR_TYPE, "--out", str(out),
        "--end", "2024-01-03 00:00", *SMALL, "--json",
    )  # fmt: skip
    assert code == 0
    result = json.loads(stdout)
    model = GaussianRegimeHMM.load(out)
    assert result["version"] == model.version_
    assert result["train_rows"] == model.n_train_ == result["bars"] - 50
    assert sorted(s["label"] for s in result["states"]) == ["bear", "bull", "sideways"]
    assert model.train_end_ns_ == int(pd.Timestamp("2024-01-03 00:00", tz="UTC").value)


def test_fit_prints_the_states(regime_catalog, tmp_path):
    code, stdout, _ = invoke(
        "fit", "--catalog", str(regime_catalog), "--bar-type", BAR_TYPE,
        "--out", str(tmp_path / "m.json"), "--train-bars", "500", *SMALL,
    )  # fmt: skip
    assert code == 0
    assert "3-state HMM on 500 bars of REG.TEST-1-MINUTE-LAST-EXTERNAL" in stdout
    assert stdout.count("  state ") == 3
    assert f"Model: {tmp_path / 'm.json'}" in stdout


def test_infer_writes_the_walk_forward_probabilities(regime_catalog, tmp_path):
    out = tmp_path / "regime.parquet"
    chart = tmp_path / "chart.html"
    code, stdout, _ = invoke(
        "infer", "--catalog", str(regime_catalog), "--bar-type", BAR_TYPE, "--out", str(out),
        "--train-bars", "600", "--min-train-bars", "400", "--refit-every", "250", *SMALL,
        "--to-catalog", "--chart", str(chart), "--json",
    )  # fmt: skip
    assert code == 0
    result = json.loads(stdout)
    frame = pd.read_parquet(out)
    assert list(frame.columns) == list(REGIME_FRAME_COLUMNS)
    assert result["bars"] == len(frame) == 1500
    assert result["fits"] >= 4 and result["catalog_records"] == 1500
    bars = load_bars(regime_catalog, BAR_TYPE)
    expected, _ = run_walk_forward(
        bars.close,
        bars.ts_event,
        WalkForwardConfig(train_bars=600, min_train_bars=400, refit_every=250, n_init=1, n_iter=50),
        on_info=lambda _m: None,
    )
    np.testing.assert_array_equal(frame["ts_init"], bars.ts_init)
    np.testing.assert_array_equal(
        frame[["p_bull", "p_bear", "p_sideways"]], expected[["p_bull", "p_bear", "p_sideways"]]
    )
    stored = read_regime_records(regime_catalog, "REG.TEST")
    assert [r.p_bear for r in stored] == frame["p_bear"].tolist()
    html = chart.read_text()
    assert "plotly" in html and "p(bull)" in html and len(html) > 1_000_000  # self-contained


def test_infer_from_a_fitted_model_warns_about_in_sample_bars(regime_catalog, tmp_path):
    model = tmp_path / "model.json"
    assert invoke(
        "fit", "--catalog", str(regime_catalog), "--bar-type", BAR_TYPE, "--out", str(model),
        *SMALL,
    )[0] == 0  # fmt: skip
    code, stdout, stderr = invoke(
        "infer", "--catalog", str(regime_catalog), "--bar-type", BAR_TYPE,
        "--out", str(tmp_path / "r.parquet"), "--model", str(model), "--start", "2024-01-02 20:00",
    )  # fmt: skip
    assert code == 0
    assert "fitted on bars up to" in stderr and "in-sample, not causal" in stderr
    frame = pd.read_parquet(tmp_path / "r.parquet")
    assert set(frame["model_version"].iloc[60:]) == {GaussianRegimeHMM.load(model).version_}
    assert "0 fits (0 failed)" in stdout


def test_settings_come_from_an_actor_component_file(regime_catalog, tmp_path):
    component = tmp_path / "regime.yaml"
    component.write_text(
        yaml.safe_dump(
            {
                "path": "actors.regime_actor:RegimeActor",
                "config": {
                    "bar_types": [BAR_TYPE],
                    "walk_forward": {
                        "features": ["log_return", "realized_vol:10", "trend:30"],
                        "n_states": 2,
                        "n_init": 1,
                    },
                },
            },
        ),
    )
    code, _, _ = invoke(
        "fit", "--catalog", str(regime_catalog), "--config", str(component),
        "--out", str(tmp_path / "m.json"), "--json",
    )  # fmt: skip
    assert code == 0
    model = GaussianRegimeHMM.load(tmp_path / "m.json")
    assert model.n_states == 2
    assert [str(f) for f in model.features] == ["log_return", "realized_vol:10", "trend:30"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bar-type", "NOPE.TEST-1-MINUTE-LAST-EXTERNAL"], "no bars of NOPE.TEST-1-MINUTE"),
        (["--bar-type", BAR_TYPE, "--end", "2024-01-02 15:30"], "too few bars to fit: 60 bars"),
        (["--bar-type", BAR_TYPE, "--feature", "bogus"], "error: features[0]: unknown feature"),
        (["--bar-type", BAR_TYPE, "--start", "2030-01-01"], "no bars of REG.TEST-1-MINUTE"),
        ([], "--bar-type: required"),
    ],
)
def test_fit_errors_are_one_clear_line(regime_catalog, tmp_path, args, message):
    code, _, stderr = invoke(
        "fit", "--catalog", str(regime_catalog), "--out", str(tmp_path / "m.json"), *args
    )
    assert code == 2
    assert stderr.startswith("error: ")
    assert message in stderr.replace("\n", " ") or pytest.fail(stderr)


def test_infer_needs_an_existing_catalog(tmp_path):
    code, _, stderr = invoke(
        "infer", "--catalog", str(tmp_path / "missing"), "--bar-type", BAR_TYPE,
        "--out", str(tmp_path / "r.parquet"),
    )  # fmt: skip
    assert code == 2
    assert "does not exist" in stderr
    assert not Path(tmp_path / "r.parquet").exists()
