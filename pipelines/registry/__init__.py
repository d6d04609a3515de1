"""Holds: MLflow: store (the one door: URIs, client, retries, aliases, saved models), promotion, pyfunc_model.
May import: mmm_models, pipelines.config, pipelines.tables."""
