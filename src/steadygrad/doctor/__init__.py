"""`steadygrad doctor`: diagnose a training setup, try the remedies, prove the fix."""

from steadygrad.doctor.any_model import MODEL_TOOLBOX as MODEL_TOOLBOX
from steadygrad.doctor.candidates import TOOLBOX as TOOLBOX
from steadygrad.doctor.candidates import Candidate as Candidate
from steadygrad.doctor.candidates import patch_effect as patch_effect
from steadygrad.doctor.candidates import propose as propose
from steadygrad.doctor.core import doctor as doctor
from steadygrad.doctor.core import example_config as example_config
from steadygrad.doctor.core import reference_config as reference_config
from steadygrad.doctor.examples import EXAMPLES as EXAMPLES
from steadygrad.doctor.remedy_code import as_pytorch as as_pytorch
from steadygrad.doctor.remedy_code import as_toml as as_toml
from steadygrad.doctor.result import DoctorResult as DoctorResult
from steadygrad.doctor.result import demo_result as demo_result
from steadygrad.doctor.trials import IMPAIRED_LOSS_FRACTION as IMPAIRED_LOSS_FRACTION
from steadygrad.doctor.trials import SeedRun as SeedRun
from steadygrad.doctor.trials import Trial as Trial
from steadygrad.doctor.trials import problem_kinds as problem_kinds
from steadygrad.doctor.write import render_text as render_text

__all__ = [
    "EXAMPLES",
    "IMPAIRED_LOSS_FRACTION",
    "MODEL_TOOLBOX",
    "TOOLBOX",
    "Candidate",
    "DoctorResult",
    "SeedRun",
    "Trial",
    "as_pytorch",
    "as_toml",
    "demo_result",
    "doctor",
    "example_config",
    "patch_effect",
    "problem_kinds",
    "propose",
    "reference_config",
    "render_text",
]
