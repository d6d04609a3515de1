"""pipelines package (see README)."""
