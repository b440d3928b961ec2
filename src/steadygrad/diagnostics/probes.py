"""Cheap probes taken on sampled steps only: attention logits/entropy, gradient through time.

* **Attention** (``nn.MultiheadAttention``): the pre-softmax logits ``q·kᵀ/√d`` recomputed
  from the module's inputs and its own projection weights (one extra pair of projections and
  one batched matmul, under ``no_grad``), reduced to the largest ``|logit|`` and the mean
  attention entropy normalised by ``ln S`` (1 = uniform, 0 = one key takes all). Growth of
  attention logits and collapse of the entropy accompany divergence in transformers (Zhai et
  al., ICML 2023; Wortsman et al., ICLR 2024). Masks are not applied.
* **Recurrent layers** (``RNN``/``GRU``/``LSTM``): the gradient of the loss with respect to
  the layer's input at each time step, caught by adding a zero tensor that requires a gradient
  to the input (``x + 0`` changes no value and no other gradient). ``time_orders =
  log10(‖g_first‖ / ‖g_last‖)``: how many orders of magnitude the gradient gains (> 0,
  exploding through time) or loses (< 0, vanishing) from the last time step back to the first.

Example:
    >>> import torch
    >>> from torch import nn
    >>> mha = nn.MultiheadAttention(4, 2, batch_first=True)
    >>> x = torch.randn(3, 5, 4)
    >>> logits = attention_logits(mha, x, x)
    >>> logits.shape
    torch.Size([3, 2, 5, 5])
    >>> st = attention_stats(logits)
    >>> st.shape, bool(0 < st[1] <= 1)
    (torch.Size([2]), True)
    >>> round(float(time_orders(torch.tensor([[[10.0], [1.0]]]), 1)), 3)  # (B, T, F)
    1.0
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["attention_logits", "attention_stats", "time_orders"]


def attention_logits(mha: nn.MultiheadAttention, query: torch.Tensor,
                     key: torch.Tensor) -> torch.Tensor:
    """The pre-softmax attention logits ``(batch, heads, L, S)`` of ``mha`` on these inputs.

    >>> mha = nn.MultiheadAttention(4, 1)  # sequence-first
    >>> attention_logits(mha, torch.randn(5, 2, 4), torch.randn(6, 2, 4)).shape
    torch.Size([2, 1, 5, 6])
    """
    e, h = mha.embed_dim, mha.num_heads
    hd = e // h
    if query.dim() == 2:
        query, key = query.unsqueeze(0), key.unsqueeze(0)
    elif not mha.batch_first:
        query, key = query.transpose(0, 1), key.transpose(0, 1)
    if mha._qkv_same_embed_dim:
        wq, wk = mha.in_proj_weight[:e], mha.in_proj_weight[e:2 * e]
    else:
        wq, wk = mha.q_proj_weight, mha.k_proj_weight
    b = mha.in_proj_bias
    bq, bk = (b[:e], b[e:2 * e]) if b is not None else (None, None)
    n, length, s = query.shape[0], query.shape[1], key.shape[1]
    q = F.linear(query, wq, bq).view(n, length, h, hd).transpose(1, 2)
    k = F.linear(key, wk, bk).view(n, s, h, hd).transpose(1, 2)
    return q @ k.transpose(-1, -2) / math.sqrt(hd)


def attention_stats(logits: torch.Tensor) -> torch.Tensor:
    """``[max |logit|, mean entropy / ln S]`` (float64) of ``(..., L, S)`` logits.

    >>> attention_stats(torch.zeros(1, 1, 2, 4)).tolist()  # uniform attention
    [0.0, 1.0]
    """
    s = logits.shape[-1]
    logp = torch.log_softmax(logits.double(), dim=-1)
    ent = -(logp.exp() * logp).sum(-1).mean() / math.log(s) if s > 1 else logp.new_ones(())
    return torch.stack([logits.detach().abs().amax().double(), ent])


def time_orders(grad: torch.Tensor, time_dim: int) -> torch.Tensor:
    """``log10(‖g[t=0]‖ / ‖g[t=T-1]‖)`` of an input gradient, time along ``time_dim``.

    >>> time_orders(torch.tensor([[1.0, 1.0], [1.0, 1.0]]), 0).item()  # (T, F), flat
    0.0
    """
    g = grad.detach().movedim(time_dim, 0)
    n = torch.linalg.vector_norm(g.reshape(g.shape[0], -1), dim=1, dtype=torch.float64)
    return torch.log10(n[0] / n[-1])
