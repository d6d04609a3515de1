"""Holds: posterior drift between model versions, lift-test calibration, data drift, alert rules, the dashboard.
May import: mmm_models, pipelines.config, pipelines.tables, pipelines.registry; never jobs."""
