"""Budget optimisation over the posterior: how to split a budget across channels for the next weeks.

The response of a plan is the incremental outcome of its spend: the outcome with the plan minus the
outcome with no spend in the horizon, summed over the horizon *and the weeks its adstock spills past
the end*, with the carry-over of the spend before the horizon included on both sides (it changes
where each channel sits on its saturation curve). It is evaluated for every posterior draw with the
model's own equations in JAX, so SciPy's SLSQP gets exact gradients. Channels are matched by name.

Objectives: the posterior mean of the response, the mean minus ``k`` standard deviations, or the
conditional value at risk (the mean of the worst ``alpha`` share of draws).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.optimize import minimize

from mmm_models import backend
from mmm_models import constants as C
from mmm_models.analysis import HDI_PROB, summarise
from mmm_models.equations import ChannelLayout, channel_contributions
from mmm_models.fitted import FittedModel


class OptimizationError(ValueError):
    """A budget problem that cannot be solved as stated, with the reason."""


class ChannelBound(BaseModel):
    """Limits on a channel's spend over the horizon: absolute, or as multiples of the current plan."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min: float | None = Field(default=None, ge=0)
    max: float | None = Field(default=None, ge=0)
    relative: bool = False  # True: min and max multiply the channel's current spend (0.7 and 1.3 = +-30%)


