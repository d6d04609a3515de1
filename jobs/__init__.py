"""Holds: thin entry points: the ``mmm`` CLI, its options and step context, and the Prefect flow.
May import: everything; nothing imports jobs."""
