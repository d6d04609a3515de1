"""Holds: budget recommendations: budget (one market's optimisation, no Spark or MLflow) and job (every market).
May import: mmm_models, pipelines.config, pipelines.tables, pipelines.data.model_input, pipelines.registry."""
