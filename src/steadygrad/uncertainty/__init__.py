"""MC dropout uncertainty and calibration metrics (ECE, NLL, Brier, reliability diagrams)."""

from steadygrad.uncertainty.calibration import DEFAULT_BINS as DEFAULT_BINS
from steadygrad.uncertainty.calibration import ReliabilityBins as ReliabilityBins
from steadygrad.uncertainty.calibration import brier_score as brier_score
from steadygrad.uncertainty.calibration import (
    expected_calibration_error as expected_calibration_error,
)
from steadygrad.uncertainty.calibration import negative_log_likelihood as negative_log_likelihood
from steadygrad.uncertainty.calibration import reliability_bins as reliability_bins
from steadygrad.uncertainty.mc_dropout import MCPrediction as MCPrediction
from steadygrad.uncertainty.mc_dropout import enable_mc_dropout as enable_mc_dropout
from steadygrad.uncertainty.mc_dropout import mc_dropout_mode as mc_dropout_mode
from steadygrad.uncertainty.mc_dropout import mc_predict as mc_predict
from steadygrad.uncertainty.reliability import reliability_diagram as reliability_diagram

__all__ = [
    "DEFAULT_BINS",
    "MCPrediction",
    "ReliabilityBins",
    "brier_score",
    "enable_mc_dropout",
    "expected_calibration_error",
    "mc_dropout_mode",
    "mc_predict",
    "negative_log_likelihood",
    "reliability_bins",
    "reliability_diagram",
]
