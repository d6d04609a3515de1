"""Bayesian media mix models in plain PyMC: spec, fitting, diagnostics, analysis, simulation.

No Spark, MLflow or Prefect here: the library works on one pandas DataFrame in a notebook. The
names below are the library's front door (``from mmm_models import fit, ModelSpec``); they load
on first use, so importing the package stays cheap and changes no global setting (JAX is configured
by the first fit that needs it: ``mmm_models.backend``).
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ModelSpec": "mmm_models.spec",
    "FitSettings": "mmm_models.fitting",
    "fit": "mmm_models.fitted",
    "FittedModel": "mmm_models.fitted",
    "fit_brand": "mmm_models.brand",
    "BrandFit": "mmm_models.brand",
    "diagnose": "mmm_models.diagnostics",
    "channel_summary": "mmm_models.analysis",
    "predict": "mmm_models.prediction",
    "compare_scenarios": "mmm_models.prediction",
    "BudgetProblem": "mmm_models.optimizer",
    "optimize_budget": "mmm_models.optimizer",
    "save": "mmm_models.persistence",
    "load": "mmm_models.persistence",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mmm_models' has no attribute {name!r}")
