"""Holds: raw files to gold: ingest, silver, gold, quality, synthetic_raw, run (raw -> gold), model_input.
May import: pipelines.config, pipelines.tables, mmm_models (simulator, lift columns); no other room."""
