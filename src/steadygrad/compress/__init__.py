"""Sparse and low-latency models: pruning, BN folding, int8/half precision, ONNX, latency."""

from steadygrad.compress.fold import batch_norm_affine as batch_norm_affine
from steadygrad.compress.fold import fold_batch_norm as fold_batch_norm
from steadygrad.compress.fold import fold_bn_into_next as fold_bn_into_next
from steadygrad.compress.fold import fold_bn_into_previous as fold_bn_into_previous
from steadygrad.compress.latency import LatencyRow as LatencyRow
from steadygrad.compress.latency import LatencyTable as LatencyTable
from steadygrad.compress.latency import infer_input_shape as infer_input_shape
from steadygrad.compress.latency import latency as latency
from steadygrad.compress.latency import percentile as percentile
from steadygrad.compress.onnx_export import ONNX_PACKAGES as ONNX_PACKAGES
from steadygrad.compress.onnx_export import check_onnx as check_onnx
from steadygrad.compress.onnx_export import export_onnx as export_onnx
from steadygrad.compress.onnx_export import onnx_available as onnx_available
from steadygrad.compress.prune import PRUNABLE as PRUNABLE
from steadygrad.compress.prune import PruneReport as PruneReport
from steadygrad.compress.prune import gradual_schedule as gradual_schedule
from steadygrad.compress.prune import layer_sparsity as layer_sparsity
from steadygrad.compress.prune import prunable_layers as prunable_layers
from steadygrad.compress.prune import prune_to_sparsity as prune_to_sparsity
from steadygrad.compress.prune import sparsity as sparsity
from steadygrad.compress.prune import sparsity_table as sparsity_table
from steadygrad.compress.prune import zero_small_weights_ as zero_small_weights_
from steadygrad.compress.quantize import HALF_DTYPES as HALF_DTYPES
from steadygrad.compress.quantize import QUANTIZATION_BACKENDS as QUANTIZATION_BACKENDS
from steadygrad.compress.quantize import CastInputs as CastInputs
from steadygrad.compress.quantize import available_backends as available_backends
from steadygrad.compress.quantize import quantize_dynamic_int8 as quantize_dynamic_int8
from steadygrad.compress.quantize import to_half as to_half

__all__ = [
    "HALF_DTYPES",
    "ONNX_PACKAGES",
    "PRUNABLE",
    "QUANTIZATION_BACKENDS",
    "CastInputs",
    "LatencyRow",
    "LatencyTable",
    "PruneReport",
    "available_backends",
    "batch_norm_affine",
    "check_onnx",
    "export_onnx",
    "fold_batch_norm",
    "fold_bn_into_next",
    "fold_bn_into_previous",
    "gradual_schedule",
    "infer_input_shape",
    "latency",
    "layer_sparsity",
    "onnx_available",
    "percentile",
    "prunable_layers",
    "prune_to_sparsity",
    "quantize_dynamic_int8",
    "sparsity",
    "sparsity_table",
    "to_half",
    "zero_small_weights_",
]
