"""The pre-fit data review through the real pipeline (raw files -> gold on Spark and Delta): its findings
in ``market_status``, a warning that leaves a market in, and an exclusion that holds one back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from pipelines.config import QualityLimits
from pipelines.data.gold import review_markets
from pipelines.data.run import run_pipeline
from pipelines.data.synthetic_raw import RawDataConfig, brand_configs, generate_raw_landing
from pipelines.tables import MARKET_STATUS, MODEL_INPUT, QUARANTINE

AS_OF = dt.date(2024, 6, 3)


@pytest.mark.slow
def test_data_review_findings_reach_market_status(spark, tmp_path: Path) -> None:
    config = RawDataConfig(markets={"acme": ["DE", "FR", "IT"]}, weeks=40, campaigns_per_raw_channel=1)
    landing = generate_raw_landing(tmp_path / "landing", config)
    path = landing.folder / "spend" / "acme_batch1.csv"
    spend = pd.read_csv(path)
    # DE: search bought as half of tv, day by day (r = 1 between their weekly spends)
    de = spend.market == "DE"
    tv = spend[de & (spend.channel == "tv_linear")].set_index("date")["spend"]
    search = de & (spend.channel == "google_ads")
    spend.loc[search, "spend"] = 0.5 * tv.loc[spend.loc[search, "date"]].to_numpy()
    # FR: every channel at the same spend every day: nothing for media to be measured on
    spend.loc[spend.market == "FR", "spend"] = 100.0
    spend.to_csv(path, index=False)
    brands = brand_configs(config, QualityLimits(min_history_weeks=20))
    root = tmp_path / "lake"
    report = run_pipeline(spark, landing.folder, root, brands, AS_OF, progress=lambda _: None)

    status = MARKET_STATUS.read(spark, root).set_index("market")
    # DE: warned (the pair named), still modelled
    assert status.loc["DE", "status"] == "included"
    assert "spend_correlation: tv and search spend together" in status.loc["DE", "data_review"]
    assert status.loc["DE", "data_warnings"] >= 1
    # FR: excluded by the review, with its reason, and its rows held back in quarantine
    assert status.loc["FR", "status"] == "excluded"
    assert status.loc["FR", "checks"] == "no_media_variation"
    assert status.loc["FR", "reason"].startswith("no channel's spend varies over 40 weeks")
    assert "channel_spend_cv: tv spend barely varies" in status.loc["FR", "data_review"]
    held = QUARANTINE.read(spark, root)
    assert (held[held.table == "model_input"].check == "no_media_variation").sum() == config.weeks
    # IT: the simulator's clean market, untouched: no finding
    assert status.loc["IT", "status"] == "included"
    assert status.loc["IT", "data_review"] == "" and status.loc["IT", "data_warnings"] == 0
    assert sorted(MODEL_INPUT.read(spark, root).market.unique()) == ["DE", "IT"]
    assert [f"{s.brand}/{s.market}" for s in report.excluded] == ["acme/FR"]


def test_a_market_the_review_cannot_read_gets_a_warning_and_the_others_their_review() -> None:
    from mmm_models.simulator import SimulationConfig, simulate_market

    config = RawDataConfig(markets={"acme": ["DE", "FR"]}, weeks=40)
    brands = brand_configs(config)
    frames = []
    for market, seed in (("DE", 0), ("FR", 1)):
        data = simulate_market(SimulationConfig(weeks=40, channels=tuple(config.taxonomy)), seed=seed).data
        frame = pd.DataFrame(
            {
                "brand": "acme",
                "market": market,
                "week_start": data["date"].dt.date,
                "target": data["y"].astype(object),
                "partial_week": False,
                "control_price_index": data["price_index"],
                **{f"spend_{c}": data[c] for c in config.taxonomy},
            }
        )
        frames.append(frame)
    frames[1].loc[3, "target"] = "not a number"
    reviews = review_markets(pd.concat(frames, ignore_index=True), brands)
    assert reviews[("acme", "DE")].findings == ()
    broken = reviews[("acme", "FR")]
    assert [f.check for f in broken.warnings] == ["review_error"] and not broken.excluded
    assert broken.summary().startswith("review_error: the data review could not run: ValueError")
