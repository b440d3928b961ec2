"""Optimizers by name, gradient clipping, learning-rate schedules and the LR range test."""

from steadygrad.optim.clipping import GradientClipper as GradientClipper
from steadygrad.optim.clipping import clip_by_global_norm_ as clip_by_global_norm_
from steadygrad.optim.clipping import clip_by_norm_ as clip_by_norm_
from steadygrad.optim.clipping import clip_by_value_ as clip_by_value_
from steadygrad.optim.clipping import global_norm as global_norm
from steadygrad.optim.lr_finder import LRFinderResult as LRFinderResult
from steadygrad.optim.lr_finder import NoSuggestionError as NoSuggestionError
from steadygrad.optim.lr_finder import lr_find as lr_find
from steadygrad.optim.lr_finder import suggest_lr as suggest_lr
from steadygrad.optim.optimizers import OPTIMIZERS as OPTIMIZERS
from steadygrad.optim.optimizers import make_optimizer as make_optimizer
from steadygrad.optim.plateau import PerformanceScheduler as PerformanceScheduler
from steadygrad.optim.plot import plot_schedule as plot_schedule
from steadygrad.optim.schedules import SCHEDULES as SCHEDULES
from steadygrad.optim.schedules import Schedule as Schedule
from steadygrad.optim.schedules import constant as constant
from steadygrad.optim.schedules import cosine as cosine
from steadygrad.optim.schedules import exponential as exponential
from steadygrad.optim.schedules import make_schedule as make_schedule
from steadygrad.optim.schedules import one_cycle as one_cycle
from steadygrad.optim.schedules import piecewise_constant as piecewise_constant
from steadygrad.optim.schedules import power as power
from steadygrad.optim.schedules import warmup as warmup

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "GradientClipper",
    "LRFinderResult",
    "NoSuggestionError",
    "PerformanceScheduler",
    "Schedule",
    "clip_by_global_norm_",
    "clip_by_norm_",
    "clip_by_value_",
    "constant",
    "cosine",
    "exponential",
    "global_norm",
    "lr_find",
    "make_optimizer",
    "make_schedule",
    "one_cycle",
    "piecewise_constant",
    "plot_schedule",
    "power",
    "suggest_lr",
    "warmup",
]
