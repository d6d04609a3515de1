"""Holds: the recommendation service: a FastAPI app over the champions and the Delta tables (read without Spark),
bearer-token auth, the champion cache and the optimiser compiled once per model structure.
May import: mmm_models, pipelines.config, pipelines.names, pipelines.tables, pipelines.registry; never jobs."""
