"""The doctor's trials on Ray (``backend="ray"``), through the sweep runner's Ray backend.

The oracle is the local backend: the same config, seeds and budget must give the same trials
(labels, per-seed status, metric, validation loss, findings, problems), the same ranking and
the same verdict. Ray runs against a local instance (skipped when ray is not installed); the
argument checks run without Ray.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from steadygrad.cli.main import main
from steadygrad.doctor.core import doctor
from steadygrad.doctor.examples import example
from steadygrad.doctor.result import DoctorResult
from steadygrad.errors import ConfigError
from steadygrad.experiments.config import RunConfig, config_from_dict, config_to_dict


def _small_mlp_example() -> tuple[RunConfig, RunConfig]:
    """The built-in ``--example mlp`` (a plain-PyTorch factory), on 400 digits."""
    chosen = example("mlp")
    configs = []
    for reference in (False, True):
        raw = config_to_dict(chosen.config(reference=reference))
        raw["data"]["n_train"] = 400
        configs.append(config_from_dict(raw))
    return configs[0], configs[1]


def _observed(result: DoctorResult) -> list[tuple[object, ...]]:
    trials = [result.baseline, *([result.reference] if result.reference else []),
              *result.trials]
    return [(t.label, t.role, json.dumps(t.patch, sort_keys=True),
             [(r.seed, r.status, r.metric, r.val_loss, r.problems, r.findings)
              for r in t.runs]) for t in trials]


def test_doctor_on_ray_equals_the_local_doctor(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    config, reference = _small_mlp_example()
    kwargs: dict[str, Any] = dict(steps=26, seeds=2, max_trials=3, reference=reference)
    local = doctor(config, out_dir=tmp_path / "local", **kwargs)
    assert local.baseline.problems, "the sigmoid N(0, 1) example must show a problem"
    # every round runs: baseline; reference + two remedies; their combination
    assert local.reference is not None
    assert [t.role for t in local.trials] == ["candidate", "candidate", "combination"]
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        remote = doctor(config, out_dir=tmp_path / "ray", backend="ray", workers=2,
                        **kwargs)
    finally:
        ray.shutdown()
    assert _observed(remote) == _observed(local)
    assert [t.label for t in remote.ranking] == [t.label for t in local.ranking]
    assert (remote.best.label if remote.best else None) == (
        local.best.label if local.best else None)
    def measured(result: DoctorResult) -> list[str]:  # all but the wall time
        return [line for line in result.verdict() if not line.startswith("Total time")]

    assert measured(remote) == measured(local) and len(measured(local)) >= 3
    # the same layout: every run under <out>/runs/, with its weights; no sweep folder left
    names = sorted(p.name for p in (tmp_path / "ray" / "runs").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "local" / "runs").iterdir())
    assert not (tmp_path / "ray" / ".sweeps").exists()
    for name in names:
        ray_sum = json.loads((tmp_path / "ray" / "runs" / name / "summary.json").read_text())
        loc_sum = json.loads((tmp_path / "local" / "runs" / name / "summary.json").read_text())
        assert ray_sum["weights_sha256"] == loc_sum["weights_sha256"]
    assert (tmp_path / "ray" / "doctor.json").is_file()


def test_bad_backend_arguments_are_refused_before_any_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = _small_mlp_example()
    out = tmp_path / "d"
    with pytest.raises(ConfigError, match=r"address: got 'auto'.*only with backend='ray'"):
        doctor(config, out_dir=out, address="auto")
    with pytest.raises(ConfigError, match=r"workers: got 2.*only with backend='ray'"):
        doctor(config, out_dir=out, workers=2)
    with pytest.raises(ConfigError, match=r"backend: got 'dask'"):
        doctor(config, out_dir=out, backend="dask")
    # a lambda factory lives only in this process: Ray workers could not import it
    if importlib.util.find_spec("ray") is not None:
        with pytest.raises(ConfigError, match=r"config\.model\.factory: got 'steadygrad\.nn"
                                              r"\.factory:local\..*importable"):
            doctor(lambda: None, "digits", out_dir=out, backend="ray")
    # the CLI refuses like `steadygrad sweep`, with exit code 2
    cfg = tmp_path / "run.toml"
    cfg.write_text("[model]\nhidden = [8]\n")
    assert main(["doctor", str(cfg), "--address", "auto", "--out", str(out)]) == 2
    assert "--address: got 'auto'; expected an address only with --backend ray" in \
        capsys.readouterr().err
    assert main(["doctor", str(cfg), "--workers", "2", "--out", str(out)]) == 2
    assert "--workers only with --backend ray" in capsys.readouterr().err
    # Ray not installed: the same message as the sweep, from the CLI and the Python API
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["doctor", str(cfg), "--backend", "ray", "--out", str(out)]) == 2
    doctor_err = capsys.readouterr().err
    assert main(["sweep", str(cfg), "--backend", "ray", "--out", str(tmp_path / "s")]) == 2
    sweep_err = capsys.readouterr().err
    assert "--backend: got 'ray'; expected Ray installed" in doctor_err
    assert doctor_err.splitlines()[0].split("error: ", 1)[1] == \
        sweep_err.splitlines()[0].split("error: ", 1)[1]
    with pytest.raises(ConfigError, match=r"pip install 'steadygrad\[ray\]'"):
        doctor(config, out_dir=out, backend="ray")
    assert not out.exists(), "nothing may be written before the arguments are checked"
