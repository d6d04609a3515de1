"""The synthetic raw landing files aggregate back to the simulated weekly truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.data.synthetic_raw import BAD_INPUTS, RawDataConfig, generate_raw_landing

SMALL = RawDataConfig(markets={"acme": ["DE", "FR"]}, weeks=30, campaigns_per_raw_channel=2)


def test_raw_files_aggregate_to_the_weekly_truth(tmp_path: Path) -> None:
    landing = generate_raw_landing(tmp_path, SMALL)
    spend = pd.read_csv(tmp_path / "spend" / "acme_batch1.csv", parse_dates=["date"])
    sales = pd.read_csv(tmp_path / "sales" / "acme_batch1.csv", parse_dates=["date"])
    raw_to_model = {raw: model for model, raws in SMALL.taxonomy.items() for raw in raws}
    spend["model_channel"] = spend["channel"].map(raw_to_model)
    spend["week"] = spend["date"] - pd.to_timedelta(spend["date"].dt.dayofweek, "D")
    sales["week"] = sales["date"] - pd.to_timedelta(sales["date"].dt.dayofweek, "D")
    for market in ("DE", "FR"):
        truth = landing.weekly[("acme", market)].set_index("date")
        weekly_spend = spend[spend.market == market].pivot_table(
            index="week", columns="model_channel", values="spend", aggfunc="sum"
        )
        np.testing.assert_allclose(
            weekly_spend[list(SMALL.taxonomy)].to_numpy(), truth[list(SMALL.taxonomy)].to_numpy(), rtol=1e-9
        )
        weekly_sales = sales[sales.market == market].groupby("week")["revenue"].sum()
        np.testing.assert_allclose(weekly_sales.to_numpy(), truth["y"].to_numpy(), rtol=1e-9)
    assert spend["campaign"].nunique() == 2 * sum(len(r) for r in SMALL.taxonomy.values())
    assert (tmp_path / "truth_roas.json").exists()


def test_every_bad_input_can_be_injected(tmp_path: Path) -> None:
    generate_raw_landing(tmp_path, SMALL, inject=BAD_INPUTS)
    spend = pd.read_csv(tmp_path / "spend" / "acme_batch1.csv")
    assert (spend["spend"] < 0).any() and spend["spend"].isna().any()
    assert "carrier_pigeon" in set(spend["channel"]) and "2999-01-01" in set(spend["date"])
    assert "31/02/2023?" in set(spend["date"]) and spend.duplicated().any()
    assert "spend" not in pd.read_csv(tmp_path / "spend" / "acme_missing_column.csv").columns
    with pytest.raises(UnicodeDecodeError):
        pd.read_csv(tmp_path / "spend" / "corrupt.csv")
    sales = pd.read_csv(tmp_path / "sales" / "acme_batch1.csv", parse_dates=["date"])
    assert sales[sales.market == "DE"]["date"].nunique() == (30 - 3) * 7  # three weeks of sales missing
    assert sales[sales.market == "FR"]["date"].nunique() == 70  # ten weeks only


def test_unknown_bad_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown bad inputs"):
        generate_raw_landing(tmp_path, SMALL, inject=("gremlins",))


def test_lift_tests_follow_the_landing_contract_and_the_truth(tmp_path: Path) -> None:
    config = RawDataConfig(markets={"acme": ["DE", "FR"]}, weeks=60, lift_tests=True)
    landing = generate_raw_landing(tmp_path, config)
    written = pd.read_csv(tmp_path / "lift_tests" / "acme_lift_tests.csv", parse_dates=["start", "end"])
    assert list(written.columns) == ["brand", "market", "channel", "start", "end", "spend_delta", "lift", "lift_se"]
    assert len(written) == 2 * len(config.taxonomy)  # one test per channel and market
    assert (written["start"].dt.dayofweek == 0).all() and (written["end"] > written["start"]).all()
    assert (written["spend_delta"] < 0).all()  # go-dark tests remove spend, so the true lift is negative
    truth = landing.lift_tests
    assert (truth["true_lift"] < 0).all()
    # Honest tests: the observed lift is the true one plus noise of the stated standard error (10%).
    z = (truth["lift"] - truth["true_lift"]) / truth["lift_se"]
    assert np.all(np.abs(z) < 4)
