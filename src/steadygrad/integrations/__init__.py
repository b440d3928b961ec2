"""Thin adapters to the hosts people already train with.

Each module imports its host lazily (only when it is imported itself), so ``import steadygrad``
never needs Lightning, transformers or TensorBoard:

- :mod:`steadygrad.integrations.tensorboard`: the monitor's series, findings and histograms as
  TensorBoard tags (or through any ``(tag, value, step)`` callable);
- :mod:`steadygrad.integrations.lightning`: ``GradientHealth``, a ``lightning.pytorch.Callback``
  (``pip install 'steadygrad[lightning]'``);
- :mod:`steadygrad.integrations.transformers`: ``GradientHealthCallback``, a Hugging Face
  ``TrainerCallback`` (``pip install 'steadygrad[transformers]'``).
"""

__all__: list[str] = []
