"""Save and load grodt models in their own format inside an MLflow model.

A registered model is an MLflow ``pyfunc`` model (so MLflow can serve it) whose artifact
``native/`` holds the model in its own format plus ``grodt_model.json`` saying how to load it:

- ``protocol``: the class has ``save(path)`` and a classmethod ``load(path)`` (grodt's models:
  ``models.regime.hmm.GaussianRegimeHMM``, SB3 policies); ``path`` is ``native/<filename>``;
- ``lightgbm``: a ``lightgbm.Booster``, saved as LightGBM's text model;
- ``pickle``: any other estimator (an hmmlearn ``GaussianHMM``, a scikit-learn pipeline), with
  joblib. Loading a pickle runs code from the registry: only register models you trust.

:func:`load_native` returns the original Python object, so ``load(register(model))`` predicts
exactly like ``model``.
"""

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import Literal

from grodt.core.errors import GrodtError

NATIVE_DIR = "native"
META_FILE = "grodt_model.json"
PREDICT_METHODS = ("filter_proba", "predict_proba", "predict")


@dataclass(frozen=True)
class NativeMeta:
    """Contents of ``grodt_model.json``.

    Attributes
    ----------
    loader : {"protocol", "lightgbm", "pickle"}
        How the model is stored.
    cls : str
        ``module:QualName`` of the model's class.
    filename : str
        File (or stem) inside ``native/`` passed to ``save``/``load``.
    model_version : str | None
        The model's own version (``version_``/``version`` attribute), e.g. ``hmm-3f2a…``.
    predict_method : str | None
        The method pyfunc ``predict`` calls.
    """

    loader: Literal["protocol", "lightgbm", "pickle"]
    cls: str
    filename: str
    model_version: str | None
    predict_method: str | None


def class_path(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def model_version_of(model: Any) -> str | None:
    """The model's own version string if it has one (``version_``, ``version``)."""
    for attribute in ("version_", "version", "model_version"):
        value = getattr(model, attribute, None)
        if isinstance(value, str | int) and not callable(value):
            return str(value)
    return None


def default_predict_method(model: Any) -> str | None:
    for name in PREDICT_METHODS:
        if callable(getattr(model, name, None)):
            return name
    return None


def _is_protocol(model: Any) -> bool:
    load = getattr(type(model), "load", None)
    return callable(getattr(model, "save", None)) and callable(load)


def save_native(
    model: Any,
    directory: Path,
    filename: str = "model",
    predict_method: str | None = None,
) -> NativeMeta:
    """Write ``model`` and its ``grodt_model.json`` into the empty ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    if predict_method is not None and not callable(getattr(model, predict_method, None)):
        raise GrodtError(f"{class_path(model)} has no method {predict_method!r} to predict with")
    method = predict_method or default_predict_method(model)
    try:
        import lightgbm

        is_booster = isinstance(model, lightgbm.Booster)
    except ImportError:
        is_booster = False
    loader: Literal["protocol", "lightgbm", "pickle"]
    if is_booster:
        loader = "lightgbm"
        filename = filename if filename != "model" else "model.txt"
        model.save_model(str(directory / filename))
    elif _is_protocol(model):
        loader = "protocol"
        model.save(directory / filename)
    else:
        import joblib

        loader = "pickle"
        filename = filename if filename != "model" else "model.joblib"
        joblib.dump(model, directory / filename)
    meta = NativeMeta(
        loader=loader,
        cls=class_path(model),
        filename=filename,
        model_version=model_version_of(model),
        predict_method=method,
    )
    (directory / META_FILE).write_text(json.dumps(meta.__dict__, indent=2) + "\n")
    return meta


def read_meta(directory: Path) -> NativeMeta:
    path = directory / META_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return NativeMeta(**data)
    except FileNotFoundError:
        raise GrodtError(f"{path}: not a grodt model (no {META_FILE})") from None
    except (json.JSONDecodeError, TypeError) as e:
        raise GrodtError(f"{path}: invalid model metadata: {e}") from None


def _import_class(path: str) -> type:
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise GrodtError(f"cannot import model class {path!r}: {e}") from None
    return obj


def load_native(directory: Path) -> tuple[Any, NativeMeta]:
    """Load the model saved in ``directory`` by :func:`save_native`."""
    meta = read_meta(directory)
    target = directory / meta.filename
    if meta.loader == "lightgbm":
        import lightgbm

        return lightgbm.Booster(model_file=str(target)), meta
    if meta.loader == "protocol":
        return _import_class(meta.cls).load(target), meta
    import joblib

    return joblib.load(target), meta


def native_dir_of(mlflow_model_dir: Path) -> Path:
    """``native/`` inside a saved/downloaded MLflow model directory."""
    return Path(mlflow_model_dir) / "artifacts" / NATIVE_DIR
