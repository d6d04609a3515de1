"""The platform's default configuration, installed as the package ``mmm_conf`` (see pyproject.toml).

``mmm init`` copies ``platform.yaml`` and a brand file from here into a new project's ``conf/``; a
project without its own files reads these (``pipelines.config.default_conf``).
"""
