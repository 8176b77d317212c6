"""Model registry round trips with real fitted models, aliases, offline loads, pruning, and
training runs that stream metrics."""

import json
from pathlib import Path

import numpy as np
import pytest

from grodt.core.errors import ConfigError
from grodt.core.errors import GrodtError
from grodt.test_kit.ports import free_port
from grodt.tracking.bundle import read_bundle
from grodt.tracking.bundle import read_series
from grodt.tracking.registry import load_model
from grodt.tracking.registry import parse_model_ref
from grodt.tracking.registry import prune_model_versions
from grodt.tracking.registry import register_model
from grodt.tracking.registry import resolve_model_uri
from grodt.tracking.registry import set_alias
from grodt.tracking.store import TrackingStore
from grodt.tracking.store import open_client
from grodt.tracking.training import TrainingRun
from models.regime.hmm import GaussianRegimeHMM


@pytest.fixture(scope="module")
def features() -> np.ndarray:
    """(400, 2) features with two clear regimes (calm drift up, volatile drift down)."""
    rng = np.random.default_rng(3)
    calm = np.column_stack([rng.normal(0.001, 0.005, 200), rng.normal(0.01, 0.001, 200)])
    wild = np.column_stack([rng.normal(-0.002, 0.02, 200), rng.normal(0.03, 0.003, 200)])
    return np.vstack([calm, wild, calm[:100], wild[:100]])[:400]


def test_parse_model_refs():
    assert parse_model_ref("regime_hmm@champion").alias == "champion"
    assert parse_model_ref("models:/regime_hmm/7").version == "7"
    assert parse_model_ref("regime_hmm").alias is None
    with pytest.raises(ConfigError, match="name@alias"):
        parse_model_ref("regime hmm@@x")


def test_hmmlearn_model_round_trip_with_alias(runs_dir, shared_sqlite_store, features):
    from hmmlearn.hmm import GaussianHMM

    model = GaussianHMM(n_components=2, covariance_type="full", n_iter=50, random_state=0)
    model.fit(features)
    expected = model.predict_proba(features)
    registered = register_model(
        model,
        "tracking_test_hmm",
        aliases=["champion"],
        params={"n_components": 2},
        metrics={"log_likelihood": model.score(features)},
        store=shared_sqlite_store,
    )
    assert registered.uri == f"models:/tracking_test_hmm/{registered.version}"
    assert resolve_model_uri("tracking_test_hmm@champion", shared_sqlite_store) == registered.uri
    loaded = load_model("tracking_test_hmm@champion", store=shared_sqlite_store)
    assert type(loaded.model) is GaussianHMM
    assert loaded.meta.loader == "pickle" and loaded.meta.predict_method == "predict_proba"
    np.testing.assert_array_equal(loaded.model.predict_proba(features), expected)
    assert loaded.tag == f"tracking_test_hmm/{registered.version}"

    # MLflow can serve the same version as a pyfunc model.
    import mlflow
    import mlflow.pyfunc

    mlflow.set_tracking_uri(shared_sqlite_store.uri)
    mlflow.set_registry_uri(shared_sqlite_store.uri)
    try:
        served = mlflow.pyfunc.load_model(registered.uri)
        np.testing.assert_allclose(served.predict(features), expected)
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


def test_lightgbm_booster_round_trip(runs_dir, shared_sqlite_store):
    import lightgbm

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.1, 300) > 0).astype(int)
    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 7, "seed": 1},
        lightgbm.Dataset(x, y),
        num_boost_round=20,
    )
    expected = booster.predict(x)
    registered = register_model(booster, "tracking_test_lgbm", store=shared_sqlite_store)
    loaded = load_model(f"tracking_test_lgbm/{registered.version}", store=shared_sqlite_store)
    assert loaded.meta.loader == "lightgbm"
    np.testing.assert_array_equal(loaded.model.predict(x), expected)


def test_grodt_regime_model_round_trip_uses_its_own_format(runs_dir, shared_sqlite_store, features):
    model = GaussianRegimeHMM(
        features=("log_return", "realized_vol:20"),
        n_init=1,
        n_iter=30,
    ).fit(features)
    expected = model.filter_proba(features)
    with TrainingRun("tracking_test_regime", store=shared_sqlite_store) as run:
        saved = run.register_model(model, "tracking_test_regime", aliases=["champion"])
    native = saved / "artifacts" / "native"
    meta = json.loads((native / "grodt_model.json").read_text())
    assert meta["loader"] == "protocol" and meta["model_version"] == model.version_
    assert run.result.ok
    loaded = load_model("tracking_test_regime@champion", store=shared_sqlite_store)
    assert loaded.resolved.model_version == model.version_
    np.testing.assert_array_equal(loaded.model.filter_proba(features), expected)


