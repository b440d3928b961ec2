"""GradientHealthCallback (Hugging Face Trainer) against the plain-loop GradientMonitor oracle.

The model is a tiny BERT built from a config (no download); the oracle replays the batches the
Trainer fed (recorded by a forward pre-hook) on an identical copy of the model."""

from __future__ import annotations

import copy
import json
import os

import pytest
import torch
from torch import nn

transformers = pytest.importorskip("transformers")

from steadygrad.diagnostics.monitor import DENSE_START, GradientMonitor  # noqa: E402
from steadygrad.integrations.transformers import (  # noqa: E402
    GradientHealthCallback,
    HealthError,
)
from tests.integrations.nets import key  # noqa: E402

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _model(seed: int = 0, std: float = 0.02) -> nn.Module:
    torch.manual_seed(seed)
    cfg = transformers.BertConfig(
        vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, num_labels=3,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=std)
    return transformers.BertForSequenceClassification(cfg)


class _Data(torch.utils.data.Dataset):
    def __init__(self, n: int = 256, seed: int = 1) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 40, (n, 8), generator=g)
        self.labels = self.ids[:, 0] % 3

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def _train(tmp_path, model, cb, lr: float, *, max_grad_norm: float = 1.0, epochs: int = 2,
           accumulate: int = 1, logging: str = "steps"):
    batches: list[dict] = []

    def record(module, args, kwargs):
        if module.training:
            batches.append({k: v.clone() for k, v in kwargs.items()
                            if k in ("input_ids", "labels")})

    handle = model.register_forward_pre_hook(record, with_kwargs=True)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=16,
        num_train_epochs=epochs, max_grad_norm=max_grad_norm, logging_steps=4,
        logging_strategy=logging,
        gradient_accumulation_steps=accumulate, report_to=[], save_strategy="no",
        use_cpu=True, seed=0, disable_tqdm=True)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=_Data(),
                                   optimizers=(opt, sched), callbacks=[cb])
    trainer.train()
    handle.remove()
    return trainer, batches


def _oracle(model, batches, lr, every, max_grad_norm, accumulate=1, divide=True):
    """``divide``: the Trainer divides each accumulated loss by the accumulation steps only for
    models that take no loss kwargs (``trainer.model_accepts_loss_kwargs``)."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    with GradientMonitor(model, every=every) as mon:
        for i in range(0, len(batches), accumulate):
            opt.zero_grad()
            for b in batches[i:i + accumulate]:
                loss = model(**b).loss
                (loss / accumulate if divide else loss).backward()
            pre = {p: p.grad.clone() for p in model.parameters() if p.grad is not None}
            if max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            opt.step()
            for p, g in pre.items():  # the monitor reads the gradients before clipping
                p.grad = g
            mon.step(loss)
    return mon.report()


@pytest.mark.parametrize(("max_grad_norm", "accumulate"), [(1.0, 1), (0.0, 2)])
def test_same_findings_as_the_monitor(tmp_path, max_grad_norm, accumulate):
    every, lr = 2, 0.5
    model = _model(std=1.0)
    twin = copy.deepcopy(model)
    cb = GradientHealthCallback(every=every, evaluate_every=2)
    trainer, batches = _train(tmp_path, model, cb, lr, max_grad_norm=max_grad_norm,
                              accumulate=accumulate)
    assert len(batches) == 2 * 256 // 16
    expected = _oracle(twin, batches, lr, every, max_grad_norm, accumulate,
                       divide=not trainer.model_accepts_loss_kwargs)
    assert expected.findings, "the oracle must have something to agree on"
    if max_grad_norm > 0:  # clipping really changed the gradients the optimizer used
        assert max(expected.series.grad_norm) > 2 * max_grad_norm
    assert key(cb.report.findings) == key(expected.findings)
    got = cb.report.series
    assert got.steps == expected.series.steps
    assert got.steps == [i for i in range(trainer.state.global_step)  # one per optimizer step
                         if i < DENSE_START or i % every == 0]
    torch.testing.assert_close(torch.tensor(got.grad_norm),
                               torch.tensor(expected.series.grad_norm), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(torch.tensor(got.loss), torch.tensor(expected.series.loss),
                               rtol=1e-4, atol=1e-6)
    # on_log carried the health scalars into the trainer's log history
    logged = [h for h in trainer.state.log_history if "health/grad_norm" in h]
    assert logged and all("health/findings_error" in h for h in logged)
    saved = json.loads((tmp_path / "out" / "health.json").read_text())
    assert [f["kind"] for f in saved["findings"]] == [f.kind for f in expected.findings]


def test_stop_on_error_ends_a_diverging_run(tmp_path):
    lr = 1e12  # SGD at this rate turns the loss NaN after one step (LayerNorm absorbs less)
    # the same run without the callback diverges and runs to the end
    plain = _model()
    trainer, _ = _train(tmp_path, plain, transformers.TrainerCallback(), lr, max_grad_norm=0.0)
    assert trainer.state.global_step == 32
    assert not all(torch.isfinite(p).all() for p in plain.parameters())
    cb = GradientHealthCallback(every=1, evaluate_every=1, on_error="stop")
    trainer, _ = _train(tmp_path, _model(), cb, lr, max_grad_norm=0.0)
    errors = [f for f in cb.report.findings if f.severity == "error"]
    assert errors and errors[0].kind == "non_finite"
    assert trainer.state.global_step < 32
    assert trainer.state.global_step <= errors[0].first_step + 2


def test_raise_on_error(tmp_path):
    cb = GradientHealthCallback(every=1, evaluate_every=1, on_error="raise")
    with pytest.raises(HealthError, match="non_finite"):
        _train(tmp_path, _model(), cb, 1e12, max_grad_norm=0.0)


def test_rules_run_at_logs_and_no_logging_no_evaluation_same_report(tmp_path):
    """Without on_error the rules run only at a log (when at least evaluate_every sampled steps
    arrived since their last run), so each log carries the scalars of its own step: its
    health/grad_norm is the report's at the log's step. With logging_strategy="no" nothing
    reads them and none runs; the report equals that of the run with logging."""
    reports, calls, trainers = [], [], []
    for logging in ("no", "steps"):
        cb = GradientHealthCallback(every=2, evaluate_every=2)
        n: list[int] = []

        def counted(evaluate=cb.session.evaluate, n=n):
            n.append(1)
            return evaluate()

        cb.session.evaluate = counted  # type: ignore[method-assign]
        trainer, _ = _train(tmp_path / logging, _model(std=1.0), cb, 0.5, logging=logging,
                            epochs=2)
        reports.append(cb.report)
        calls.append(len(n))
        trainers.append(trainer)
    quiet, live = reports
    logs = [h for h in trainers[1].state.log_history if "loss" in h]
    assert len(logs) == trainers[1].state.global_step // 4  # logging_steps=4
    # one evaluation per log: 4 steps between logs hold at least 2 sampled steps (every=2)
    assert calls == [0, len(logs)]
    steps = live.series.steps
    for h in logs:
        last = max(i for i, s in enumerate(steps) if s <= h["step"] - 1)  # 0-based step
        assert h["health/grad_norm"] == pytest.approx(live.series.grad_norm[last], rel=1e-6)
    assert quiet.findings and key(quiet.findings) == key(live.findings)
    assert quiet.series.steps == live.series.steps
    torch.testing.assert_close(torch.tensor(quiet.series.grad_norm),
                               torch.tensor(live.series.grad_norm))
