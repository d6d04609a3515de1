"""Holds: config, spark, tables (the catalogue), and the rooms data, training, registry, recommend.
May import: mmm_models and itself; never monitoring or jobs. This top level imports nothing."""
