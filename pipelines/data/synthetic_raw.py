"""Synthetic raw landing files with known truth, for pipeline tests and benchmarks.

Each brand x market is drawn by ``mmm_models.simulator``; its weekly spend is split into days, raw
channel names (the brand's taxonomy maps several raw names to one model channel) and campaigns, and
its weekly sales into days, so that aggregating the raw files back to Monday weeks gives the
simulated weekly data exactly. Files land in one folder per source (``spend/``, ``sales/``,
``controls/``, and ``lift_tests/`` when asked for: one go-dark geo test per channel and market,
generated from the truth), one CSV per brand and batch. ``inject`` adds each kind of bad input on purpose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.config import BrandConfig, QualityLimits

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
from pipelines.names import safe_path

BAD_INPUTS = (
    "negative_spend",
    "nan_spend",
    "duplicate_row",
    "unknown_channel",
    "unparseable_date",
    "missing_column",
    "future_date",
    "sales_gap",
    "short_history",
    "not_csv",
)


@dataclass(frozen=True)
class RawDataConfig:
    """Brands, their markets and raw channel taxonomy, and how much history to draw."""

    markets: dict[str, list[str]] = field(default_factory=lambda: {"acme": ["DE", "FR"], "bolt": ["US"]})
    taxonomy: dict[str, list[str]] = field(
        default_factory=lambda: {"tv": ["tv_linear"], "search": ["google_ads"], "social": ["fb_ads", "instagram"]}
    )
    campaigns_per_raw_channel: int = 2
    weeks: int = 104
    start: str = "2023-01-02"  # a Monday
    seed: int = 0
    lift_tests: bool = False  # also write lift_tests/: one honest go-dark test per channel and market


@dataclass(frozen=True)
class RawLanding:
    """Where the files went, and the weekly truth they were made from (by brand, market)."""

    folder: Path
    weekly: dict[tuple[str, str], pd.DataFrame]
    roas: dict[tuple[str, str], dict[str, float]]
    lift_tests: pd.DataFrame | None = None  # with the true lift behind each observed one


def generate_raw_landing(
    folder: str | Path, config: RawDataConfig | None = None, inject: tuple[str, ...] = ()
) -> RawLanding:
    """Write raw spend, sales and control files under ``folder``; returns the truth behind them."""
    import numpy as np  # here, not at the top: `mmm --help` imports this module for BAD_INPUTS
    import pandas as pd

    from mmm_models.simulator import SimulationConfig, simulate_lift_tests, simulate_market
    from pipelines.data.ingest import REQUIRED_COLUMNS

    config = config or RawDataConfig()
    unknown = sorted(set(inject) - set(BAD_INPUTS))
    if unknown:
        raise ValueError(f"unknown bad inputs {unknown}; choose from {list(BAD_INPUTS)}")
    folder = Path(folder)
    sources = ("spend", "sales", "controls", "lift_tests") if config.lift_tests else ("spend", "sales", "controls")
    for source in sources:
        (folder / source).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    weekly, roas, lift_tests = {}, {}, []
    for b, (brand, markets) in enumerate(config.markets.items()):
        spend_rows, sales_rows, control_rows = [], [], []
        for m, market in enumerate(markets):
            sim_config = SimulationConfig(weeks=config.weeks, channels=tuple(config.taxonomy), start=config.start)
            simulated = simulate_market(sim_config, seed=config.seed * 1000 + b * 100 + m)
            weekly[(brand, market)], roas[(brand, market)] = simulated.data, simulated.truth.roas
            if config.lift_tests:
                tests = simulate_lift_tests(simulated, seed=config.seed * 1000 + b * 100 + m)
                lift_tests.append(tests.assign(brand=brand, market=market))
            for _, week in simulated.data.iterrows():
                days = week["date"] + pd.to_timedelta(np.arange(7), "D")
                day_share = rng.dirichlet(np.full(7, 5.0))
                for channel, raw_names in config.taxonomy.items():
                    parts = rng.dirichlet(np.full(len(raw_names) * config.campaigns_per_raw_channel, 3.0))
                    for p, share in enumerate(parts):
                        raw = raw_names[p // config.campaigns_per_raw_channel]
                        campaign = f"{raw}_c{p % config.campaigns_per_raw_channel + 1}"
                        spend_rows += [
                            (day.date().isoformat(), brand, market, raw, campaign, week[channel] * share * s)
                            for day, s in zip(days, day_share, strict=True)
                        ]
                sales_rows += [
                    (d.date().isoformat(), brand, market, week["y"] * s) for d, s in zip(days, day_share, strict=True)
                ]
                control_rows += [
                    (d.date().isoformat(), brand, market, "price_index", week["price_index"]) for d in days
                ]
        spend = pd.DataFrame(spend_rows, columns=["date", "brand", "market", "channel", "campaign", "spend"])
        sales = pd.DataFrame(sales_rows, columns=["date", "brand", "market", "revenue"])
        controls = pd.DataFrame(control_rows, columns=["date", "brand", "market", "control", "value"])
        spend, sales = _inject(spend, sales, inject, brand, rng) if inject and b == 0 else (spend, sales)
        spend.to_csv(safe_path(folder / "spend", f"{brand}_batch1.csv"), index=False)
        sales.to_csv(safe_path(folder / "sales", f"{brand}_batch1.csv"), index=False)
        controls.to_csv(safe_path(folder / "controls", f"{brand}_batch1.csv"), index=False)
    if "missing_column" in inject:
        first = next(iter(config.markets))
        pd.read_csv(safe_path(folder / "spend", f"{first}_batch1.csv")).drop(columns="spend").head(50).to_csv(
            safe_path(folder / "spend", f"{first}_missing_column.csv"), index=False
        )
    if "not_csv" in inject:
        (folder / "spend" / "corrupt.csv").write_bytes(bytes(range(256)) * 8)
    truth = {f"{b}/{m}": r for (b, m), r in roas.items()}
    (folder / "truth_roas.json").write_text(json.dumps(truth, indent=2))
    tests = pd.concat(lift_tests, ignore_index=True) if lift_tests else None
    if tests is not None:
        for brand, rows in tests.groupby("brand"):
            landing = rows.assign(start=rows["start"].dt.date.astype(str), end=rows["end"].dt.date.astype(str))
            path = safe_path(folder / "lift_tests", f"{brand}_lift_tests.csv")
            landing[REQUIRED_COLUMNS["lift_tests"]].to_csv(path, index=False)
    return RawLanding(folder=folder, weekly=weekly, roas=roas, lift_tests=tests)


def _inject(
    spend: pd.DataFrame, sales: pd.DataFrame, inject: tuple[str, ...], brand: str, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bad rows in the first brand's files; each kind touches a known place so tests can find it."""
    import numpy as np
    import pandas as pd

    spend = spend.copy()
    spend["date"] = spend["date"].astype(object)
    if "negative_spend" in inject:
        spend.loc[0, "spend"] = -100.0
    if "nan_spend" in inject:
        spend.loc[1, "spend"] = np.nan
    if "unknown_channel" in inject:
        spend.loc[2, "channel"] = "carrier_pigeon"
    if "unparseable_date" in inject:
        spend.loc[3, "date"] = "31/02/2023?"
    if "future_date" in inject:
        spend.loc[4, "date"] = "2999-01-01"
    if "duplicate_row" in inject:
        spend = pd.concat([spend, spend.iloc[[5]]], ignore_index=True)
    markets = sales["market"].unique()
    if "sales_gap" in inject:
        week = pd.to_datetime(sales["date"]).dt.to_period("W-SUN").astype(str)
        gap_weeks = sorted(week.unique())[10:13]
        sales = sales[~((sales["market"] == markets[0]) & week.isin(gap_weeks))]
    if "short_history" in inject and len(markets) > 1:
        last_dates = sorted(sales["date"].unique())[-70:]
        keep = (sales["market"] != markets[-1]) | sales["date"].isin(last_dates)
        sales = sales[keep]
        spend = spend[(spend["market"] != markets[-1]) | spend["date"].isin(last_dates)]
    return spend, sales


def brand_configs(config: RawDataConfig, quality: QualityLimits | None = None) -> dict[str, BrandConfig]:
    """The brand configs that describe the generated files (revenue target, price_index control)."""
    return {
        brand: BrandConfig(
            brand=brand,
            taxonomy={channel: list(raws) for channel, raws in config.taxonomy.items()},
            controls=["price_index"],
            quality=quality or QualityLimits(),
        )
        for brand in config.markets
    }
