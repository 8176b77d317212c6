"""The always-on baseline of a regime-routed node config: the same strategies, no routing.

Every regime-routed result is reported beside this baseline, so the value of the routing is
measured, not assumed. The baseline document:

- drops the regime actor (nothing consumes its probabilities any more);
- sets every regime-aware strategy's ``regime_affinity`` to 1 for every label with
  ``regime_gating: soft``: its regime scale is then Σ p·1 = 1 whatever the probabilities (the
  neutral prior included), so each strategy trades at its full allocation on every bar.

Everything else (strategies, parameters, allocations, venues, risk) stays as written.
"""

import copy
from collections.abc import Mapping
from typing import Any

from grodt.core.messages import REGIME_LABELS
from grodt.experiments.regime_learner import REGIME_ACTOR_PATH
from node_configs.loader import import_object

__all__ = ["always_on_document"]

_ROUTING_FIELD = "regime_affinity"


def _is_regime_aware(component: Mapping[str, Any]) -> bool:
    config_path = component.get("config_path") or f"{component.get('path')}Config"
    try:
        config_cls = import_object(str(config_path))
    except (ImportError, AttributeError, ValueError):
        # The node config's own check names this error when the fold's node is loaded.
        return False
    return _ROUTING_FIELD in getattr(config_cls, "__struct_fields__", ())


def always_on_document(document: Mapping[str, Any]) -> dict[str, Any] | None:
    """The always-on baseline of ``document`` (a resolved node config, includes merged), or
    ``None`` when the document has no regime routing to remove (no regime actor and no
    regime-aware strategy that is not already always on)."""
    baseline = copy.deepcopy(dict(document))
    changed = False
    actors = baseline.get("actors") or []
    kept = [
        a for a in actors if not (isinstance(a, Mapping) and a.get("path") == REGIME_ACTOR_PATH)
    ]
    if len(kept) != len(actors):
        baseline["actors"] = kept
        changed = True
    always_on = dict.fromkeys(REGIME_LABELS, 1.0)
    for strategy in baseline.get("strategies") or []:
        if not isinstance(strategy, Mapping) or not _is_regime_aware(strategy):
            continue
        config = strategy.setdefault("config", {})
        # A missing affinity is the class default, which is all ones.
        affinity = config.get(_ROUTING_FIELD, always_on)
        if affinity == always_on and config.get("regime_gating", "soft") == "soft":
            continue
        config[_ROUTING_FIELD] = dict(always_on)
        config["regime_gating"] = "soft"
        changed = True
    return baseline if changed else None
