"""Budget recommendations: the rows' invariants on a fitted model (fast), and the job on real Spark, Delta
and MLflow (slow): a row per channel for every market whatever happened, and an idempotent rerun."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mmm_models.fitted import fit
from mmm_models.optimizer import OptimizationError
from mmm_models.simulator import SimulationConfig, simulate_market, simulation_spec
from pipelines.config import BrandConfig, BudgetSettings, ChannelBudget, ConfigError, RecommendSettings
from pipelines.recommend.budget import (
    ACT,
    HOLD,
    NO_CHAMPION,
    SUCCESS,
    TEST,
    budget_problem,
    decide,
    recommend_budget,
    success_rows,
    unavailable_rows,
)
from pipelines.recommend.job import rank_tests
from tests.conftest import LENIENT_REVIEW, QUICK

CHANNELS = ("tv", "search", "social")
SIMULATION = SimulationConfig(weeks=78, channels=CHANNELS)


@pytest.fixture(scope="module")
def fitted():
    market = simulate_market(SIMULATION, seed=3)
    model = fit(simulation_spec(SIMULATION), market.data, QUICK, market="sim")
    return model, market.data[list(CHANNELS)]


def rows_for(model, spend: pd.DataFrame, budget: BudgetSettings) -> pd.DataFrame:
    return pd.DataFrame(success_rows(recommend_budget(model, spend, budget), budget, ("mmm_acme_de", "3")))


def assert_budget_and_bounds_hold(rows: pd.DataFrame, total: float) -> None:
    slack = 1e-6 * total
    assert rows["recommended_spend"].sum() == pytest.approx(total, rel=1e-6)
    assert (rows["total_budget"] == rows["total_budget"].iloc[0]).all()
    assert rows["total_budget"].iloc[0] == pytest.approx(total, rel=1e-6)
    assert (rows["recommended_spend"] >= rows["min_spend"] - slack).all()
    assert (rows["recommended_spend"] <= rows["max_spend"] + slack).all()


def test_default_budget_splits_the_run_rate_within_30_percent(fitted) -> None:
    model, spend = fitted
    rows = rows_for(model, spend, BudgetSettings())
    run_rate = spend.tail(13).mean() * 13
    assert list(rows["channel"]) == list(CHANNELS)
    np.testing.assert_allclose(rows["current_spend"], run_rate[list(CHANNELS)], rtol=1e-9)
    assert_budget_and_bounds_hold(rows, run_rate.sum())
    np.testing.assert_allclose(rows["min_spend"], 0.7 * rows["current_spend"])
    np.testing.assert_allclose(rows["max_spend"], 1.3 * rows["current_spend"])
    np.testing.assert_allclose(rows["change_pct"], 100 * (rows["recommended_spend"] / rows["current_spend"] - 1))
    assert (rows["contribution_hdi_low"] <= rows["expected_contribution"]).all()
    assert (rows["expected_contribution"] <= rows["contribution_hdi_high"]).all()
    first = rows.iloc[0]
    assert first["uplift_hdi_low"] <= first["expected_uplift"] <= first["uplift_hdi_high"]
    assert first["expected_uplift"] >= -1e-6 * run_rate.sum()  # the current split is feasible: never worse
    assert (rows["status"] == SUCCESS).all() and (rows["model_version"] == "3").all()
    assert (rows["roas"] > 0).all() and (rows["marginal_roas"] >= 0).all()


def test_a_set_total_and_per_channel_bounds_hold(fitted) -> None:
    model, spend = fitted
    run_rate = spend.tail(8).mean() * 26
    budget = BudgetSettings(
        period_weeks=26,
        run_rate_weeks=8,
        total=1.2 * run_rate.sum(),
        bounds=ChannelBudget(min_factor=0.2, max_factor=3.0),
        channels={"tv": ChannelBudget(min_factor=1.0, max_factor=1.0)},  # tv keeps its spend
    )
    rows = rows_for(model, spend, budget).set_index("channel")
    assert_budget_and_bounds_hold(rows, 1.2 * run_rate.sum())
    assert rows.loc["tv", "recommended_spend"] == pytest.approx(run_rate["tv"], rel=1e-6)
    np.testing.assert_allclose(rows.loc[["search", "social"], "max_spend"], 3.0 * run_rate[["search", "social"]])


def test_the_verdict_follows_the_uplift_probability_and_the_identification_of_moved_channels(fitted) -> None:
    """The same recommendation, judged with settings that make each verdict the answer: every channel
    identified and a low bar for the probability (act), nothing identified (test, on a moved channel),
    and every channel identified but an unreachable probability (hold)."""
    model, spend = fitted
    recommendation = recommend_budget(model, spend, BudgetSettings())
    probability = recommendation.uplift_probability
    assert probability == pytest.approx(np.mean(recommendation.uplift_draws > 0)) and 0 <= probability <= 1
    everything = RecommendSettings(max_roas_relative_width=1e9, act_probability=0.5 + 1e-9)
    lenient = decide(model, recommendation, everything)
    assert lenient.verdict == (ACT if probability >= 0.5 + 1e-9 else HOLD) and lenient.test is None
    unreachable = everything.model_copy(update={"act_probability": 0.999999})
    assert decide(model, recommendation, unreachable).verdict == (ACT if probability >= 0.999999 else HOLD)
    strict = decide(model, recommendation, RecommendSettings(max_roas_relative_width=1e-9, test_weeks=[4]))
    assert strict.verdict == TEST
    moved = recommendation.table.set_index("channel")
    change = (moved["recommended_spend"] / moved["current_spend"] - 1).abs()
    assert change[strict.test.channel] >= 0.05  # the experiment is on a channel the move depends on
    assert strict.test.weeks == 4 and strict.test.spend_change == -1.0 and strict.test.spend_delta < 0
    assert 0 < strict.test.predicted_narrowing < 1 and strict.test.lift_se > 0 and strict.test.expected_lift < 0
    rows = pd.DataFrame(success_rows(recommendation, BudgetSettings(), ("m", "1"), strict)).set_index("channel")
    assert (rows["verdict"] == TEST).all() and rows["test_weeks"].notna().sum() == 1
    assert rows.loc[strict.test.channel, "test_predicted_narrowing"] == strict.test.predicted_narrowing


def test_experiments_are_ranked_by_their_value_within_each_brand() -> None:
    rows = pd.DataFrame(
        {
            "brand": ["acme", "acme", "acme", "bolt", "bolt"],
            "channel": ["tv", "search", "tv", "tv", "search"],
            "test_value": [5.0, None, 9.0, 1.0, None],
        }
    )
    assert rank_tests(rows)["test_rank"].fillna(0).tolist() == [2.0, 0.0, 1.0, 1.0, 0.0]


def test_a_budget_outside_the_bounds_is_refused_with_the_reason(fitted) -> None:
    model, spend = fitted
    total = 5 * (spend.tail(13).mean() * 13).sum()
    with pytest.raises(OptimizationError, match="above the sum of channel maximums"):
        recommend_budget(model, spend, BudgetSettings(total=total))
    with pytest.raises(OptimizationError, match="no recent spend for the model's channels"):
        recommend_budget(model, spend.drop(columns="tv"), BudgetSettings())


def test_no_recent_spend_and_no_total_is_refused() -> None:
    with pytest.raises(OptimizationError, match="nothing to split"):
        budget_problem({"tv": 0.0, "search": 0.0}, BudgetSettings())


def test_a_market_without_a_recommendation_keeps_a_row_per_channel() -> None:
    rows = unavailable_rows(
        ["tv", "search"], NO_CHAMPION, "no champion version", BudgetSettings(), {"tv": 10.0}, ("mmm_acme_fr", None)
    )
    assert [(r["channel"], r["status"], r["reason"], r["current_spend"]) for r in rows] == [
        ("tv", NO_CHAMPION, "no champion version", 10.0),
        ("search", NO_CHAMPION, "no champion version", None),
    ]
    assert all("recommended_spend" not in r for r in rows)


def test_budget_config_is_checked(tmp_path: Path) -> None:
    brand = {"brand": "acme", "taxonomy": {"tv": ["tv_linear"]}}
    path = tmp_path / "acme.yaml"
    path.write_text(yaml.safe_dump({**brand, "budget": {"channels": {"radio": {"max_factor": 2}}}}))
    with pytest.raises(ConfigError, match=r"budget\.channels names unknown channels \['radio'\]"):
        BrandConfig.from_yaml(path)
    path.write_text(yaml.safe_dump({**brand, "budget": {"bounds": {"min_factor": 2, "max_factor": 1}}}))
    with pytest.raises(ConfigError, match=r"budget\.bounds: .*min_factor 2.0 is above max_factor 1.0"):
        BrandConfig.from_yaml(path)
    assert BrandConfig.model_validate(brand).budget == BudgetSettings()  # period 13 weeks, run-rate, 0.7x-1.3x


# --- the job on real Spark, Delta and MLflow ---

AS_OF = dt.date(2023, 7, 3)  # the Monday after the simulated 78 weeks


@pytest.fixture(scope="module")
def spark():
    from pipelines.spark import get_spark

    return get_spark("tests", master="local[2]")  # shared with later test modules; they stop it


def gold_rows(brand: str, market: str, seed: int, constant_target: bool = False) -> pd.DataFrame:
    data = simulate_market(SIMULATION, seed=seed).data
    return pd.DataFrame(
        {
            "brand": brand,
            "market": market,
            "week_start": data["date"].dt.date,
            "target": 100.0 if constant_target else data["y"],
            "target_missing": False,
            "sales_days": 7,
            "partial_week": False,
            **{f"spend_{c}": data[c] for c in CHANNELS},
            "control_price_index": data["price_index"],
            "controls_missing": False,
        }
    )


@pytest.fixture(scope="module")
def job(spark, tmp_path_factory):
    """Gold tables for 3 markets, trained and promoted: acme/DE gets a champion, acme/FR (a constant target)
    fails training, and bolt/DE's brand budget cannot be spent within its bounds. Then one recommend run."""
    from pipelines.config import GateSettings, MlflowSettings, PlatformConfig, TrainingSettings
    from pipelines.recommend.job import recommend
    from pipelines.registry.promotion import promote
    from pipelines.tables import MARKET_STATUS, MODEL_INPUT
    from pipelines.training.driver import train

    folder = tmp_path_factory.mktemp("recommend")
    root = folder / "lake"
    gold = pd.concat(
        [gold_rows("acme", "DE", 1), gold_rows("acme", "FR", 2, constant_target=True), gold_rows("bolt", "DE", 4)]
    )
    spark.createDataFrame(gold).write.format("delta").save(MODEL_INPUT.path(root))
    status = gold[["brand", "market"]].drop_duplicates().assign(status="included", reason="")
    spark.createDataFrame(status).write.format("delta").save(MARKET_STATUS.path(root))
    taxonomy = {c: [f"{c}_raw"] for c in CHANNELS}
    brands = {
        "acme": BrandConfig(brand="acme", taxonomy=taxonomy, controls=["price_index"]),
        "bolt": BrandConfig(
            brand="bolt", taxonomy=taxonomy, controls=["price_index"], budget=BudgetSettings(total=1e12)
        ),
    }
    platform = PlatformConfig(
        mlflow=MlflowSettings(
            tracking_uri=f"sqlite:///{folder}/mlflow.db", artifact_location=str(folder / "artifacts")
        ),
        training=TrainingSettings(sampler="numpyro", chains=2, draws=200, tune=200, holdout_weeks=8),
        gate=GateSettings(max_rhat=1.2, min_ess_bulk=20, max_divergences=50, max_holdout_wape_ratio=10),
        review=LENIENT_REVIEW,  # 200 draws on 78 weeks: the job's plumbing is tested here, not the review
    )
    trained = train(spark, root, brands, platform, AS_OF, progress=lambda _: None)
    promote(spark, root, platform, trained.training_run_id)
    lines: list[str] = []
    report = recommend(spark, root, brands, platform, AS_OF, progress=lines.append)
    return {"root": root, "folder": folder, "brands": brands, "platform": platform, "report": report, "lines": lines}


