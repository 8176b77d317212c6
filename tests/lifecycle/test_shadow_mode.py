"""Shadow mode: a registered challenger runs beside the champion in the same node and logs its
regime updates; the strategies see only the champion's records (it trades nothing)."""

import numpy as np
from lifecycle_kit import BAR_TYPE
from lifecycle_kit import WALK_FORWARD
from lifecycle_kit import fit_on
from lifecycle_kit import node_document
from lifecycle_kit import run_document

from grodt.tracking.registry import register_model
from node_configs.model_refs import pin_model_references


def test_the_challenger_is_filtered_and_logged_but_never_published(
    sqlite_registry,
    lifecycle_catalog,
    market,
):
    champion = fit_on(market, 0, 500)
    challenger = fit_on(market, 300, 800, seed=1)
    register_model(champion, "regime_hmm", aliases=["champion"], filename="regime.json")
    register_model(challenger, "regime_hmm", aliases=["challenger"], filename="regime.json")
    actor = {
        "bar_types": [BAR_TYPE],
        "walk_forward": WALK_FORWARD,
        "model": "regime_hmm@champion",
        "shadow_model": "regime_hmm@challenger",
    }
    document = pin_model_references(node_document(actor))
    assert document["actors"][0]["config"]["shadow_model"] == "regime_hmm/2"
    with_shadow, actor_run = run_document(document, lifecycle_catalog)
    alone, _ = run_document(
        node_document({**actor, "model": "regime_hmm/1", "shadow_model": None}),
        lifecycle_catalog,
    )
    # What the strategies see is exactly the champion's stream.
    assert with_shadow.records == alone.records
    assert {r[4] for r in with_shadow.records} == {"prior", f"regime_hmm/1:{champion.version_}"}

    shadow_updates = [u for u in with_shadow.updates if u.component_id.endswith(".shadow")]
    assert shadow_updates
    assert all(u.reason.startswith("shadow:") for u in shadow_updates)
    assert {u.model_versions["regime"] for u in shadow_updates} <= {
        "prior",
        f"regime_hmm/2:{challenger.version_}",
    }
    champion_updates = [u for u in with_shadow.updates if not u.component_id.endswith(".shadow")]
    assert [u.reason for u in champion_updates] == [u.reason for u in alone.updates]

    summary = actor_run.summary()[BAR_TYPE]
    assert summary["shadow_model_version"] == f"regime_hmm/2:{challenger.version_}"
    assert summary["shadow_bars_compared"] > 1000
    assert 0.0 <= summary["shadow_agreement"] <= 1.0
    assert np.isfinite(summary["shadow_agreement"])
