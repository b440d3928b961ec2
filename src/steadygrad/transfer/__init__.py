"""Transfer learning: reuse, clone, freeze/unfreeze, fine-tuning and unsupervised pretraining."""

from steadygrad.transfer.budgets import label_budget_table as label_budget_table
from steadygrad.transfer.budgets import take_labels as take_labels
from steadygrad.transfer.fine_tune import FINE_TUNE_KEYS as FINE_TUNE_KEYS
from steadygrad.transfer.fine_tune import FineTuneResult as FineTuneResult
from steadygrad.transfer.fine_tune import fine_tune as fine_tune
from steadygrad.transfer.fine_tune import fine_tune_from_spec as fine_tune_from_spec
from steadygrad.transfer.freeze import freeze as freeze
from steadygrad.transfer.freeze import frozen_parameter_names as frozen_parameter_names
from steadygrad.transfer.freeze import is_frozen_batch_norm as is_frozen_batch_norm
from steadygrad.transfer.freeze import unfreeze as unfreeze
from steadygrad.transfer.layer_select import LayerSelector as LayerSelector
from steadygrad.transfer.layer_select import select_layers as select_layers
from steadygrad.transfer.pretrain import StackedAutoencoder as StackedAutoencoder
from steadygrad.transfer.pretrain import TiedLinear as TiedLinear
from steadygrad.transfer.pretrain import classifier_from_encoder as classifier_from_encoder
from steadygrad.transfer.pretrain import encoder_mlp as encoder_mlp
from steadygrad.transfer.pretrain import pretrain_autoencoder as pretrain_autoencoder
from steadygrad.transfer.pretrain import pretrain_auxiliary as pretrain_auxiliary
from steadygrad.transfer.reuse import clone as clone
from steadygrad.transfer.reuse import output_features as output_features
from steadygrad.transfer.reuse import parameters_equal as parameters_equal
from steadygrad.transfer.reuse import reuse as reuse

__all__ = [
    "FINE_TUNE_KEYS",
    "FineTuneResult",
    "LayerSelector",
    "StackedAutoencoder",
    "TiedLinear",
    "classifier_from_encoder",
    "clone",
    "encoder_mlp",
    "fine_tune",
    "fine_tune_from_spec",
    "freeze",
    "frozen_parameter_names",
    "is_frozen_batch_norm",
    "label_budget_table",
    "output_features",
    "parameters_equal",
    "pretrain_autoencoder",
    "pretrain_auxiliary",
    "reuse",
    "select_layers",
    "take_labels",
    "unfreeze",
]