def read_table(spark, root) -> pd.DataFrame:
    from pipelines.tables import BUDGET_RECOMMENDATIONS

    path = BUDGET_RECOMMENDATIONS.path(root)
    return spark.read.format("delta").load(path).toPandas().sort_values(["run_date", "brand", "market", "channel"])


@pytest.mark.slow
def test_every_market_gets_a_row_per_channel_with_its_status(spark, job) -> None:
    table = read_table(spark, job["root"])
    assert len(table) == 3 * len(CHANNELS) and table.groupby(["brand", "market", "channel"]).size().max() == 1
    by_market = {m: rows for m, rows in table.groupby(table["brand"] + "/" + table["market"])}

    champion = by_market["acme/DE"]
    assert set(champion["status"]) == {SUCCESS} and set(champion["model_name"]) == {"mmm_acme_de"}
    assert set(champion["model_version"]) == {"1"} and (champion["run_date"] == AS_OF).all()
    assert_budget_and_bounds_hold(champion, champion["current_spend"].sum())
    assert champion["verdict"].nunique() == 1 and champion["verdict"].iloc[0] in (ACT, HOLD, TEST)
    assert champion["uplift_probability"].between(0, 1).all()
    assert champion["test_weeks"].notna().sum() == (1 if champion["verdict"].iloc[0] == TEST else 0)

    no_champion = by_market["acme/FR"]
    assert set(no_champion["status"]) == {NO_CHAMPION}
    reason = no_champion["reason"].iloc[0]
    assert "no champion version of mmm_acme_fr" in reason and "latest training: failed" in reason
    assert no_champion["recommended_spend"].isna().all() and (no_champion["current_spend"] > 0).all()

    failed = by_market["bolt/DE"]  # its champion exists, but its budget cannot be spent within the bounds
    assert set(failed["status"]) == {"failed"} and set(failed["model_version"]) == {"1"}
    assert failed["reason"].str.contains("above the sum of channel maximums").all()

    assert job["report"].markets(SUCCESS) == ["acme/DE"] and not job["report"].all_succeeded
    assert len(job["lines"]) == 1 + 3 and "acme/DE mmm_acme_de v1: uplift" in job["lines"][1]


