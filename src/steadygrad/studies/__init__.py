"""Built-in studies: shipped sweeps plus the analysis that reads their results."""

from steadygrad.studies.registry import STUDIES as STUDIES
from steadygrad.studies.registry import Study as Study
from steadygrad.studies.registry import load_spec as load_spec
from steadygrad.studies.runner import StudyResult as StudyResult
from steadygrad.studies.runner import expand as expand
from steadygrad.studies.runner import run_study as run_study

__all__ = [
    "STUDIES",
    "Study",
    "StudyResult",
    "expand",
    "load_spec",
    "run_study",
]
