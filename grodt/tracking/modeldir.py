"""Model directories: save a model as an MLflow ``pyfunc`` model directory and load it back.

A model directory is what :meth:`grodt.tracking.training.TrainingRun.register_model` writes
into ``<run_dir>/models/<name>/`` and what :mod:`grodt.tracking.registry` downloads into its
cache: an MLflow model whose ``native/`` artifact holds the model in its own format (see
:mod:`grodt.tracking.native`). Both the training run and the registry use this module; neither
imports the other for it.
"""

import functools
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from grodt.core.errors import GrodtError
from grodt.tracking.native import NativeMeta
from grodt.tracking.native import load_native
from grodt.tracking.native import native_dir_of
from grodt.tracking.native import save_native
from grodt.tracking.store import quiet_mlflow

__all__ = ["load_model_dir", "save_model"]

_FIRST_PARTY = frozenset(
    {"grodt", "models", "strategies", "actors", "risk_engine", "research", "catalogs"},
)


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, list[str]]:
    # Scans every installed distribution's file list: seconds, so once per process.
    return dict(metadata.packages_distributions())


def _distributions_of(module: str) -> list[str]:
    top = module.split(".")[0]
    if top in _FIRST_PARTY:
        return ["grodt"]
    try:
        metadata.version(top)
        return [top]
    except metadata.PackageNotFoundError:
        return list(_packages_distributions().get(top, []))


def _requirements(model: Any) -> list[str]:
    """pip requirements of a saved model: the model's own distribution plus the runtime."""
    names = {"mlflow", "numpy", "pandas", "joblib"}
    names.update(_distributions_of(type(model).__module__))
    found = []
    for name in sorted(names):
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return found


def save_model(
    model: Any,
    path: Path,
    filename: str = "model",
    predict_method: str | None = None,
) -> NativeMeta:
    """Save ``model`` as an MLflow pyfunc model directory at ``path`` (must not exist).

    The native format is chosen by :func:`grodt.tracking.native.save_native`; ``filename`` is
    the file name passed to the model's ``save`` (e.g. ``"regime.json"``).
    """
    path = Path(path)
    if path.exists():
        raise GrodtError(f"{path}: already exists; save_model writes a new directory")
    with tempfile.TemporaryDirectory(prefix="grodt-native-") as tmp:
        native = Path(tmp) / "native"
        meta = save_native(model, native, filename=filename, predict_method=predict_method)
        with quiet_mlflow():
            import mlflow.pyfunc

            from grodt.tracking import pyfunc_model

            mlflow.pyfunc.save_model(
                str(path),
                python_model=str(Path(pyfunc_model.__file__)),
                artifacts={"native": str(native)},
                pip_requirements=_requirements(model),
                metadata={k: v for k, v in meta.__dict__.items() if v is not None},
            )
    return meta


def load_model_dir(path: Path) -> tuple[Any, NativeMeta]:
    """Load the native model from a saved MLflow model directory (no store needed)."""
    return load_native(native_dir_of(Path(path)))
