"""The doctor on the user's own models: factories, rewrites as remedies, healthy models."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import tomllib
import torch
from torch import nn

import steadygrad as sg
from steadygrad.diagnostics.remedies import REMEDIES
from steadygrad.doctor import doctor
from steadygrad.doctor.any_model import APPEND, MODEL_TOOLBOX
from steadygrad.doctor.candidates import Candidate, patch_effect, propose
from steadygrad.doctor.examples import EXAMPLES
from steadygrad.doctor.impaired import IMPAIRED
from steadygrad.doctor.trials import IMPAIRED_LOSS_FRACTION
from steadygrad.errors import ConfigError
from steadygrad.experiments.config import config_from_dict, config_to_dict
from steadygrad.experiments.execute import build_model, run_config
from steadygrad.experiments.loader import load_config
from steadygrad.nn.rewrite import check_rewrite
from tests.doctor._plain import DIGITS, plain_train
from tests.nn import user_models as um


class DeepSigmoidCNN(nn.Module):
    """Six sigmoid conv layers on 1x8x8 digits: a user's CNN that does not learn with SGD."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(6):
            layers += [nn.Conv2d(1 if i == 0 else 16, 16, 3, padding=1), nn.Sigmoid()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x.view(-1, 1, 8, 8))
        return self.fc(h.mean(dim=(2, 3)))


def returns_a_dict() -> dict:
    return {"layers": 3}


def _plain_torch_accuracy(model: nn.Module, epochs: int, lr: float) -> float:
    torch.manual_seed(0)
    plain_train(model, torch.optim.SGD(model.parameters(), lr=lr), epochs)
    with torch.no_grad():
        return (model(DIGITS.x_val).argmax(1) == DIGITS.y_val).float().mean().item()


def test_factory_config_errors_name_module_function_and_problem() -> None:
    def cfg(model: dict) -> None:
        config_from_dict({"model": model})

    with pytest.raises(ConfigError, match=r"'package.module:function'"):
        cfg({"factory": "tests.nn.user_models.SmallCNN"})
    with pytest.raises(ConfigError, match=r"model.hidden.*no MLP key together with"):
        cfg({"factory": "tests.nn.user_models:SmallCNN", "hidden": [8]})
    with pytest.raises(ConfigError, match=r"model.factory_kwargs.*without model.factory"):
        cfg({"factory_kwargs": {"width": 3}})
    with pytest.raises(ConfigError,
                       match=r"model.rewrites\[0\]: got 'pre_lm'.*did you mean 'pre_ln'"):
        cfg({"rewrites": ["pre_lm"]})

    def build(spec: str, kwargs: dict | None = None) -> nn.Module:
        c = config_from_dict({"model": {"factory": spec, "factory_kwargs": kwargs or {}}})
        return build_model(c, DIGITS)

    with pytest.raises(ConfigError, match=r"importing 'tests.nn.no_such' failed: "
                                          r"ModuleNotFoundError"):
        build("tests.nn.no_such:make")
    with pytest.raises(ConfigError, match=r"of module 'tests.nn.user_models'; it has no "
                                          r"attribute 'make_cnn'"):
        build("tests.nn.user_models:make_cnn")
    with pytest.raises(ConfigError, match=r"ARCHITECTURES is a dict"):
        build("tests.nn.user_models:ARCHITECTURES")
    with pytest.raises(ConfigError, match=r"model.factory_kwargs.widht: .*one of kind, hidden"):
        build("tests.nn.user_models:SeqNet", {"widht": 3})
    with pytest.raises(ConfigError, match=r"calling SeqNet\(\*\*\{'kind': 'cnn'\}\) raised "
                                          "KeyError"):
        build("tests.nn.user_models:SeqNet", {"kind": "cnn"})
    with pytest.raises(ConfigError, match=r"a function returning a torch.nn.Module; "
                                          r"returns_a_dict returned a dict"):
        build("tests.doctor.test_any_model:returns_a_dict")


