"""steadygrad: train deep networks stably on PyTorch.

The toolbox (initializers, activations, batch norm, clipping, optimizers, schedules,
regularization, transfer learning, MC dropout, compression) behind one API, plus a
gradient-health monitor that names the problem and proposes the remedy.

Example:
    >>> import steadygrad as sg
    >>> data = sg.data.load("digits")
    >>> model = sg.mlp(data.input_shape, (32,), num_outputs=data.num_classes, seed=0)
    >>> history = sg.fit(model, data, epochs=5, optimizer="adam", seed=0, verbose=0)
    >>> history["val_accuracy"][-1] > 0.8
    True
"""

from steadygrad import data as data
from steadygrad import nn as nn
from steadygrad import optim as optim
from steadygrad.compress.latency import latency as latency
from steadygrad.diagnostics.monitor import GradientMonitor as GradientMonitor
from steadygrad.diagnostics.report import HealthReport as HealthReport
from steadygrad.doctor.core import doctor as doctor
from steadygrad.nn.build import mlp as mlp
from steadygrad.nn.cnn import cnn as cnn
from steadygrad.nn.presets import default_dnn as default_dnn
from steadygrad.nn.presets import self_normalizing as self_normalizing
from steadygrad.nn.resnet import resnet as resnet
from steadygrad.nn.rnn import rnn as rnn
from steadygrad.nn.summary import summary as summary
from steadygrad.nn.transformer import transformer as transformer
from steadygrad.optim.clipping import GradientClipper as GradientClipper
from steadygrad.optim.lr_finder import lr_find as lr_find
from steadygrad.optim.optimizers import make_optimizer as make_optimizer
from steadygrad.optim.plateau import PerformanceScheduler as PerformanceScheduler
from steadygrad.optim.plot import plot_schedule as plot_schedule
from steadygrad.optim.schedules import make_schedule as make_schedule
from steadygrad.train.builtin_callbacks import EarlyStopping as EarlyStopping
from steadygrad.train.builtin_callbacks import ModelCheckpoint as ModelCheckpoint
from steadygrad.train.callbacks import Callback as Callback
from steadygrad.train.evaluate import evaluate as evaluate
from steadygrad.train.evaluate import predict as predict
from steadygrad.train.evaluate import predict_proba as predict_proba
from steadygrad.train.history import History as History
from steadygrad.train.loop import fit as fit
from steadygrad.uncertainty.mc_dropout import mc_predict as mc_predict

__version__ = "0.1.0"

__all__ = [
    "Callback",
    "EarlyStopping",
    "GradientClipper",
    "GradientMonitor",
    "HealthReport",
    "History",
    "ModelCheckpoint",
    "PerformanceScheduler",
    "__version__",
    "cnn",
    "data",
    "default_dnn",
    "doctor",
    "evaluate",
    "fit",
    "latency",
    "lr_find",
    "make_optimizer",
    "make_schedule",
    "mc_predict",
    "mlp",
    "nn",
    "optim",
    "plot_schedule",
    "predict",
    "predict_proba",
    "resnet",
    "rnn",
    "self_normalizing",
    "summary",
    "transformer",
]