@pytest.mark.slow
def test_cli_rerun_for_the_same_date_changes_nothing_and_a_later_date_adds_rows(spark, job, capsys) -> None:
    from jobs.cli import main

    before = read_table(spark, job["root"])
    platform_file = job["folder"] / "platform.yaml"
    platform_file.write_text(yaml.safe_dump(job["platform"].model_dump()))
    brands = job["folder"] / "brands"
    brands.mkdir()
    for name, brand in job["brands"].items():
        (brands / f"{name}.yaml").write_text(yaml.safe_dump(brand.model_dump()))
    common = ["--platform", str(platform_file), "--lake", str(job["root"]), "--brand-dir", str(brands)]

    assert main(["recommend", *common, "--as-of", AS_OF.isoformat()]) == 3  # partial: FR and bolt have no numbers
    out = capsys.readouterr().out
    assert "acme/DE" in out and "no_champion" in out and "1 markets recommended, 1 without a champion, 1 failed" in out
    pd.testing.assert_frame_equal(read_table(spark, job["root"]).reset_index(drop=True), before.reset_index(drop=True))

    later = AS_OF + dt.timedelta(days=7)
    assert main(["recommend", *common, "--as-of", later.isoformat(), "--markets", "acme/DE"]) == 0
    after = read_table(spark, job["root"])
    assert len(after) == len(before) + len(CHANNELS)
    pd.testing.assert_frame_equal(after[after.run_date == AS_OF].reset_index(drop=True), before.reset_index(drop=True))
    assert set(after[after.run_date == later]["status"]) == {SUCCESS}
