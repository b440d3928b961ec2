"""The training loop: fit/evaluate/predict, History, callbacks, checkpoints and resume."""

from steadygrad.train.builtin_callbacks import EarlyStopping as EarlyStopping
from steadygrad.train.builtin_callbacks import LRLogger as LRLogger
from steadygrad.train.builtin_callbacks import ModelCheckpoint as ModelCheckpoint
from steadygrad.train.builtin_callbacks import TerminateOnNonFinite as TerminateOnNonFinite
from steadygrad.train.callbacks import CALLBACKS as CALLBACKS
from steadygrad.train.callbacks import Callback as Callback
from steadygrad.train.callbacks import CallbackList as CallbackList
from steadygrad.train.callbacks import Trainer as Trainer
from steadygrad.train.checkpoint import CheckpointManager as CheckpointManager
from steadygrad.train.checkpoint import load_weights as load_weights
from steadygrad.train.checkpoint import save_weights as save_weights
from steadygrad.train.evaluate import evaluate as evaluate
from steadygrad.train.evaluate import predict as predict
from steadygrad.train.evaluate import predict_proba as predict_proba
from steadygrad.train.history import Best as Best
from steadygrad.train.history import History as History
from steadygrad.train.learning_rate import set_learning_rate as set_learning_rate
from steadygrad.train.loggers import CSVLogger as CSVLogger
from steadygrad.train.loggers import JSONLLogger as JSONLLogger
from steadygrad.train.loggers import TensorBoard as TensorBoard
from steadygrad.train.loop import NON_FINITE_MODES as NON_FINITE_MODES
from steadygrad.train.loop import fit as fit
from steadygrad.train.losses import LOSSES as LOSSES
from steadygrad.train.losses import get_loss as get_loss
from steadygrad.train.metrics import METRICS as METRICS
from steadygrad.train.metrics import Accuracy as Accuracy
from steadygrad.train.metrics import BinaryAccuracy as BinaryAccuracy
from steadygrad.train.metrics import MeanAbsoluteError as MeanAbsoluteError
from steadygrad.train.metrics import MeanSquaredError as MeanSquaredError
from steadygrad.train.metrics import Metric as Metric
from steadygrad.train.metrics import get_metric as get_metric
from steadygrad.train.progress import ProgressBar as ProgressBar
from steadygrad.train.state import seed_everything as seed_everything
from steadygrad.train.step import build_step as build_step

__all__ = [
    "CALLBACKS",
    "LOSSES",
    "METRICS",
    "NON_FINITE_MODES",
    "Accuracy",
    "Best",
    "BinaryAccuracy",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "CheckpointManager",
    "EarlyStopping",
    "History",
    "JSONLLogger",
    "LRLogger",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "Metric",
    "ModelCheckpoint",
    "ProgressBar",
    "TensorBoard",
    "TerminateOnNonFinite",
    "Trainer",
    "build_step",
    "evaluate",
    "fit",
    "get_loss",
    "get_metric",
    "load_weights",
    "predict",
    "predict_proba",
    "save_weights",
    "seed_everything",
    "set_learning_rate",
]
