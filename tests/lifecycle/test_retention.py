"""The model download cache is bounded by the registry's retention policy: after every download
it keeps the newest KEEP_LAST copies, the versions the aliases last resolved to (the offline
fallback's copies) and the one just loaded; pruning registry versions deletes their cached
copies too. The offline fallback still works after pruning."""

import numpy as np

from grodt.tracking import registry
from grodt.tracking.registry import load_model
from grodt.tracking.registry import model_cache_root
from grodt.tracking.registry import prune_model_cache
from grodt.tracking.registry import prune_model_versions
from grodt.tracking.registry import register_model
from grodt.tracking.registry import set_alias
from research.ope.policies import LinearSoftmaxPolicy


def cached(name: str) -> list[int]:
    root = model_cache_root(None) / name
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit())


def test_the_model_cache_is_bounded_and_keeps_the_offline_copies(
    sqlite_registry, go_offline, monkeypatch
):
    monkeypatch.setattr(registry, "KEEP_LAST", 2)  # the policy's count, small for a quick test
    name = "retained"
    for k in range(5):
        register_model(LinearSoftmaxPolicy(coef=np.full((1, 2), float(k))), name)
    set_alias(name, "champion", 2, sqlite_registry)
    assert load_model(f"{name}@champion").version == "2"
    for version in range(3, 6):
        load_model(f"{name}/{version}")
        # Never more than the newest KEEP_LAST, the champion's pin and the one just loaded.
        assert len(cached(name)) <= 2 + 2
    assert cached(name) == [2, 4, 5]
    # An old version loaded again is downloaded again, and kept while it is the newest load.
    assert load_model(f"{name}/1").model.coef[0, 0] == 0.0
    assert cached(name) == [1, 2, 4, 5]
    assert prune_model_cache(name, keep_last=2) == ["1"]

    # Registry pruning (keep 1 + aliased) deletes the cached copies of the versions it deletes.
    deleted = prune_model_versions(name, keep_last=1, store=sqlite_registry)
    assert sorted(map(int, deleted)) == [1, 3, 4]
    assert cached(name) == [2, 5]

    go_offline()
    offline = load_model(f"{name}@champion")
    assert offline.version == "2" and offline.model.coef[0, 0] == 1.0  # k = version - 1
