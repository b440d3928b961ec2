"""latency() table semantics; ONNX export round trip through ONNX Runtime (optional extra)."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from steadygrad.compress.latency import infer_input_shape, latency, percentile
from steadygrad.errors import ConfigError
from steadygrad.nn.build import mlp


class _Sleepy(nn.Module):
    """Sleeps ``batch * 1 ms``: a model with a known latency."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.001 * x.shape[0])
        return self.layer(x)


def test_latency_reflects_the_model_cost_and_records_context() -> None:
    model = _Sleepy().train()
    table = latency(model, batch_sizes=(1, 5), repeats=3, warmup=0)
    one, five = table.row(1), table.row(5)
    assert one.median_ms >= 1.0 and five.median_ms >= 5.0 and five.median_ms > one.median_ms
    assert five.median_ms <= five.p90_ms
    assert table.threads == torch.get_num_threads() and table.input_shape == (3,)
    assert table.device == "cpu" and table.repeats == 3
    assert model.training  # mode restored
    assert five.us_per_example == pytest.approx(1000 * five.median_ms / 5)
    md = table.to_markdown().splitlines()
    assert len(md) == 4 and md[2].startswith("| 1 |")


def test_percentile_matches_numpy() -> None:
    np = pytest.importorskip("numpy")
    values = [5.0, 1.0, 3.0, 2.0, 8.0, 13.0, 21.0]
    for q in (0, 10, 50, 90, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_latency_arguments() -> None:
    model = mlp((28, 28), (8,), num_outputs=2, seed=0)
    assert infer_input_shape(model) == (784,)
    table = latency(model, batch_sizes=(2,), repeats=2, warmup=1, input_shape=(28, 28))
    assert table.input_shape == (28, 28)
    with pytest.raises(ConfigError, match="repeats"):
        latency(model, repeats=0)
    with pytest.raises(ConfigError, match="batch_sizes"):
        latency(model, batch_sizes=4)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="input_shape"):
        latency(nn.ReLU())
    with pytest.raises(ConfigError, match="batch_size"):
        table.row(3)


@pytest.mark.slow
def test_onnx_export_matches_onnxruntime(tmp_path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from steadygrad.compress.fold import fold_batch_norm
    from steadygrad.compress.onnx_export import check_onnx, export_onnx

    model = mlp((6, 6), (16, 8), batch_norm="before", num_outputs=3, seed=0)
    model(torch.randn(32, 6, 6))  # non-trivial running statistics
    model.eval()
    path = export_onnx(model, tmp_path / "m.onnx", (6, 6))
    for batch in (1, 7):  # the batch dimension is dynamic
        assert check_onnx(model, path, torch.randn(batch, 6, 6), atol=1e-5) <= 1e-5
    with pytest.raises(ConfigError, match="overwrite"):
        export_onnx(model, path, (6, 6))
    folded = export_onnx(fold_batch_norm(model), tmp_path / "f.onnx", (6, 6))
    assert check_onnx(model, folded, torch.randn(4, 6, 6), atol=1e-5) <= 1e-5
    with pytest.raises(AssertionError, match="differs"):
        check_onnx(nn.Sequential(nn.Flatten(), nn.Linear(36, 3)), path, torch.randn(2, 6, 6))


def test_onnx_export_validates_before_importing(tmp_path) -> None:
    from steadygrad.compress.onnx_export import export_onnx

    with pytest.raises(ConfigError, match="onnx"):
        export_onnx(nn.Linear(2, 2), tmp_path / "m.pt", (2,))
    with pytest.raises(ConfigError, match="input_shape"):
        export_onnx(nn.Linear(2, 2), tmp_path / "m.onnx", (0,))
