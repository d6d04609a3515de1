"""Shared fixtures. Each pytest process gets its own PyTensor compile directory (compilation is not
safe across processes sharing one), set before PyTensor is imported."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault(
    "PYTENSOR_FLAGS",
    f"compiledir={tempfile.gettempdir()}/mmm-pytensor-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}",
)

import pandas as pd
import pytest

from mmm_models.fitting import FitSettings
from mmm_models.spec import ModelSpec
from pipelines.config import ReviewSettings

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data" / "pymc_marketing"
EXAMPLE_CSV = SHARED_DATA / "mmm_example.csv"
EXAMPLE_SPEC = ROOT / "conf" / "models" / "mmm_example.yaml"

# Short chains for tests that check plumbing, not statistics. One settings object, so every such
# test reuses the same compiled sampler.
QUICK = FitSettings(chains=2, draws=300, tune=300, seed=1)

# Every review check passes at these settings: for tests of the training and recommendation jobs' plumbing,
# not of the review (its own verdicts: tests/pipelines/training/test_review.py and
# test_a_review_verdict_holds_the_version_at_challenger).
LENIENT_REVIEW = ReviewSettings(
    min_r2_train=-1e9,
    max_naive_wape_ratio=1e9,
    max_roas_relative_width=1e9,
    min_roas_shift_sd=0.0,
    max_channel_share=1.0,
    negative_baseline_review=1.0,
    negative_baseline_fail=1.0,
    max_bad_k_share=1.0,
    max_elpd_loss_se=1e9,
)


@pytest.fixture(scope="session")
def example_frame() -> pd.DataFrame:
    if not EXAMPLE_CSV.exists():
        pytest.fail(f"reference data missing: {EXAMPLE_CSV} (../shared must sit beside the project)")
    return pd.read_csv(EXAMPLE_CSV)


@pytest.fixture(scope="session")
def example_spec() -> ModelSpec:
    return ModelSpec.from_yaml(EXAMPLE_SPEC)


@pytest.fixture(scope="session")
def quick_example_fit(example_spec: ModelSpec, example_frame: pd.DataFrame):
    """The example fitted with short chains and 13 held-out weeks (shared by plumbing tests)."""
    from mmm_models.fitted import fit

    settings = QUICK.model_copy(update={"holdout_weeks": 13})
    return fit(example_spec, example_frame, settings, market="example")


@pytest.fixture(scope="session")
def spark():
    """One local Spark session with Delta for every test that needs one (starting a JVM costs seconds)."""
    from pipelines.spark import get_spark

    session = get_spark("tests", master="local[2]")
    yield session
    session.stop()
