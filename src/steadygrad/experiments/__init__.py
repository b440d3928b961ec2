"""Experiments: typed configs, the run store, resumable sweeps (local or Ray) and reports."""

from steadygrad.experiments.archs import CNNConfig as CNNConfig
from steadygrad.experiments.archs import ResNetConfig as ResNetConfig
from steadygrad.experiments.archs import RNNConfig as RNNConfig
from steadygrad.experiments.archs import TransformerConfig as TransformerConfig
from steadygrad.experiments.archs import model_from_config as model_from_config
from steadygrad.experiments.config import Component as Component
from steadygrad.experiments.config import DataConfig as DataConfig
from steadygrad.experiments.config import DiagnosticsConfig as DiagnosticsConfig
from steadygrad.experiments.config import EarlyStoppingConfig as EarlyStoppingConfig
from steadygrad.experiments.config import ModelConfig as ModelConfig
from steadygrad.experiments.config import OptimizerConfig as OptimizerConfig
from steadygrad.experiments.config import RunConfig as RunConfig
from steadygrad.experiments.config import TrainConfig as TrainConfig
from steadygrad.experiments.config import config_from_dict as config_from_dict
from steadygrad.experiments.config import config_to_dict as config_to_dict
from steadygrad.experiments.execute import RunResult as RunResult
from steadygrad.experiments.execute import run_config as run_config
from steadygrad.experiments.index import STATES as STATES
from steadygrad.experiments.index import IndexRow as IndexRow
from steadygrad.experiments.index import RunIndex as RunIndex
from steadygrad.experiments.loader import apply_overrides as apply_overrides
from steadygrad.experiments.loader import dump_toml as dump_toml
from steadygrad.experiments.loader import load_config as load_config
from steadygrad.experiments.loader import loads_toml as loads_toml
from steadygrad.experiments.loader import loads_yaml as loads_yaml
from steadygrad.experiments.loader import parse_value as parse_value
from steadygrad.experiments.loader import read_table as read_table
from steadygrad.experiments.loader import save_config as save_config
from steadygrad.experiments.loader import set_key as set_key
from steadygrad.experiments.report import SweepReport as SweepReport
from steadygrad.experiments.report import build_report as build_report
from steadygrad.experiments.report import write_report as write_report
from steadygrad.experiments.runner import SweepResult as SweepResult
from steadygrad.experiments.runner import default_threads as default_threads
from steadygrad.experiments.runner import run_sweep as run_sweep
from steadygrad.experiments.space import PlannedRun as PlannedRun
from steadygrad.experiments.space import Sweep as Sweep
from steadygrad.experiments.space import load_sweep as load_sweep
from steadygrad.experiments.space import run_id as run_id
from steadygrad.experiments.space import sweep_from_dict as sweep_from_dict
from steadygrad.experiments.store import RunStore as RunStore
from steadygrad.experiments.store import sanitize_name as sanitize_name
from steadygrad.experiments.store import validate_run_name as validate_run_name
from steadygrad.experiments.worker import worker_loop as worker_loop

__all__ = [
    "STATES",
    "CNNConfig",
    "Component",
    "DataConfig",
    "DiagnosticsConfig",
    "EarlyStoppingConfig",
    "IndexRow",
    "ModelConfig",
    "OptimizerConfig",
    "PlannedRun",
    "RNNConfig",
    "ResNetConfig",
    "RunConfig",
    "RunIndex",
    "RunResult",
    "RunStore",
    "Sweep",
    "SweepReport",
    "SweepResult",
    "TrainConfig",
    "TransformerConfig",
    "apply_overrides",
    "build_report",
    "config_from_dict",
    "config_to_dict",
    "default_threads",
    "dump_toml",
    "load_config",
    "load_sweep",
    "loads_toml",
    "loads_yaml",
    "model_from_config",
    "parse_value",
    "read_table",
    "run_config",
    "run_id",
    "run_sweep",
    "sanitize_name",
    "save_config",
    "set_key",
    "sweep_from_dict",
    "validate_run_name",
    "worker_loop",
    "write_report",
]
