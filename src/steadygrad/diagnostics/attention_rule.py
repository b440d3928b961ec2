"""The ``attention_saturation`` rule: attention entropy collapse in ``nn.MultiheadAttention``.

When the attention logits ``q·kᵀ/√d`` grow large, the softmax saturates: each query puts
(nearly) all its weight on one key, the attention entropy collapses towards 0 and the softmax
passes almost no gradient to the queries and keys. Zhai et al. (ICML 2023, "Stabilizing
Transformer Training by Preventing Attention Entropy Collapse") tie this collapse to unstable
or stalled training; Dehghani et al. (2023, ViT-22B) and Wortsman et al. (ICLR 2024) to the
growth of attention logits, fixed by normalizing queries and keys (QK-LayerNorm) or a lower
learning rate.

The evidence is the sampled-step probe ``<mha>:attn_entropy`` (mean attention entropy over
batch, heads and queries, divided by ``ln S``: 1 = uniform, 0 = one key takes all; see
:mod:`steadygrad.diagnostics.probes`). A module whose normalized entropy is at or below
``Thresholds.attention_entropy`` over ``persistence`` steps is saturated. Like the other
kinds it is a ``warning`` only when learning is impaired, else ``info``.

Example:
    >>> import numpy as np
    >>> from steadygrad.diagnostics.series import HealthSeries
    >>> s = HealthSeries.empty(["embed"], steps=[0, 1, 2, 3])
    >>> s.probes = {"blocks.0.attn:attn_entropy": np.array([0.9, 0.05, 0.04, 0.04]),
    ...             "blocks.0.attn:attn_logit_max": np.array([3.0, 80.0, 90.0, 95.0])}
    >>> f = attention_saturation(s, Thresholds(), impaired=True)
    >>> f.kind, f.severity, f.layers, f.first_step, f.raised_step
    ('attention_saturation', 'warning', ('blocks.0.attn',), 1, 3)
    >>> attention_saturation(s, Thresholds(), impaired=False).severity  # learns anyway
    'info'
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from steadygrad.diagnostics.progress import confirmed_onset
from steadygrad.diagnostics.remedies import REMEDIES
from steadygrad.diagnostics.series import HealthSeries
from steadygrad.diagnostics.thresholds import Finding, Thresholds

__all__ = ["attention_saturation"]

_ENTROPY = ":attn_entropy"
_LOGITS = ":attn_logit_max"


def _r(x: float) -> float | None:
    x = float(x)
    return float(f"{x:.4g}") if math.isfinite(x) else None


def attention_saturation(s: HealthSeries, th: Thresholds, impaired: bool | None
                         ) -> Finding | None:
    """The ``attention_saturation`` finding of ``s``, None when no attention module's
    normalized entropy stayed at or below ``th.attention_entropy`` for ``th.persistence``
    steps.

    Args:
        s: the recorded series (its ``probes`` hold ``<module>:attn_entropy`` per check).
        th: the thresholds.
        impaired: whether learning is impaired (:func:`~steadygrad.diagnostics.rules.
            learning_progress`): ``warning`` when True or unknown, ``info`` when False.

    >>> attention_saturation(HealthSeries.empty(["a"], steps=[0]), Thresholds(), True) is None
    True
    """
    hits: dict[str, tuple[int, int]] = {}
    for key, values in s.probes.items():
        if not key.endswith(_ENTROPY) or len(values) != s.checks:
            continue
        ent = np.asarray(values, dtype=float)
        flags = [bool(np.isfinite(e) and e <= th.attention_entropy) for e in ent]
        on = confirmed_onset(flags, s.steps, th.persistence)
        if on is not None:
            hits[key[: -len(_ENTROPY)]] = on
    if not hits:
        return None
    first = min(h[0] for h in hits.values())
    raised = min(h[1] for h in hits.values())
    modules = tuple(sorted(hits, key=lambda m: hits[m]))
    ev: dict[str, Any] = {"attn_entropy": {}, "attn_logit_max": {},
                          "threshold": th.attention_entropy, "learning_impaired": impaired}
    for m in modules:
        for key, out in ((_ENTROPY, ev["attn_entropy"]), (_LOGITS, ev["attn_logit_max"])):
            v = np.asarray(s.probes.get(m + key, []), dtype=float)
            fin = v[np.isfinite(v)]
            if fin.size:
                out[m] = {"first": _r(fin[0]), "last": _r(fin[-1])}
    lowest = min((v["last"] for v in ev["attn_entropy"].values() if v["last"] is not None),
                 default=math.nan)
    return Finding(
        "attention_saturation", "warning" if impaired is not False else "info", modules,
        int(s.steps[first]),
        f"{len(modules)} attention module(s) with a collapsed attention entropy (down to "
        f"{lowest:.2f} of uniform): the softmax saturates on one key per query and passes "
        "almost no gradient to the queries and keys; normalize them (pre-LN, QK-LayerNorm) "
        "or lower the learning rate",
        ev, REMEDIES["attention_saturation"], int(s.steps[raised]))
