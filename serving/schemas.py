"""The service's requests and answers as pydantic models: a bad request is refused with 422 naming its field,
and the OpenAPI docs show every field. A budget question is the library's own ``BudgetProblem``."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_PLAN_WEEKS = 104


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    warming: bool = Field(description="champions still loading and their optimiser compiling")
    champions: list[str] = Field(description="brand/market name@version of the champions in memory")
    compilations: int = Field(description="XLA executables of the optimiser: one per model structure and shape")
    problems: list[str] = Field(default_factory=list, description="why the service is not ready, or what warm-up met")


class TrainingStatus(BaseModel):
    run_date: dt.date | None
    status: str
    error: str | None
    model_version: str | None
    review_verdict: str | None = Field(None, description="PASS, REVIEW or FAIL: the model review of that version")
    review_reasons: str | None = Field(None, description="the checks that asked for a review, with their messages")


class Market(BaseModel):
    brand: str
    market: str
    model_name: str
    champion_version: str | None
    pipeline_status: str | None = Field(description="quality/market_status: included or excluded")
    pipeline_reason: str | None
    data_review: str | None = Field(
        None, description="the pre-fit data review's findings on the market's latest data ('check: message; ...')"
    )
    data_warnings: int | None = Field(None, description="how many of those findings are warnings (still modelled)")
    training: TrainingStatus | None = Field(description="the market's latest training run")
    last_run_date: dt.date | None = Field(description="latest run date of its budget recommendations")
    recommendation_status: str | None = Field(description="success, no_champion or failed, on that run date")
    verdict: str | None = Field(description="act, hold or test, where the recommendations table has a verdict")


class Recommendations(BaseModel):
    brand: str
    market: str
    run_date: dt.date
    run_dates: list[dt.date] = Field(description="every run date with recommendations for this market, newest first")
    rows: list[dict[str, Any]] = Field(description="outputs/budget_recommendations rows, one per channel")


class Interval(BaseModel):
    """A posterior summary: mean, sd and the highest-density interval (90% unless said otherwise)."""

    mean: float | None
    sd: float | None
    hdi_low: float | None
    hdi_high: float | None


class ChannelMetrics(BaseModel):
    channel: str
    spend: float
    contribution: Interval
    contribution_share: Interval
    roas: Interval
    marginal_roas: Interval
    adstock_half_life: Interval = Field(description="weeks")
    half_saturation_spend: Interval = Field(description="weekly spend at half saturation, original units")


class ChannelSummary(BaseModel):
    brand: str
    market: str
    model_name: str
    model_version: str
    period_start: dt.date
    period_end: dt.date
    hdi_prob: float
    channels: list[ChannelMetrics]


class OptimizedChannel(BaseModel):
    channel: str
    current_spend: float
    recommended_spend: float
    change_pct: float | None
    contribution: Interval
    roas: Interval
    marginal_roas: Interval


class OptimizeAnswer(BaseModel):
    brand: str
    market: str
    model_name: str
    model_version: str
    objective: str
    total_budget: float
    converged: bool
    message: str
    uplift: Interval = Field(description="recommended minus current plan, summed over the horizon and carry-over")
    channels: list[OptimizedChannel]


class PlanWeek(BaseModel):
    """One planned week: its Monday, the spend of every channel, and the controls (default: their last value)."""

    model_config = ConfigDict(extra="forbid")

    week_start: dt.date
    spend: dict[str, float] = Field(description="spend per channel in the week, every channel of the model")
    controls: dict[str, float] = Field(default_factory=dict, description="control values; missing: the last observed")

    @model_validator(mode="after")
    def _non_negative(self) -> PlanWeek:
        negative = sorted(c for c, v in self.spend.items() if not v >= 0)
        if negative:
            raise ValueError(f"spend must be a non-negative number; not so for {negative}")
        return self


class WhatIfRequest(BaseModel):
    """A weekly spend plan, and optionally the plan to compare it with (default: the current run-rate)."""

    model_config = ConfigDict(extra="forbid")

    plan: list[PlanWeek] = Field(min_length=1, max_length=MAX_PLAN_WEEKS)
    baseline: list[PlanWeek] | None = Field(
        default=None,
        description="the same weeks under the current plan; default: each channel at its mean weekly spend of the "
        "champion's last weeks (as many as the plan has), with the plan's controls",
    )

    @model_validator(mode="after")
    def _same_weeks(self) -> WhatIfRequest:
        if self.baseline is not None and [w.week_start for w in self.baseline] != [w.week_start for w in self.plan]:
            raise ValueError("baseline must cover the same weeks as plan, in the same order")
        return self


class WeeklyOutcome(BaseModel):
    week_start: dt.date
    expected_mean: float
    quantiles: dict[str, float] = Field(description="posterior predictive quantiles, noise included: q0.05 ... q0.95")


class WeeklyDifference(Interval):
    week_start: dt.date


class WhatIfAnswer(BaseModel):
    brand: str
    market: str
    model_name: str
    model_version: str
    weekly: list[WeeklyOutcome]
    total: dict[str, float] = Field(description="expected_mean and quantiles of the plan's summed outcome")
    difference: Interval = Field(description="plan minus baseline expected outcome, carry-over weeks included")
    weekly_difference: list[WeeklyDifference] = Field(description="plan weeks, then the carry-over weeks")
    baseline: list[PlanWeek] = Field(description="the plan compared with")
