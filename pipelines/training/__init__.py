"""Holds: the training job: contract (stdlib only), worker, group (one group's fits), tracking, gate, driver.
May import: mmm_models, pipelines.config, pipelines.tables, pipelines.data.model_input, pipelines.registry."""
