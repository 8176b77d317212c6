"""Training: reproducible on CPU (same seed, same weights and evaluation), and `grodt rl train`
end to end (parallel specialists, checkpoints under the retention policy, the model saved in the
run's bundle for registration, an out-of-sample evaluation). Publishing a bundle's models to the
MLflow registry is the tracking package's (tests/tracking); it costs ~15 s more here."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from mlflow import MlflowClient
from rl_kit import synthetic_catalog
from rl_kit import training_config

from grodt.cli import main
from grodt.experiments.rl_config import load_rl_config
from grodt.experiments.rl_data import prepare_data
from grodt.experiments.rl_evaluation import evaluate_specialists
from grodt.experiments.rl_training import generalist_job
from grodt.experiments.rl_training import specialist_jobs
from grodt.experiments.rl_worker import run_job
from grodt.tracking.modeldir import load_model_dir
from models.rl.observation import ObservationSpec
from models.rl.specialists import SpecialistSet
from models.rl.specialists import algorithm_class


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return synthetic_catalog(tmp_path_factory.mktemp("rl_training"))


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _weights(path: str) -> dict[str, np.ndarray]:
    model = algorithm_class("PPO").load(path, device="cpu")
    return {k: v.numpy().copy() for k, v in model.policy.state_dict().items()}


def _train_twice(config, data, tmp_path):
    outcomes = []
    for attempt in ("a", "b"):
        run_dir = tmp_path / attempt
        generalist = run_job(generalist_job(config, data, run_dir))
        jobs = specialist_jobs(config, data, run_dir, generalist.path)
        outcomes.append([generalist, *(run_job(job) for job in jobs[:1])])
    return outcomes


def test_the_same_seed_gives_the_same_weights_and_evaluation(catalog, tmp_path):
    config = load_rl_config(training_config(tmp_path, catalog))
    data = prepare_data(config, tmp_path / "matrices")
    first, second = _train_twice(config, data, tmp_path)
    for a, b in zip(first, second, strict=True):
        wa, wb = _weights(a.path), _weights(b.path)
        assert wa.keys() == wb.keys()
        for key in wa:
            np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)
    # fine-tuning changed the generalist's weights: the check above compares trained models
    generalist, specialist = _weights(first[0].path), _weights(first[1].path)
    assert any(not np.array_equal(generalist[k], specialist[k]) for k in generalist)
    spec = ObservationSpec.from_dict(data.env.observation)
    evaluations = []
    for outcomes in (first, second):
        loader = algorithm_class("PPO")
        models = {"bull": loader.load(outcomes[1].path, device="cpu")}
        specialists = SpecialistSet(models, "PPO", "continuous", spec)
        evaluations.append(
            evaluate_specialists(specialists, data, data.test_segments, modes=("blend",))
        )
    assert evaluations[0] == evaluations[1]
    assert np.isfinite(evaluations[0]["blend"]["sharpe"])
    # the seed matters: another seed trains other weights
    other = run_job(generalist_job(config.model_copy(update={"seed": 4}), data, tmp_path / "c"))
    assert any(not np.array_equal(generalist[k], _weights(other.path)[k]) for k in generalist)


def test_rl_train_command_end_to_end(catalog, tmp_path):
    config = training_config(tmp_path, catalog)
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        [
            "rl",
            "train",
            str(config),
            "--workers",
            "2",
            "--run-dir",
            str(run_dir),
            "--no-tracking",
            "--json",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert set(summary["train_seconds"]) == {"generalist", "bull", "bear", "sideways"}
    assert all(rss > 0 for rss in summary["peak_rss_mb"].values())
    test = summary["test"]
    expected = {"buy_and_hold", "blend", "hard", "always_on", "finrl", "generalist"}
    assert expected | {f"specialist:{label}" for label in ("bull", "bear", "sideways")} == set(test)
    assert all(np.isfinite(m["total_return"]) for m in test.values())
    assert test["buy_and_hold"]["turnover"] > 0  # one buy at the start
    specialists = SpecialistSet.load(run_dir / "specialists")
    assert specialists.labels == ("bull", "bear", "sideways") and specialists.has_generalist
    assert specialists.observation.feature_names == (
        "log_return_1",
        "log_return_5",
        "volatility_20",
        "rsi_14",
    )
    # checkpoints: every 64 steps, keep_last 1 (retention policy), per model
    for name in ("generalist", "bull"):
        kept = sorted((run_dir / "checkpoints" / name).glob("step-*"))
        assert len(kept) == 1, kept
    # the bundle registers rl_syn_test (alias challenger) on publish; its model directory loads
    # back as the same set
    bundle = json.loads((run_dir / "tracking" / "bundle.json").read_text())
    [entry] = bundle["models"]
    assert (entry["name"], entry["aliases"]) == ("rl_syn_test", ["challenger"])
    loaded, _meta = load_model_dir(run_dir / entry["path"])
    obs = specialists.observation.build(np.zeros(4), 0.0)
    assert loaded.predict(obs) == specialists.predict(obs)
    # the specialists trained in worker processes equal the same jobs run in this process
    data = prepare_data(load_rl_config(config), tmp_path / "matrices")
    local = tmp_path / "local"
    generalist = run_job(generalist_job(load_rl_config(config), data, local))
    [bull, *_] = specialist_jobs(load_rl_config(config), data, local, generalist.path)
    trained_here, trained_there = (
        _weights(run_job(bull).path),
        _weights(str(run_dir / "models_raw" / "bull.zip")),
    )
    for key, value in trained_here.items():
        np.testing.assert_array_equal(value, trained_there[key], err_msg=key)
    curve = (run_dir / "tracking" / "metrics.jsonl").read_text()
    assert "generalist.step_reward" in curve and "bull.step_reward" in curve
    # the bundle publishes into a real MLflow registry: the version carries alias challenger
    # (MLflow reserves "latest", which failed every tracked `grodt rl train`)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    synced = CliRunner().invoke(main, ["tracking", "sync", str(run_dir), "--tracking-uri", uri])
    assert synced.exit_code == 0, synced.output
    version = MlflowClient(tracking_uri=uri).get_model_version_by_alias("rl_syn_test", "challenger")
    assert int(version.version) == 1


def test_config_errors_name_the_field(tmp_path, catalog):
    from grodt.core.errors import ConfigError

    bad = training_config(tmp_path, catalog, action="discrete")
    with pytest.raises(ConfigError, match="MaskablePPO"):
        load_rl_config(bad)
    typo = training_config(tmp_path, catalog, timestep={"generalist": 5})
    with pytest.raises(ConfigError, match="timestep"):
        load_rl_config(typo)