def test_alias_moves_and_offline_load_uses_the_last_resolution(
    runs_dir, shared_sqlite_store, features, tmp_path
):
    from hmmlearn.hmm import GaussianHMM

    first = GaussianHMM(n_components=2, n_iter=20, random_state=0).fit(features)
    second = GaussianHMM(n_components=3, n_iter=20, random_state=0).fit(features)
    v1 = register_model(first, "tracking_test_alias", ["champion"], store=shared_sqlite_store)
    v2 = register_model(second, "tracking_test_alias", store=shared_sqlite_store)
    cache = tmp_path / "cache"
    assert load_model("tracking_test_alias@champion", shared_sqlite_store, cache).version == (
        v1.version
    )
    set_alias("tracking_test_alias", "champion", v2.version, shared_sqlite_store)
    online = load_model("tracking_test_alias@champion", shared_sqlite_store, cache)
    assert online.version == v2.version
    dead = TrackingStore(
        uri=f"postgresql+psycopg://x@127.0.0.1:{free_port()}/db", artifact_root=None
    )
    offline = load_model("tracking_test_alias@champion", dead, cache)
    assert offline.version == v2.version
    np.testing.assert_array_equal(
        offline.model.predict_proba(features), second.predict_proba(features)
    )
    with pytest.raises(GrodtError, match="unreachable"):
        load_model("tracking_test_alias@champion", dead, cache, offline_fallback=False)
    with pytest.raises(GrodtError, match="not found"):
        load_model("tracking_test_alias@nobody", shared_sqlite_store, cache)


def test_prune_keeps_newest_best_and_aliased_versions(runs_dir, shared_sqlite_store, features):
    from hmmlearn.hmm import GaussianHMM

    model = GaussianHMM(n_components=2, n_iter=5, random_state=0).fit(features)
    scores = [0.5, 0.9, 0.1, 0.3, 0.2, 0.4]  # version 2 is the best
    versions = [
        register_model(
            model, "tracking_test_prune", metrics={"score": s}, store=shared_sqlite_store
        )
        for s in scores
    ]
    set_alias("tracking_test_prune", "champion", versions[0].version, shared_sqlite_store)
    deleted = prune_model_versions(
        "tracking_test_prune",
        keep_last=2,
        metric="score",
        mode="max",
        store=shared_sqlite_store,
    )
    assert sorted(deleted, key=int) == [versions[2].version, versions[3].version]
    client = open_client(shared_sqlite_store)
    left = client.search_model_versions("name = 'tracking_test_prune'")
    assert sorted(int(v.version) for v in left) == [1, 2, 5, 6]
    # Pruned versions' model files are gone (artifacts and run directory), kept ones load.
    for version in versions:
        run = client.get_run(version.run_id)
        model_dir = Path(run.data.tags["grodt.run_dir"]) / "models" / "tracking_test_prune"
        artifacts = {a.path for a in client.list_artifacts(version.run_id, "models")}
        pruned = version.version in deleted
        assert model_dir.exists() is not pruned
        assert ("models/tracking_test_prune" in artifacts) is not pruned
        assert client.get_run(version.run_id).data.metrics["score"] in scores  # run stays
    kept = load_model("tracking_test_prune/5", store=shared_sqlite_store)
    np.testing.assert_array_equal(kept.model.predict(features), model.predict(features))


def test_training_run_streams_metrics_and_marks_failures(runs_dir, pg_store):
    client = open_client(pg_store)
    with TrainingRun(
        "tracking_test_train", params={"lr": 0.01, "net": {"layers": [64, 64]}}, store=pg_store
    ) as run:
        assert run.run_id is not None  # live run while training
        for step in range(50):
            run.log_metrics({"loss": 1.0 / (step + 1), "reward": float(step)}, step=step)
        run.log_summary({"best": {"loss": 0.02}})
    assert run.result.status == "logged" and run.result.run_id == run.run_id
    finished = client.get_run(run.run_id)
    assert finished.info.status == "FINISHED"
    assert finished.data.params["net.layers"] == "[64,64]"
    assert finished.data.metrics["best.loss"] == 0.02
    history = client.get_metric_history(run.run_id, "loss")
    assert [m.step for m in history] == list(range(50))
    assert len(list(read_series(run.run_dir))) == 100  # and the bundle has them too

    failing = TrainingRun("tracking_test_train", store=pg_store)
    with pytest.raises(RuntimeError, match="diverged"), failing:
        failing.log_metrics({"loss": float("nan")})
        raise RuntimeError("diverged")
    failed = client.get_run(failing.run_id)
    assert failed.info.status == "FAILED"
    assert read_bundle(failing.run_dir).status == "FAILED"
    assert len(client.search_runs([failed.info.experiment_id])) == 2  # nothing duplicated
