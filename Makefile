# Two commands for a newcomer (see README): `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
EXAMPLE_DATA := ../shared/data/pymc_marketing/mmm_example.csv
GEO_DATA := ../shared/data/pymc_marketing/mmm_multidimensional_example.csv

.PHONY: setup run fit-example fit-geo-example test lint browser wheel-check bench clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[all,dev]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/mmm run --demo

fit-example: $(STAMP)
	$(VENV)/bin/mmm fit --spec conf/models/mmm_example.yaml --data $(EXAMPLE_DATA) \
		--holdout-weeks 13 --output outputs/mmm_example

# The two geos of the multidimensional example as one hierarchical brand model.
fit-geo-example: $(STAMP)
	$(VENV)/bin/mmm fit --spec conf/models/mmm_multidimensional_example.yaml --data $(GEO_DATA) \
		--market-column geo --market pymc --sampler nutpie --target-accept 0.95 --output outputs/mmm_geo_example

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The dashboard's browser test drives Debian's chromium (Playwright's own browser download is not used).
browser:
	command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium; }

# Two workers, one module per worker (a module's Spark, servers and fitted fixtures stay together).
test: $(STAMP) lint browser
	$(VENV)/bin/pytest -n 2 --dist loadscope --durations=25

# The wheel as a user installs it, outside the checkout (infra/wheel_check.py): build, base install,
# [spark,orchestration,tracking] install, mmm init, mmm run --demo, the champion loaded and served.
wheel-check: $(STAMP)
	$(VENV)/bin/python infra/wheel_check.py

bench: $(STAMP)
	$(VENV)/bin/pip install --quiet -e ".[all,dev,bench]"
	$(VENV)/bin/python benchmarks/fit_speed.py
	$(VENV)/bin/python benchmarks/recovery.py
	$(VENV)/bin/python benchmarks/optimizer.py
	$(VENV)/bin/python benchmarks/calibration.py
	$(VENV)/bin/python benchmarks/pipeline_scale.py
	$(VENV)/bin/python benchmarks/train_scale.py
	$(VENV)/bin/python benchmarks/train_end_to_end.py
	$(VENV)/bin/python benchmarks/monitoring_drift.py
	$(VENV)/bin/python benchmarks/monitoring_calibration.py
	$(VENV)/bin/python benchmarks/recommendations.py
	$(VENV)/bin/python benchmarks/brand_pooling.py
	$(VENV)/bin/python benchmarks/time_varying.py
	$(VENV)/bin/python benchmarks/brand_geo_example.py
	$(VENV)/bin/python benchmarks/data_review.py

clean:
	rm -rf $(VENV) outputs .pytest_cache
