"""Bayesian media mix models in plain PyMC: spec, fitting, diagnostics, analysis, simulation.

No Spark, MLflow or Prefect here: the library works on one pandas DataFrame in a notebook.
"""

from mmm_models import backend

backend.configure()
