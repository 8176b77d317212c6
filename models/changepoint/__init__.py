"""Bayesian online change-point detection (Adams & MacKay 2007): :mod:`models.changepoint.bocpd`."""

from models.changepoint.bocpd import BocpdConfig
from models.changepoint.bocpd import OnlineChangePoint
from models.changepoint.bocpd import run_bocpd

__all__ = ["BocpdConfig", "OnlineChangePoint", "run_bocpd"]
