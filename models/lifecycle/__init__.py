"""Model lifecycle machinery shared by every model that retrains online: the retraining schedule
(:class:`RetrainSchedule`) and the scheduled refit with lag (:class:`ScheduledRefitter`)."""

from models.lifecycle.refit import RefitOutcome
from models.lifecycle.refit import ScheduledRefitter
from models.lifecycle.schedule import RetrainSchedule

__all__ = ["RefitOutcome", "RetrainSchedule", "ScheduledRefitter"]
