"""The weekly job calibrates on lift tests: silver ``lift_tests`` reach ``fit``, and a test moves its channel's ROAS.

One simulated market is run twice through pipeline and training: once without lift tests, once with a
go-dark test on ``tv`` whose observed lift is twice the true one, with a 5% standard error. A test that
precise, claiming twice the effect, must pull the channel's ROAS up, towards the ROAS it implies; the
uncalibrated fit cannot know about it. The other channels have no test.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pandas as pd
import pytest

from pipelines.config import GateSettings, MlflowSettings, PlatformConfig, QualityLimits, TrainingSettings
from pipelines.data.run import run_pipeline
from pipelines.data.synthetic_raw import RawDataConfig, brand_configs, generate_raw_landing
from pipelines.tables import LIFT_TESTS, POSTERIOR_SUMMARIES
from pipelines.training.driver import train

pytestmark = pytest.mark.slow
AS_OF = dt.date(2024, 6, 3)
TRAINING = TrainingSettings(sampler="numpyro", chains=2, draws=300, tune=300, holdout_weeks=8, target_accept=0.95)


def _tv_roas(spark, root) -> pd.Series:
    summaries = POSTERIOR_SUMMARIES.read(spark, root)
    return summaries[(summaries.channel == "tv") & (summaries.metric == "roas")].iloc[0]


def test_a_lift_test_moves_its_channel_roas_towards_the_test(spark, tmp_path) -> None:
    config = RawDataConfig(markets={"acme": ["DE"]}, weeks=78, campaigns_per_raw_channel=1, lift_tests=True)
    with_tests = generate_raw_landing(tmp_path / "with_tests", config)
    tests = pd.read_csv(with_tests.folder / "lift_tests" / "acme_lift_tests.csv")
    tv = tests[tests.channel == "tv"].assign(lift=lambda t: 2 * t.lift, lift_se=lambda t: 0.05 * 2 * t.lift.abs())
    tv.to_csv(with_tests.folder / "lift_tests" / "acme_lift_tests.csv", index=False)
    without = shutil.copytree(with_tests.folder, tmp_path / "without_tests", ignore=shutil.ignore_patterns("lift_*"))

    brands = brand_configs(config, QualityLimits(min_history_weeks=52))
    platform = PlatformConfig(
        mlflow=MlflowSettings(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_location=str(tmp_path / "art")),
        training=TRAINING,
        gate=GateSettings(max_rhat=1.06, min_ess_bulk=100, max_divergences=5),
    )
    roas = {}
    for name, landing in {"without": without, "with": with_tests.folder}.items():
        root = tmp_path / f"lake_{name}"
        run_pipeline(spark, landing, root, brands, AS_OF, progress=lambda _: None)
        report = train(spark, root, brands, platform, AS_OF, progress=lambda _: None)
        assert report.runs.status.tolist() != ["failed"], report.runs.error.tolist()
        roas[name] = _tv_roas(spark, root)

    assert len(LIFT_TESTS.read(spark, tmp_path / "lake_with")) == 1  # typed in silver, channel mapped
    implied = 2 * with_tests.roas[("acme", "DE")]["tv"]  # what the doubled test says, about
    before, after = roas["without"], roas["with"]
    print(f"tv ROAS: truth {implied / 2:.3f}, test implies {implied:.3f}; without tests {before['mean']:.3f} "
          f"(sd {before['sd']:.3f}), with the test {after['mean']:.3f} (sd {after['sd']:.3f})")  # fmt: skip
    assert abs(after["mean"] - implied) < abs(before["mean"] - implied)
    # and by more than the uncalibrated posterior's own spread: the test is what moved it
    assert after["mean"] - before["mean"] > before["sd"]
