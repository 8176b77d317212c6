"""What a registered version records about its training data."""

import hashlib

import numpy as np

__all__ = ["bars_fingerprint"]


def bars_fingerprint(ts_event: np.ndarray, close: np.ndarray) -> str:
    """SHA-256 (hex) of the bars a model was fitted on: their close timestamps (int64 UNIX ns)
    and closes (float64), in order. The same bars give the same fingerprint on any machine;
    one changed, added or dropped bar gives another."""
    stamps = np.ascontiguousarray(np.asarray(ts_event, dtype=np.int64))
    values = np.ascontiguousarray(np.asarray(close, dtype=np.float64))
    if stamps.shape != values.shape:
        raise ValueError(f"ts_event {stamps.shape} and close {values.shape} differ in shape")
    digest = hashlib.sha256()
    digest.update(stamps.astype("<i8").tobytes())
    digest.update(values.astype("<f8").tobytes())
    return digest.hexdigest()