def test_factory_config_round_trips_and_builds_with_seeded_rewrites() -> None:
    raw = {"model": {"factory": "tests.nn.user_models:SeqNet",
                     "factory_kwargs": {"kind": "gru", "hidden": 8},
                     "rewrites": [{"name": "swap_activation", "old": ["sigmoid"], "new": "elu"},
                                  {"name": "alpha_dropout"}, "reinit"]}}
    config = config_from_dict(raw)
    table = config_to_dict(config)
    assert set(table["model"]) == {"factory", "factory_kwargs", "rewrites", "seed"}
    assert config_from_dict(table) == config
    records: list = []
    a = build_model(config, DIGITS, records)
    b = build_model(config, DIGITS)
    assert [r.rewrite["name"] for r in records] == ["swap_activation", "alpha_dropout", "reinit"]
    assert isinstance(a.head[1], nn.ELU) and isinstance(a.head[2], nn.AlphaDropout)
    assert isinstance(a.rnn, nn.GRU) and a.rnn.hidden_size == 8
    sa, sb = a.state_dict(), b.state_dict()  # same seed -> the same model
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_sequential_remedy_applies_to_mlp_configs() -> None:
    # fix: the "sequential" remedy used to patch model.residual, which no config has, so it
    # was always skipped as not applicable
    sequential = next(r for r in REMEDIES["self_normalization"] if r.condition == "sequential")
    raw = {"model": {"hidden": [32, 32], "activation": "selu", "batch_norm": "before"}}
    table, why = patch_effect(raw, sequential.patch)
    assert why is None and table is not None
    assert config_from_dict(table).model.batch_norm == "none"


def test_every_finding_kind_maps_to_remedies_that_print_and_validate() -> None:
    assert set(MODEL_TOOLBOX) == set(REMEDIES) | {IMPAIRED}  # + learning badly, no finding
    for kind, candidates in MODEL_TOOLBOX.items():
        assert candidates, kind
        for cand in candidates:
            for step in cand.patch.get(APPEND, []):
                check_rewrite(step)
            tomllib.loads(cand.as_toml())  # the config patch is valid TOML
            compile(cand.as_pytorch(), cand.name, "exec")  # the code is valid Python
    names = [c.name for c in propose(["exploding_gradients", "saturation"], any_model=True)]
    assert names[:4] == ["clip_global_norm", "elu_he", "lr_find", "elu_he_adam"]
    assert len(names) == len(set(names))


@pytest.mark.slow
def test_doctor_repairs_a_users_cnn_from_python(tmp_path: Path) -> None:
    # the failure is real on plain torch: SGD 0.01, 5 epochs -> near chance
    torch.manual_seed(0)
    assert _plain_torch_accuracy(DeepSigmoidCNN(), epochs=5, lr=0.01) < 0.25
    train = {"epochs": 5, "optimizer": {"name": "sgd", "learning_rate": 0.01}}
    result = doctor(DeepSigmoidCNN, DIGITS, train=train, seeds=1, max_trials=2,
                    out_dir=tmp_path / "d")
    assert "vanishing_gradients" in result.baseline.problems
    assert result.baseline.mean is not None and result.baseline.mean < 0.25
    best = result.best
    assert best is not None and best.mean is not None
    assert best.mean > result.baseline.mean + 0.2 and best.problems == ()
    assert best.patch[APPEND][0]["name"] == "swap_activation"
    repaired = load_config(tmp_path / "d" / "repaired.toml")
    assert repaired.model.factory == "tests.doctor.test_any_model:DeepSigmoidCNN"
    assert [c.name for c in repaired.model.rewrites] == ["swap_activation", "reinit"]
    code = (tmp_path / "d" / "repaired.py").read_text()
    compile(code, "repaired.py", "exec")
    assert "nn.ELU" in code
    # the written config reproduces the trial: same data split (data.npz), seed and model
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        again = run_config(repaired, tmp_path / "again")
    finally:
        torch.set_num_threads(before)
    assert again.metrics["val_accuracy"] == pytest.approx(best.runs[0].metric, abs=1e-9)


HEALTHY = {
    "mlp": lambda: um.mlp(nn.ReLU),
    "cnn": lambda: um.SmallCNN(nn.ReLU),
    "resnet": um.ResNetLike,
    "lstm": lambda: um.SeqNet("lstm"),
    "transformer": lambda: um.TinyTransformer(norm_first=True),
}


# a healthy setup learns within its budget; the LSTM and the transformer need more steps (at
# 3 epochs of Adam 0.003 their validation losses are still 1.94 and 1.26, above half of
# ln 10 = 2.30: they had barely learned, which the doctor calls impaired learning)
HEALTHY_TRAIN = {"lstm": {"epochs": 6, "optimizer": {"name": "adam", "learning_rate": 0.01}},
                 "transformer": {"epochs": 6,
                                 "optimizer": {"name": "adam", "learning_rate": 0.003}}}