class BudgetProblem(BaseModel):
    """What to optimise: horizon, budget (or a target ROAS), bounds, locks and the objective."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    horizon_weeks: int = Field(default=13, ge=1, le=104)
    total_budget: float | None = Field(default=None, gt=0)
    target_roas: float | None = Field(default=None, gt=0, description="instead of a budget: spend while ROAS >= this")
    current_plan: dict[str, float] | None = None  # spend per channel over the horizon; default: last weeks' spend
    bounds: dict[str, ChannelBound] = Field(default_factory=dict)
    locked: list[str] = Field(default_factory=list)
    objective: Literal["mean", "mean_minus_sd", "cvar"] = "mean"
    risk_k: float = Field(default=1.0, ge=0)
    cvar_alpha: float = Field(default=0.1, gt=0, le=1)

    @model_validator(mode="after")
    def _budget_or_target(self) -> BudgetProblem:
        if self.target_roas is not None and self.total_budget is not None:
            raise ValueError("give either total_budget or target_roas, not both")
        return self


@dataclass(frozen=True)
class ResponseModel:
    """What the optimiser needs of a model: equations, parameter draws, scales and recent spend."""

    channels: list[str]
    layout: ChannelLayout
    params: Mapping[str, np.ndarray]  # posterior draws (draws, ...) of the media parameters
    spend_scale: np.ndarray  # (model channels,) spend is divided by this before adstock
    target_scale: float
    l_max: int
    history: np.ndarray  # (l_max - 1, channels) spend of the weeks just before the horizon
    # (channels, model channels): where each budgeted channel sits among the model's, which also has organic
    # channels (not budgeted: their activity is the same with and without a plan, so it cancels); None: the same
    selector: np.ndarray | None = None
    # (reach and frequency channels,): the average frequency their budgets buy reach at; None without any
    frequency: np.ndarray | None = None

    @classmethod
    def from_fitted(cls, model: FittedModel, max_draws: int | None = 1000) -> ResponseModel:
        if model.spec.target.link != "identity":
            raise OptimizationError(
                "budget optimisation needs an identity link: under a log link a channel's response depends "
                "on the future baseline, which the plan does not state"
            )
        draws = model.draws(max_draws)
        layout = model.layout
        # a time-varying channel works at its effectiveness of the last training week
        # a mediated channel's response is its total effect: direct plus through the mediators
        keep = {
            C.CHANNEL_COEF,
            C.MEDIA_LOG_MULTIPLIER_LATEST,
            C.MEDIATOR_COEF,
            C.MEDIATOR_CHANNEL_COEF,
            C.HALF_FREQUENCY,
        } | {g.variable(p) for g in (*layout.adstock, *layout.saturation) for p in g.transform.param_names}
        lags = model.spec.max_l_max - 1
        paid = model.spec.paid_channels
        if not paid:
            raise OptimizationError("every channel is organic: there is no spend to optimise")
        money = {c.name: c.spend_column or c.name for c in model.spec.channels}  # budgets are in money
        spend = model.data[[money[c] for c in paid]].to_numpy(float)
        history = np.zeros((lags, len(paid)))
        if lags:
            tail = spend[-lags:]
            history[lags - len(tail) :] = tail
        return cls(
            channels=paid,
            layout=layout,
            params={k: v for k, v in draws.items() if k in keep},
            # a channel in media units: money / cost per unit = units, then / the units' scale
            spend_scale=np.array(
                [model.scaling.spend[c] * model.scaling.cost_per_unit.get(c, 1.0) for c in model.channel_names]
            ),
            target_scale=model.scaling.target,
            l_max=model.spec.max_l_max,
            history=history,
            selector=np.eye(len(model.channel_names))[[model.channel_names.index(c) for c in paid]],
            frequency=_training_frequency(model) if model.spec.reach_frequency_channels else None,
        )

    def channel_response(self, xp: Any, weekly_spend: Any) -> Any:
        """Incremental outcome per draw and channel (draws, channels) of ``weekly_spend`` (weeks, channels)."""
        lags = self.l_max - 1
        spill = xp.zeros((lags, len(self.spend_scale)))

        def on_model_channels(values: Any) -> Any:
            return values if self.selector is None else values @ self.selector

        def terms(plan: Any) -> Any:
            series = xp.concatenate([on_model_channels(xp.asarray(self.history)), plan, spill], axis=0)
            series = series / self.spend_scale
            lagged = xp.stack([series[lags - lag : series.shape[0] - lag] for lag in range(self.l_max)], axis=1)
            data = {"spend_lags": lagged}
            if self.frequency is not None:
                data["frequency_lags"] = xp.ones((*lagged.shape[:2], len(self.frequency))) * self.frequency
            return channel_contributions(xp, self.layout, data, self.params).sum(axis=-2)

        plan = on_model_channels(weekly_spend)
        response = self.target_scale * (terms(plan) - terms(xp.zeros_like(plan)))
        return response if self.selector is None else response @ self.selector.T

    def period_response(self, totals: np.ndarray, horizon_weeks: int) -> np.ndarray:
        """Incremental outcome per draw, spend level and channel, (draws, levels, channels), of spending each
        row of ``totals`` (levels, channels) evenly over ``horizon_weeks``: the optimiser's response along a
        grid of spend levels, i.e. the response curves over the period the budget is split for."""
        totals = np.atleast_2d(np.asarray(totals, dtype=float))
        weekly = [np.broadcast_to(row / horizon_weeks, (horizon_weeks, len(row))) for row in totals]
        return np.stack([self.channel_response(np, plan) for plan in weekly], axis=1)


@dataclass(frozen=True)
class BudgetRecommendation:
    """The optimiser's answer."""

    table: pd.DataFrame  # per channel: current and recommended spend, contribution, ROAS, marginal ROAS
    uplift: dict[str, float]  # recommended minus current plan: mean, sd, hdi_low, hdi_high
    total_budget: float
    objective: str
    converged: bool
    message: str
    response_draws: np.ndarray  # (draws,) total response of the recommendation
    uplift_draws: np.ndarray  # (draws,) recommended minus current plan's response
    current_roas_draws: np.ndarray  # (draws, channels) each channel's response / spend under the current plan

    @property
    def uplift_probability(self) -> float:
        """Posterior probability that the recommended split beats the current one."""
        return float(np.mean(self.uplift_draws > 0))


