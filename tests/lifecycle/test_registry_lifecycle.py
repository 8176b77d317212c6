"""Promotions and rollbacks on real registries (SQLite and PostgreSQL): every alias move is an
MLflow audit run and a JSON line; ``grodt regime fit`` is a tracked run that registers a version
with params, metrics, data fingerprint and code version."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from lifecycle_kit import BAR_TYPE
from lifecycle_kit import fit_on

from grodt.cli import main
from grodt.core.errors import GrodtError
from grodt.core.settings import get_settings
from grodt.tracking.registry import register_model
from grodt.tracking.registry import resolve_model
from grodt.tracking.registry_lifecycle import history
from grodt.tracking.registry_lifecycle import list_versions
from grodt.tracking.registry_lifecycle import promote
from grodt.tracking.registry_lifecycle import rollback
from grodt.tracking.store import open_client


def test_promote_rollback_history_are_audited(registry, market):
    for first in (0, 300, 600):
        register_model(fit_on(market, first, first + 500), "regime_hmm", filename="regime.json")
    with pytest.raises(GrodtError, match="no earlier version"):
        rollback("regime_hmm", store=registry)
    promote("regime_hmm", 1, reason="first champion", store=registry)
    promote("regime_hmm", 3, reason="retrained", store=registry)
    back = rollback("regime_hmm", reason="worse live", store=registry)
    assert (back.from_version, back.to_version) == ("3", "1")
    assert resolve_model("regime_hmm@champion", registry).version == "1"
    with pytest.raises(GrodtError, match="regime_hmm/9 not found"):
        promote("regime_hmm", 9, store=registry)

    moves = history("regime_hmm", registry)
    assert [(m.action, m.from_version, m.to_version) for m in moves] == [
        ("promote", None, "1"),
        ("promote", "1", "3"),
        ("rollback", "3", "1"),
    ]
    assert [m.reason for m in moves] == ["first champion", "retrained", "worse live"]
    lines = (Path(get_settings().runs_dir) / "registry_audit" / "regime_hmm.jsonl").read_text()
    audit = [json.loads(line) for line in lines.splitlines()]
    assert [a["audit_run_id"] for a in audit] == [m.audit_run_id for m in moves]
    versions = list_versions("regime_hmm", registry)
    assert [v.version for v in versions] == ["3", "2", "1"]
    assert versions[2].aliases == ("champion",)
    assert all(v.model_version and v.model_version.startswith("hmm-") for v in versions)


def test_models_cli(sqlite_registry, market):
    register_model(fit_on(market, 0, 500), "regime_hmm", filename="regime.json")
    register_model(fit_on(market, 500, 1000), "regime_hmm", filename="regime.json")
    runner = CliRunner()
    promoted = runner.invoke(main, ["models", "promote", "regime_hmm", "2", "--json"])
    assert promoted.exit_code == 0, promoted.output
    assert json.loads(promoted.output)["to_version"] == "2"
    listed = runner.invoke(main, ["models", "list", "regime_hmm"])
    assert listed.exit_code == 0 and "regime_hmm/2 @champion" in listed.output
    rolled = runner.invoke(main, ["models", "rollback", "regime_hmm", "--to", "1"])
    assert rolled.exit_code == 0 and "2 → 1" in rolled.output
    shown = runner.invoke(main, ["models", "history", "regime_hmm", "--json"])
    assert [m["action"] for m in json.loads(shown.output)] == ["promote", "rollback"]
    missing = runner.invoke(main, ["models", "rollback", "regime_hmm", "--to", "7"])
    assert missing.exit_code != 0 and "regime_hmm/7 not found" in missing.output


def test_regime_fit_is_a_tracked_run_that_registers_a_version(
    sqlite_registry,
    lifecycle_catalog,
):
    registry = sqlite_registry
    result = CliRunner().invoke(
        main,
        [
            "regime",
            "fit",
            "--catalog",
            str(lifecycle_catalog),
            "--bar-type",
            BAR_TYPE,
            "--n-init",
            "1",
            "--n-iter",
            "40",
            "--alias",
            "challenger",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    fitted = json.loads(result.output.strip().splitlines()[-1])
    assert fitted["registered"] == "regime_hmm/1"
    resolved = resolve_model("regime_hmm@challenger", registry)
    client = open_client(registry)
    version = client.get_model_version("regime_hmm", resolved.version)
    assert version.tags["grodt.model_version"] == fitted["version"]
    assert version.tags["grodt.data_fingerprint"] == fitted["data_fingerprint"]
    assert len(fitted["data_fingerprint"]) == 64
    assert version.tags["grodt.code_version"] == fitted["code_version"]
    run = client.get_run(version.run_id)
    assert run.data.params["bar_type"] == BAR_TYPE
    assert run.data.params["walk_forward.n_states"] == "3"
    assert run.data.params["data.fingerprint"] == fitted["data_fingerprint"]
    assert run.data.metrics["train_rows"] == fitted["train_rows"]
    assert run.data.metrics["log_likelihood"] == pytest.approx(fitted["log_likelihood"])

    # Straight to champion is refused before any fit: champion moves only through the gates
    # (`grodt models challenge`) or an audited `grodt models promote`.
    fit_args = ["regime", "fit", "--catalog", str(lifecycle_catalog), "--bar-type", BAR_TYPE]
    ungated = CliRunner().invoke(main, [*fit_args, "--alias", "champion"])
    assert ungated.exit_code != 0
    assert "does not become champion ungated" in ungated.output
    assert [v.version for v in client.search_model_versions("name = 'regime_hmm'")] == [1]


def test_models_challenge_cli_promotes_through_the_gates(
    sqlite_registry, lifecycle_catalog, market
):
    import pandas as pd

    from models.regime.catalog_io import load_bars

    register_model(fit_on(market, 0, 600), "regime_hmm", aliases=["champion"])
    register_model(fit_on(market, 0, 1000, train_bars=950), "regime_hmm", aliases=["challenger"])
    start = pd.Timestamp(int(load_bars(lifecycle_catalog, BAR_TYPE).ts_event[1000]), tz="UTC")
    args = ["models", "challenge", "regime_hmm", "--bar-type", BAR_TYPE, "--start"]
    args += [start.isoformat(), "--catalog", str(lifecycle_catalog), "--json"]
    promoted = CliRunner().invoke(main, [*args, "--max-score-drop", "0.1"])
    assert promoted.exit_code == 0, promoted.output
    assert json.loads(promoted.output)["promoted"] is True
    register_model(fit_on(market, 0, 500, seed=2), "regime_hmm", aliases=["challenger"])
    strict = CliRunner().invoke(main, [*args, "--max-score-drop", "-5"])  # must beat by 5 nats
    assert strict.exit_code == 1 and json.loads(strict.output)["promoted"] is False
    assert resolve_model("regime_hmm@champion", sqlite_registry).version == "2"
