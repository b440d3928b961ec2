"""Print a remedy two ways: the config patch (TOML) and the PyTorch code a plain-PyTorch user
would write for it.

Example:
    >>> print(as_toml({"train.optimizer.global_clipnorm": 1.0}))
    [train]
    <BLANKLINE>
    [train.optimizer]
    global_clipnorm = 1.0
    >>> print(as_pytorch({"train.optimizer.global_clipnorm": 1.0}))
    # in the training loop, between loss.backward() and optimizer.step():
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["as_pytorch", "as_toml"]


def as_toml(patch: Mapping[str, Any]) -> str:
    """The patch as a TOML fragment (``model.rewrites+`` steps are appended to
    ``[model] rewrites``).

    >>> print(as_toml({"model.rewrites+": ["pre_ln"], "train.schedule": "one_cycle"}))
    [model]
    rewrites = ["pre_ln"]  # appended to the existing list
    <BLANKLINE>
    [train]
    schedule = "one_cycle"
    """
    from steadygrad.experiments.loader import dump_toml, set_key

    table: dict[str, Any] = {}
    appended = []
    for key, value in patch.items():
        if key.endswith("+"):
            appended.append(key[:-1])
            set_key(table, key[:-1], list(value))
        else:
            set_key(table, key, value)
    text = dump_toml(table).strip()
    for key in appended:
        last = key.rsplit(".", 1)[-1]
        lines = text.splitlines()
        text = "\n".join(line + "  # appended to the existing list"
                         if line.startswith(f"{last} = ") else line for line in lines)
    return text


def _cls(name: str) -> str:
    from steadygrad.nn import activations

    return f"nn.{activations.get(name)!r}".split("(")[0]


def _step(step: Any) -> list[str]:
    spec = {"name": step} if isinstance(step, str) else dict(step)
    name = spec.pop("name")
    if name == "swap_activation":
        from steadygrad.nn import activations

        old = spec["old"] if isinstance(spec["old"], list) else [spec["old"]]
        new = f"nn.{activations.get(spec['new'])!r}"
        types = ", ".join(dict.fromkeys(_cls(o) for o in old))
        return [f"# every {types.replace(', ', '/')} module -> {new} (F.* calls in forward: "
                "edit them by hand)",
                "for parent in list(model.modules()):",
                "    for name, child in parent.named_children():",
                f"        if isinstance(child, ({types},)):",
                f"            setattr(parent, name, {new})"]
    if name == "reinit":
        act = spec.get("activation")
        arg = f", activation={act!r}" if act else ""
        return ["# re-draw Linear/Conv weights with the initializer matched to the activation "
                "after each layer",
                "# (He before ReLU/ELU, LeCun before SELU, Glorot otherwise; Keras semantics,",
                "# truncated normals as in Keras, so not nn.init.kaiming_normal_ exactly)",
                f"steadygrad.nn.init.initialize_(model, 'auto'{arg})"]
    if name == "insert_norm":
        kind, pos = spec.get("kind", "batch"), spec.get("position", "before")
        norm = "nn.BatchNorm1d/2d(width)" if kind == "batch" else "nn.LayerNorm(width)"
        where = ("between each hidden Linear/Conv and its activation (and bias=False on the "
                 "layer)" if pos == "before" and kind == "batch" else
                 "between each hidden Linear/Conv and its activation" if pos == "before"
                 else "after each hidden activation")
        return [f"# in your model: add {norm} {where}; or rewrite the built model:",
                f"model = steadygrad.nn.rewrite.insert_norm(model, kind={kind!r}, "
                f"position={pos!r}).module"]
    if name == "pre_ln":
        return ["# pre-LN: nn.TransformerEncoderLayer(..., norm_first=True) and "
                "nn.TransformerEncoder(..., norm=nn.LayerNorm(d_model)); on a built model:",
                "for m in model.modules():",
                "    if isinstance(m, nn.TransformerEncoderLayer):",
                "        m.norm_first = True"]
    if name == "alpha_dropout":
        return ["for parent in list(model.modules()):",
                "    for name, child in parent.named_children():",
                "        if type(child) is nn.Dropout:",
                "            setattr(parent, name, nn.AlphaDropout(child.p))"]
    return [f"model = steadygrad.nn.rewrite.{name}(model).module"]


def _key(key: str, value: Any) -> list[str]:
    if key == "train.optimizer.global_clipnorm":
        return ["# in the training loop, between loss.backward() and optimizer.step():",
                f"torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm={value})"]
    if key == "train.optimizer.clipnorm":
        return ["# between loss.backward() and optimizer.step(), each tensor on its own (Keras "
                "clipnorm):", "for p in model.parameters():",
                f"    torch.nn.utils.clip_grad_norm_([p], max_norm={value})"]
    if key == "train.optimizer.learning_rate":
        return ["for group in optimizer.param_groups:", f"    group['lr'] = {value}"]
    if key == "train.optimizer.name":
        cls = {"adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop", "nadam": "NAdam",
               "adamw": "AdamW", "adamax": "Adamax", "adagrad": "Adagrad"}.get(str(value),
                                                                              str(value))
        eps = ", eps=1e-7" if value in ("adam", "nadam", "adamw", "adamax") else ""
        return [f"optimizer = torch.optim.{cls}(model.parameters(), lr=LR{eps})  "
                "# eps as Keras"]
    if key == "train.schedule":
        name = value if isinstance(value, str) else value.get("name")
        if name in ("one_cycle", "1cycle", "onecycle"):
            return ["# steadygrad's one_cycle (Smith & Topin) as a step -> lr function:",
                    "schedule = steadygrad.optim.make_schedule('one_cycle', learning_rate=LR, "
                    "total_steps=STEPS)",
                    "# each step: for g in optimizer.param_groups: g['lr'] = schedule(step)"]
        return [f"schedule = steadygrad.optim.make_schedule({value!r}, learning_rate=LR, "
                "total_steps=STEPS)"]
    if key == "data.standardize":
        return ["mean, std = x_train.mean(0), x_train.std(0)",
                "x_train, x_val = (x_train - mean) / std, (x_val - mean) / std"]
    if key == "model.activation":
        return [f"# build the network with nn.{_cls(str(value)).split('.')[-1]}() after each "
                "hidden layer"]
    if key == "model.kernel_initializer":
        return [f"steadygrad.nn.init.initialize_(model, {value!r})"]
    if key == "model.batch_norm":
        return _step({"name": "insert_norm", "kind": "batch",
                      "position": "before" if value == "before" else "after"}) \
            if value != "none" else ["# remove the BatchNorm layers between the layers"]
    return [f"# {key} = {value!r}"]


def as_pytorch(patch: Mapping[str, Any]) -> str:
    """The PyTorch code for ``patch`` (``model``, ``optimizer``, ``LR``, ``STEPS`` as in the
    user's script).

    >>> print(as_pytorch({"model.rewrites+": [{"name": "swap_activation", "old": ["sigmoid"],
    ...                                        "new": "elu"}]}))
    # every nn.Sigmoid module -> nn.ELU(alpha=1.0) (F.* calls in forward: edit them by hand)
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, (nn.Sigmoid,)):
                setattr(parent, name, nn.ELU(alpha=1.0))
    """
    lines: list[str] = []
    for key, value in patch.items():
        if key.endswith("+"):
            for step in value:
                lines += _step(step)
        else:
            lines += _key(key, value)
    return "\n".join(lines)