class BudgetOptimizer:
    """Finds the spend split that maximises the chosen objective of the posterior response."""

    def __init__(self, response: ResponseModel, problem: BudgetProblem, hdi_prob: float = HDI_PROB) -> None:
        backend.configure()  # float64 on the CPU, before JAX starts
        import jax
        import jax.numpy as jnp

        self.response, self.problem, self.hdi_prob = response, problem, hdi_prob
        self.current = self._current_plan()
        self.pattern = np.full((problem.horizon_weeks, len(response.channels)), 1.0 / problem.horizon_weeks)
        self.lower, self.upper = self._bounds()
        self.budget = self._budget()
        self._scale = max(self.budget, 1e-12)

        def totals_to_response(totals: Any) -> Any:
            return response.channel_response(jnp, totals[None, :] * self.pattern)

        def objective(totals: Any) -> Any:
            per_draw = totals_to_response(totals).sum(axis=1)
            if problem.objective == "mean_minus_sd":
                return per_draw.mean() - problem.risk_k * per_draw.std()
            if problem.objective == "cvar":
                worst = max(1, int(np.ceil(problem.cvar_alpha * per_draw.shape[0])))
                return jnp.sort(per_draw)[:worst].mean()
            return per_draw.mean()

        self._objective = jax.jit(jax.value_and_grad(objective))
        self._mean_response = jax.jit(jax.value_and_grad(lambda t: totals_to_response(t).sum(axis=1).mean()))
        self._draws = jax.jit(totals_to_response)

    def _check_names(self, names: object, what: str) -> None:
        unknown = sorted(set(names) - set(self.response.channels))  # type: ignore[arg-type]
        if unknown:
            raise OptimizationError(f"{what} name unknown channels {unknown}; the model has {self.response.channels}")

    def _current_plan(self) -> np.ndarray:
        channels, problem = self.response.channels, self.problem
        if problem.current_plan is None:
            recent = self.response.history[-problem.horizon_weeks :] if len(self.response.history) else None
            if recent is None or not len(recent):
                raise OptimizationError("no recent spend to take the current plan from; pass current_plan")
            return recent.mean(axis=0) * problem.horizon_weeks
        self._check_names(problem.current_plan, "current_plan")
        missing = sorted(set(channels) - set(problem.current_plan))
        if missing:
            raise OptimizationError(f"current_plan lacks channels {missing}")
        return np.array([problem.current_plan[c] for c in channels], dtype=float)

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        problem, channels = self.problem, self.response.channels
        self._check_names(problem.bounds, "bounds")
        self._check_names(problem.locked, "locked")
        lower, upper = np.zeros(len(channels)), np.full(len(channels), np.inf)
        for i, channel in enumerate(channels):
            bound = problem.bounds.get(channel)
            if bound is not None:
                factor = self.current[i] if bound.relative else 1.0
                lower[i] = bound.min * factor if bound.min is not None else 0.0
                upper[i] = bound.max * factor if bound.max is not None else np.inf
            if channel in problem.locked:
                lower[i] = upper[i] = self.current[i]
            if lower[i] > upper[i]:
                raise OptimizationError(
                    f"channel {channel!r}: minimum {lower[i]:,.2f} is above maximum {upper[i]:,.2f}"
                )
        return lower, upper

    def _budget(self) -> float:
        problem = self.problem
        if problem.target_roas is not None:
            finite = np.where(np.isfinite(self.upper), self.upper, np.nan)
            if np.isnan(finite).any():
                raise OptimizationError("a target ROAS needs a maximum for every channel (bounds.max)")
            return float(finite.sum())
        budget = float(problem.total_budget if problem.total_budget is not None else self.current.sum())
        if budget < self.lower.sum() * (1 - 1e-9):
            raise OptimizationError(
                f"budget {budget:,.2f} is below the sum of channel minimums {self.lower.sum():,.2f}"
            )
        if budget > self.upper.sum() * (1 + 1e-9):
            raise OptimizationError(
                f"budget {budget:,.2f} is above the sum of channel maximums {self.upper.sum():,.2f}"
            )
        return budget

    def solve(self) -> BudgetRecommendation:
        """Run SLSQP from the current plan (projected into the bounds) and summarise the answer."""
        scale = self._scale
        lower, upper = self.lower / scale, np.minimum(self.upper, self.budget) / scale

        def negative(u: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = self._objective(u * scale)
            return -float(value) / scale, -np.asarray(grad)

        if self.problem.target_roas is None:
            constraints = [{"type": "eq", "fun": lambda u: u.sum() - 1.0, "jac": lambda u: np.ones_like(u)}]
        else:
            target = self.problem.target_roas

            def roas_margin(u: np.ndarray) -> float:
                return float(self._mean_response(u * scale)[0]) / scale - target * u.sum()

            def roas_margin_grad(u: np.ndarray) -> np.ndarray:
                return np.asarray(self._mean_response(u * scale)[1]) - target

            constraints = [{"type": "ineq", "fun": roas_margin, "jac": roas_margin_grad}]
        start = np.clip(self.current / scale, lower, upper)
        if self.problem.target_roas is None and start.sum() > 0:
            start = _project_to_budget(start, lower, upper)
        result = minimize(
            negative,
            start,
            jac=True,
            method="SLSQP",
            bounds=list(zip(lower, upper, strict=True)),
            constraints=constraints,
            options={"maxiter": 500, "ftol": 1e-12},
        )
        recommended = np.clip(result.x, lower, upper) * scale
        if self.problem.target_roas is None:
            recommended = _project_to_budget(recommended / scale, lower, upper) * scale
        return self._summarise(recommended, bool(result.success), str(result.message))

    def _summarise(self, recommended: np.ndarray, converged: bool, message: str) -> BudgetRecommendation:
        recommended = np.where(recommended < 1e-9 * self.budget, 0.0, recommended)
        rec_draws = np.asarray(self._draws(recommended))
        cur_draws = np.asarray(self._draws(self.current))
        # marginal ROAS: response to one more percent of the channel's spend (of an even share if it has none)
        step = 0.01 * np.maximum(recommended, self.budget / len(recommended))
        rows = []
        for i, channel in enumerate(self.response.channels):
            bumped = recommended.copy()
            bumped[i] += step[i]
            marginal = (np.asarray(self._draws(bumped))[:, i] - rec_draws[:, i]) / step[i]
            contribution = summarise(rec_draws[:, i], self.hdi_prob)
            roas = summarise(rec_draws[:, i] / recommended[i], self.hdi_prob) if recommended[i] > 0 else None
            rows.append(
                {
                    "channel": channel,
                    "current_spend": self.current[i],
                    "recommended_spend": recommended[i],
                    "change_pct": (recommended[i] / self.current[i] - 1) * 100 if self.current[i] > 0 else np.nan,
                    **{f"contribution_{k}": float(v) for k, v in contribution.items()},
                    "roas_mean": float(roas["mean"]) if roas else np.nan,
                    "roas_hdi_low": float(roas["hdi_low"]) if roas else np.nan,
                    "roas_hdi_high": float(roas["hdi_high"]) if roas else np.nan,
                    **{f"marginal_roas_{k}": float(v) for k, v in summarise(marginal, self.hdi_prob).items()},
                }
            )
        uplift_draws = rec_draws.sum(axis=1) - cur_draws.sum(axis=1)
        uplift = summarise(uplift_draws, self.hdi_prob)
        with np.errstate(divide="ignore", invalid="ignore"):
            current_roas = np.where(self.current > 0, cur_draws / self.current, np.nan)
        return BudgetRecommendation(
            table=pd.DataFrame(rows),
            uplift={k: float(v) for k, v in uplift.items()},
            total_budget=float(recommended.sum()),
            objective=self.problem.objective,
            converged=converged,
            message=message,
            response_draws=rec_draws.sum(axis=1),
            uplift_draws=uplift_draws,
            current_roas_draws=current_roas,
        )


def average_frequency(reach: np.ndarray, frequency: np.ndarray) -> np.ndarray:
    """Each reach and frequency channel's frequency over the weeks (rows), weighted by its reach."""
    return (reach * frequency).sum(axis=0) / np.maximum(reach.sum(axis=0), 1e-12)


def _training_frequency(model: FittedModel) -> np.ndarray:
    data = model.data.iloc[: model.train_weeks]
    channels = [c for c in model.spec.channels if c.reach_frequency]
    frequency_columns = [c.reach_frequency.frequency_column for c in channels if c.reach_frequency]
    return average_frequency(data[[c.name for c in channels]].to_numpy(float), data[frequency_columns].to_numpy(float))


def _project_to_budget(u: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Shift ``u`` so it sums to one within its bounds (bisection on a common offset)."""
    low, high = -1.0, 1.0
    for _ in range(200):
        mid = (low + high) / 2
        if np.clip(u + mid, lower, upper).sum() > 1.0:
            high = mid
        else:
            low = mid
    return np.clip(u + (low + high) / 2, lower, upper)


def optimize_budget(model: FittedModel, problem: BudgetProblem, max_draws: int | None = 1000) -> BudgetRecommendation:
    """Recommend a spend split for ``model``'s market (see ``BudgetProblem``)."""
    return BudgetOptimizer(ResponseModel.from_fitted(model, max_draws), problem).solve()
