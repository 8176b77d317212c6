"""A node loads its regime model from the registry (``regime_hmm@champion``): the alias is pinned
to a version when the config loads, the records cite that version, and with the registry down
the last resolved copy stands in, with a warning."""

import logging

import numpy as np
import pytest
from lifecycle_kit import BAR_TYPE
from lifecycle_kit import WALK_FORWARD
from lifecycle_kit import fit_on
from lifecycle_kit import node_document
from lifecycle_kit import run_document

from grodt.core.errors import GrodtError
from grodt.tracking.registry import register_model
from models.regime.catalog_io import load_bars
from models.regime.walk_forward import WalkForwardConfig
from models.regime.walk_forward import run_walk_forward
from node_configs.model_refs import is_registry_reference
from node_configs.model_refs import pin_model_references
from node_configs.model_refs import resolve_model_file


def test_registry_references_are_told_from_paths(tmp_path):
    assert is_registry_reference("regime_hmm@champion")
    assert is_registry_reference("regime_hmm/7")
    assert is_registry_reference("models:/regime_hmm/7")
    assert not is_registry_reference("runs/regime/model.json")
    assert not is_registry_reference("regime_hmm")  # a bare name is a (relative) file path
    existing = tmp_path / "a@b"
    existing.write_text("{}")
    assert not is_registry_reference(str(existing))


def test_a_node_runs_the_pinned_registry_version_and_cites_it(
    sqlite_registry,
    lifecycle_catalog,
    market,
):
    champion = fit_on(market, 0, 500)
    first = register_model(champion, "regime_hmm", aliases=["champion"], filename="regime.json")
    assert first.tag == "regime_hmm/1"
    document = node_document({"bar_types": [BAR_TYPE], "walk_forward": WALK_FORWARD})
    document["actors"][0]["config"]["model"] = "regime_hmm@champion"
    pinned = pin_model_references(document)
    assert pinned["actors"][0]["config"]["model"] == "regime_hmm/1"
    assert document["actors"][0]["config"]["model"] == "regime_hmm@champion"  # not mutated

    # The alias moves after the config was loaded: the node still runs version 1.
    register_model(fit_on(market, 200, 700), "regime_hmm", aliases=["champion"])
    recorder, actor = run_document(pinned, lifecycle_catalog)

    cited = f"regime_hmm/1:{champion.version_}"
    versions = [r[4] for r in recorder.records]
    assert set(versions) == {"prior", cited}
    assert actor.summary()[BAR_TYPE]["model_version"] == cited
    # The same probabilities as the offline filter started from that model.
    bars = load_bars(lifecycle_catalog, BAR_TYPE)
    frame, _ = run_walk_forward(
        bars.close,
        bars.ts_event,
        WalkForwardConfig(**WALK_FORWARD),
        model=champion,
        on_info=lambda _m: None,
    )
    np.testing.assert_array_equal(
        np.array([r[1:4] for r in recorder.records]),
        frame[["p_bull", "p_bear", "p_sideways"]].to_numpy(),
    )
    assert all(u.model_versions["regime"] in ("prior", cited) for u in recorder.updates)


def test_offline_the_last_resolved_copy_stands_in_and_says_so(
    sqlite_registry,
    market,
    go_offline,
    caplog,
):
    model = fit_on(market, 0, 500)
    register_model(model, "regime_hmm", aliases=["champion"], filename="regime.json")
    online = resolve_model_file("regime_hmm@champion")
    assert online.reference == "regime_hmm/1"

    go_offline()
    with caplog.at_level(logging.WARNING, logger="grodt.tracking"):
        pinned = pin_model_references(
            {"actors": [{"path": "x:Y", "config": {"model": "regime_hmm@champion"}}]},
        )
    assert pinned["actors"][0]["config"]["model"] == "regime_hmm/1"
    assert "unreachable" in caplog.text and "regime_hmm/1" in caplog.text
    # A pinned version in the cache loads without the store.
    offline = resolve_model_file("regime_hmm/1")
    assert offline.path == online.path
    with pytest.raises(GrodtError, match=r"unreachable.*no cached copy"):
        resolve_model_file("regime_hmm@challenger")


def test_a_registry_model_that_cannot_be_had_leaves_the_actor_on_the_prior(
    sqlite_registry,
    lifecycle_catalog,
):
    """The node starts (the engine thread gets no exception); the actor logs why and fits its
    own models on the walk-forward schedule."""
    document = node_document({"bar_types": [BAR_TYPE], "walk_forward": WALK_FORWARD})
    document["actors"][0]["config"]["model"] = "regime_hmm/9"
    recorder, actor = run_document(document, lifecycle_catalog)
    versions = [r[4] for r in recorder.records]
    assert versions[0] == "prior"
    assert versions[-1].startswith("hmm-")  # its own first fit
    assert actor.summary()[BAR_TYPE]["fits"] == 1