@pytest.mark.parametrize("arch", list(HEALTHY))
def test_healthy_model_of_each_architecture_needs_no_trial(arch: str, tmp_path: Path) -> None:
    train = HEALTHY_TRAIN.get(arch,
                              {"epochs": 3, "optimizer": {"name": "adam", "learning_rate": 0.003}})
    result = doctor(HEALTHY[arch], "digits", train=train, seeds=1, out_dir=tmp_path / "d")
    assert result.healthy and result.trials == () and result.reference is None
    assert result.baseline.mean is not None and result.baseline.mean > 0.4  # it learned
    loss = result.baseline.runs[0].val_loss  # below half the chance loss (doctor.impaired)
    assert loss is not None and loss < IMPAIRED_LOSS_FRACTION * math.log(10)
    assert "nothing needs fixing, so no trial was run" in result.verdict()[1]
    assert not (tmp_path / "d" / "repaired.toml").exists()


def test_cli_runs_a_factory_config(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from steadygrad.cli.main import main

    cfg = tmp_path / "cnn.toml"
    cfg.write_text('name = "users_cnn"\n[model]\nfactory = "tests.nn.user_models:SeqNet"\n'
                   '[model.factory_kwargs]\nkind = "lstm"\n'
                   '[train]\nepochs = 6\n[train.optimizer]\nname = "adam"\n'
                   'learning_rate = 0.01\n')  # HEALTHY_TRAIN["lstm"]: a setup that learns
    code = main(["doctor", str(cfg), "--seeds", "1", "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 0
    assert "nothing needs fixing" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nfactory = "tests.nn.user_models:make_cnn"\n')
    assert main(["doctor", str(bad), "--out", str(tmp_path / "b"), "--quiet"]) == 2
    assert "has no attribute 'make_cnn'" in capsys.readouterr().err


def test_examples_fail_and_references_are_healthy_as_configs() -> None:
    # cheap structural checks (the full runs are the CLI examples): every example builds,
    # its factory is importable, and the reference differs from it
    for name, ex in EXAMPLES.items():
        bad, ref = ex.config(), ex.config(reference=True)
        assert bad.model.factory == ref.model.factory
        assert (bad.model.kwargs, config_to_dict(bad)["train"]) != (
            ref.model.kwargs, config_to_dict(ref)["train"]), name
        out = build_model(bad, DIGITS)(DIGITS.x_train[:4])
        assert out.shape == (4, 10)


def test_python_api_rejects_mixed_arguments(tmp_path: Path) -> None:
    cfg = config_from_dict({})
    with pytest.raises(ConfigError, match=r"only with a model factory"):
        doctor(cfg, DIGITS)
    with pytest.raises(ConfigError, match=r"the data to train"):
        doctor(um.SharedNet)
    with pytest.raises(ConfigError, match=r"a RunConfig, a model factory"):
        doctor(3)  # type: ignore[arg-type]
    assert Candidate("x", {}).as_toml() == ""
    assert sg.doctor is doctor  # the Python API: sg.doctor(model_fn, data, ...)


def test_docs_user_model_examples_load_and_build(monkeypatch: pytest.MonkeyPatch) -> None:
    # docs/doctor-any-model.md runs these with PYTHONPATH=examples/user_models
    folder = Path(__file__).resolve().parents[2] / "examples" / "user_models"
    monkeypatch.syspath_prepend(str(folder))
    for name, kind in (("cnn.toml", nn.Sigmoid), ("transformer.toml",
                                                  nn.TransformerEncoderLayer)):
        config = load_config(folder / name)
        assert config.model.factory is not None and config.model.factory.startswith("my_models:")
        model = build_model(config, DIGITS)
        assert model(DIGITS.x_train[:3]).shape == (3, 10)
        found = [m for m in model.modules() if isinstance(m, kind)]
        assert found and all(not getattr(m, "norm_first", False) for m in found)


def test_cli_example_argument_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from steadygrad.cli.main import main

    assert main(["doctor", "--example", "lstm", "--out", str(tmp_path / "a")]) == 2
    assert "--example: got 'lstm'; expected one of mlp, cnn, resnet, rnn, transformer" in \
        capsys.readouterr().err
    assert main(["doctor", "x.toml", "--example", "cnn", "--out", str(tmp_path / "b")]) == 2
    assert "no CONFIG and no --data with --example" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
