"""The library's budget optimiser, compiled once per model structure instead of once per question.

``mmm_models.optimizer.BudgetOptimizer`` jits closures over one market's posterior, so every new
optimiser pays a fresh JAX trace and XLA compile (about 1.2 s of the 1.4-1.8 s an optimize took on a
6-channel champion with 1000 draws, against 0.25 s warm). Here the same equations are jitted once per
(spec structure, objective), with the posterior draws, scales, carry-over history and weekly pattern
as *arguments*; ``CompiledOptimizer`` swaps those functions into the library's optimiser and keeps its
bounds, budget checks, SLSQP solve and summary, so an answer equals ``optimize_budget``'s.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from mmm_models.optimizer import BudgetOptimizer, BudgetProblem, BudgetRecommendation, ResponseModel

_compiled: dict[tuple[Any, ...], tuple[Callable, Callable, Callable]] = {}
_lock = threading.Lock()


def _build(template: ResponseModel, problem: BudgetProblem) -> tuple[Callable, Callable, Callable]:
    """The optimiser's objective, mean response and per-draw response, jitted with the market's data as arguments.

    The objective is the library's (``BudgetOptimizer.__init__``), written over ``data`` instead of a closure.
    """
    import jax
    import jax.numpy as jnp

    def totals_to_response(data: dict[str, Any], totals: Any) -> Any:
        response = dataclasses.replace(
            template,
            params=data["params"],
            history=data["history"],
            spend_scale=data["spend_scale"],
            target_scale=data["target_scale"],
        )
        return response.channel_response(jnp, totals[None, :] * data["pattern"])

    def objective(data: dict[str, Any], totals: Any) -> Any:
        per_draw = totals_to_response(data, totals).sum(axis=1)
        if problem.objective == "mean_minus_sd":
            return per_draw.mean() - problem.risk_k * per_draw.std()
        if problem.objective == "cvar":
            worst = max(1, int(np.ceil(problem.cvar_alpha * per_draw.shape[0])))
            return jnp.sort(per_draw)[:worst].mean()
        return per_draw.mean()

    def mean_response(data: dict[str, Any], totals: Any) -> Any:
        return totals_to_response(data, totals).sum(axis=1).mean()

    return (
        jax.jit(jax.value_and_grad(objective, argnums=1)),
        jax.jit(jax.value_and_grad(mean_response, argnums=1)),
        jax.jit(totals_to_response),
    )


def compiled_functions(
    structure: str, template: ResponseModel, problem: BudgetProblem
) -> tuple[Callable, Callable, Callable]:
    """The jitted functions of a model structure and objective (built on first use, then shared)."""
    key = (structure, problem.objective, problem.risk_k, problem.cvar_alpha)
    with _lock:
        if key not in _compiled:  # the template keeps only the structure, not this market's draws
            _compiled[key] = _build(dataclasses.replace(template, params={}, history=np.zeros(0)), problem)
        return _compiled[key]


def compilations() -> int:
    """How many XLA executables the cached functions hold: one per structure, objective and input shape."""
    with _lock:
        functions = [f for group in _compiled.values() for f in group]
    return sum(f._cache_size() for f in functions)


class CompiledOptimizer(BudgetOptimizer):
    """``BudgetOptimizer`` whose JAX functions come from the per-structure cache."""

    def __init__(self, response: ResponseModel, problem: BudgetProblem, structure: str) -> None:
        super().__init__(response, problem)  # checks, bounds and budget; its own jitted closures stay uncompiled
        data = {
            "params": dict(response.params),
            "history": np.asarray(response.history, dtype=float),
            "spend_scale": np.asarray(response.spend_scale, dtype=float),
            "target_scale": float(response.target_scale),
            "pattern": self.pattern,
        }
        objective, mean_response, draws = compiled_functions(structure, response, problem)
        self._objective = functools.partial(objective, data)
        self._mean_response = functools.partial(mean_response, data)
        self._draws = functools.partial(draws, data)


def optimize(response: ResponseModel, problem: BudgetProblem, structure: str) -> BudgetRecommendation:
    """``optimize_budget`` on a prepared response model, without a fresh compile for a known structure."""
    return CompiledOptimizer(response, problem, structure).solve()
