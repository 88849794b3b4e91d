"""Training: the Learner loop, its callbacks, metrics and plots."""
from .callbacks import Checkpoint, EarlyStopping, History, LRSchedule, NonFiniteGuard, ProgressBar, Recorder
from .learner import (Callback, CancelBatchException, CancelEpochException, CancelFitException,
                      CancelTrainException, CancelValidException, Learner)
from .metrics import accuracy, confusion_matrix, error_rate

__all__ = ["Learner", "Callback", "CancelBatchException", "CancelTrainException", "CancelValidException",
           "CancelEpochException", "CancelFitException", "Recorder", "ProgressBar", "History", "Checkpoint",
           "EarlyStopping", "LRSchedule", "NonFiniteGuard", "accuracy", "error_rate", "confusion_matrix"]
