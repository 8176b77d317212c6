"""MLflow ``pyfunc`` wrapper of a grodt model (saved "models from code").

MLflow copies this file into every saved model and executes it when the model is loaded with
``mlflow.pyfunc.load_model``: it loads the native model from the ``native`` artifact and calls
its predict method (``filter_proba``/``predict_proba``/``predict``, recorded at save time).
grodt code loads models natively with :func:`grodt.tracking.registry.load_model` instead.
"""

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel
from mlflow.pyfunc import PythonModelContext

from grodt.tracking.native import load_native


class GrodtPyfuncModel(PythonModel):
    """``predict(model_input)`` → the native model's predict method on ``np.asarray(input)``."""

    def load_context(self, context: PythonModelContext) -> None:
        self.model, self.meta = load_native(Path(context.artifacts["native"]))

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> Any:
        if self.meta.predict_method is None:
            raise TypeError(f"{self.meta.cls} has no predict method")
        method = getattr(self.model, self.meta.predict_method)
        values = model_input.to_numpy() if hasattr(model_input, "to_numpy") else model_input
        output = method(np.asarray(values))
        return output[0] if isinstance(output, tuple) else output


mlflow.models.set_model(GrodtPyfuncModel())
