"""Building blocks: initializers, activations, layers, model builders, presets and summary.

The model builders are ``mlp``, ``cnn``, ``resnet``, ``rnn`` and ``transformer``.

Submodules are imported as namespaces (``steadygrad.nn.init``, ``steadygrad.nn.activations``,
...); the most used functions are re-exported here.
"""

from steadygrad.nn import (
    activations as activations,
)
from steadygrad.nn import (
    constraints as constraints,
)
from steadygrad.nn import (
    init as init,
)
from steadygrad.nn import (
    regularizers as regularizers,
)
from steadygrad.nn.build import mlp as mlp
from steadygrad.nn.cnn import cnn as cnn
from steadygrad.nn.layers import MCAlphaDropout as MCAlphaDropout
from steadygrad.nn.layers import MCDropout as MCDropout
from steadygrad.nn.presets import Recipe as Recipe
from steadygrad.nn.presets import default_dnn as default_dnn
from steadygrad.nn.presets import self_normalizing as self_normalizing
from steadygrad.nn.resnet import resnet as resnet
from steadygrad.nn.rnn import rnn as rnn
from steadygrad.nn.summary import ModelSummary as ModelSummary
from steadygrad.nn.summary import summary as summary
from steadygrad.nn.transformer import transformer as transformer
from steadygrad.nn.zoo import EXAMPLE_MODELS as EXAMPLE_MODELS
from steadygrad.nn.zoo import example_model as example_model

__all__ = [
    "EXAMPLE_MODELS",
    "MCAlphaDropout",
    "MCDropout",
    "ModelSummary",
    "Recipe",
    "activations",
    "cnn",
    "constraints",
    "default_dnn",
    "example_model",
    "init",
    "mlp",
    "regularizers",
    "resnet",
    "rnn",
    "self_normalizing",
    "summary",
    "transformer",
]
