"""monitoring package (see README)."""
