"""jobs package (see README)."""
