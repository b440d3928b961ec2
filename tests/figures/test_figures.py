"""``steadygrad figures``: the numbers behind each figure against closed forms and known
effects, captions computed from them, and the page in headless Chromium at 1280 px."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from steadygrad.cli.main import main
from steadygrad.figures import FIGURES, make_figures, render_figures_page
from steadygrad.figures import compute as c
from tests.browser import layout


def test_activation_derivatives_match_closed_forms() -> None:
    z = np.linspace(-5, 5, 101)
    curves = c.activation_curves(("sigmoid", "tanh", "relu", "elu"), z)
    s = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(curves["sigmoid"][1], s * (1 - s), atol=1e-12)
    np.testing.assert_allclose(curves["tanh"][1], 1 - np.tanh(z) ** 2, atol=1e-12)
    np.testing.assert_allclose(curves["relu"][1][z < 0], 0.0)
    np.testing.assert_allclose(curves["elu"][1][z < 0], np.exp(z[z < 0]), atol=1e-12)


def test_depth_scales_show_the_glorot_he_argument() -> None:
    scales = c.depth_scales(depth=30, batch=128)
    std_he, grad_he, _ = scales["ReLU + He"]
    std_glorot, _, _ = scales["ReLU + Glorot"]
    assert 0.1 < std_he[-1] / std_he[0] < 10  # He keeps the ReLU signal
    assert std_glorot[-1] / std_glorot[0] < 1e-3  # Glorot halves its variance per ReLU layer
    assert 0.1 < grad_he[0] / grad_he[-1] < 10
    assert scales["SELU + LeCun"][0][-1] == pytest.approx(1.0, rel=0.3)  # self-normalizing


def test_optimizer_paths_show_overshoot_and_adagrad_stalling() -> None:
    paths = c.optimizer_paths()
    assert paths["SGD"][:, 0].max() < 0  # plain SGD approaches from one side
    assert paths["momentum 0.9"][:, 0].max() > 1.0  # momentum overshoots the minimum
    assert 0 < paths["Nesterov 0.9"][:, 0].max() < paths["momentum 0.9"][:, 0].max()
    dist = {k: float(np.linalg.norm(p[-1])) for k, p in paths.items()}
    assert dist["AdaGrad"] > 100 * dist["RMSProp"]  # same rate; AdaGrad's steps decay


def test_batch_norm_modes_follow_the_running_average_closed_form() -> None:
    r = c.batch_norm_modes()
    np.testing.assert_allclose(r["running_mean"], r["closed_form"], atol=0.4)
    assert np.abs(r["train_mean"]).max() < 1e-5  # batch statistics: mean 0 at once
    assert r["eval_mean"][0] > 1.5 and abs(r["eval_mean"][-1]) < 0.3


def test_inverted_dropout_keeps_the_mean() -> None:
    r = c.dropout_scaling()
    np.testing.assert_allclose(r["train_mean"], 1.0, atol=0.02)
    np.testing.assert_allclose(r["unscaled_mean"], 1 - r["rates"], atol=0.01)
    assert r["eval_mean"][0] == 1.0


FAST = ["activations", "schedules", "dropout"]  # the whole page: the slow test below


def test_captions_state_the_computed_numbers() -> None:
    figures = dict((title, caption) for title, _, caption in make_figures(["dropout"]))
    r = c.dropout_scaling()
    caption = figures["Inverted dropout scaling"]
    assert f"{r['train_mean'][3]:.3f}" in caption and f"{r['unscaled_mean'][3]:.3f}" in caption


def test_figures_page_fits_1280_px_in_chromium(tmp_path: Path) -> None:
    page = tmp_path / "figures.html"
    page.write_text(render_figures_page(make_figures(FAST)))
    box = layout(page, 1280)
    assert box["scroll_width"] <= 1280 and box["right"] <= 1280, box
    assert box["images"] == len(FAST) and box["broken"] == 0


@pytest.mark.slow
def test_cli_writes_every_figure(tmp_path: Path) -> None:
    assert main(["figures", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "figures.html").read_text()
    assert text.count("data:image/png;base64,") == len(FIGURES)
    box = layout(tmp_path / "figures.html", 1280)
    assert box["scroll_width"] <= 1280 and box["broken"] == 0


@pytest.mark.slow
def test_mc_dropout_flags_its_mistakes() -> None:
    r = c.mc_dropout_calibration()
    assert r["accuracy_mc"] > 0.8
    assert np.mean(r["entropy_wrong"]) > np.mean(r["entropy_correct"])
    assert 0 <= r["ece_mc"] <= 1 and math.isfinite(r["ece_single"])


def test_unknown_figure_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["figures", "--only", "nope"])
    assert exit_.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err
