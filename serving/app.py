"""The FastAPI app: the endpoints, their auth, and one HTTP status per kind of error.

A market's recommendations are answered on the event loop from memory (a dictionary lookup of the JSON
body) while the lake needs no look, and in FastAPI's thread pool when it does; the other reads are plain
functions, which FastAPI runs in its thread pool. The bearer check runs on the event loop (a constant-time
comparison, no I/O), so a read from memory never waits for a thread. The model's answers (channel
summary, optimize, what-if) run in worker threads too, at most one per core at a time (an anyio capacity
limiter), so the event loop keeps answering reads and health checks while they compute. At start, a
background thread loads the champions and compiles their optimiser (``RecommendationService.warm``);
readiness says when it is done. Every answer carries a ``Server-Timing`` header (``serving.timing``).
OpenAPI docs: ``/docs``.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, TypeVar

import anyio
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from mmm_models.data import DataError
from mmm_models.optimizer import BudgetProblem, OptimizationError
from serving.auth import BearerAuth
from serving.champions import NoChampionError
from serving.schemas import (
    ChannelSummary,
    Health,
    Market,
    OptimizeAnswer,
    Readiness,
    Recommendations,
    WhatIfAnswer,
    WhatIfRequest,
)
from serving.service import InvalidRequestError, NotFoundError, RecommendationService, UnknownMarketError
from serving.timing import ServerTiming

Brand = Annotated[str, Path(description="brand, as in the brand files (normalised: trimmed, lower case)")]
T = TypeVar("T")
MarketName = Annotated[str, Path(description="market, as in the landing files (normalised: upper case)")]


def create_app(service: RecommendationService, tokens: frozenset[str], warm: bool = True) -> FastAPI:
    """The app over ``service``; with ``tokens``, every endpoint but ``/health`` needs one as a bearer token."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.compute = anyio.CapacityLimiter(os.cpu_count() or 1)
        if warm:
            threading.Thread(target=service.warm, name="mmm-api-warm-up", daemon=True).start()
        yield

    app = FastAPI(
        title="MMM recommendation service",
        description="Budget recommendations, channel summaries, optimize and what-if over each market's champion.",
        version="1",
        lifespan=lifespan,
    )
    app.state.service = service

    @app.get("/health", response_model=Health, tags=["service"])
    def health() -> Health:
        """Liveness: the process answers (no auth, no lake or registry call)."""
        return Health()

    router = APIRouter(dependencies=[Depends(BearerAuth(tokens))])

    @router.get("/ready", response_model=Readiness, tags=["service"], responses={503: {"model": Readiness}})
    def ready() -> Readiness | JSONResponse:
        """Readiness: champions loaded and compiled, the lake readable; 503 until then."""
        state = service.readiness()
        return state if state.ready else JSONResponse(state.model_dump(mode="json"), status_code=503)

    @router.get("/markets", response_model=list[Market], tags=["markets"])
    def markets() -> list[Market]:
        """Every market: champion version, latest training status, latest run date and recommendation verdict."""
        return service.markets()

    @router.get("/markets/{brand}/{market}/recommendations", response_model=Recommendations, tags=["markets"])
    async def recommendations(
        brand: Brand,
        market: MarketName,
        run_date: Annotated[dt.date | None, Query(description="a run date (default: the latest)")] = None,
    ) -> Response:
        """The market's budget recommendation rows (one per channel) of its latest or a given run date."""
        body = service.cached_recommendations_json(brand, market, run_date)
        if body is None:  # the lake is due for a look, or the body is not built yet: off the event loop
            body = await anyio.to_thread.run_sync(service.recommendations_json, brand, market, run_date)
        return Response(body, media_type="application/json")

    @router.get("/markets/{brand}/{market}/channels", response_model=ChannelSummary, tags=["champion"])
    async def channels(
        request: Request,
        brand: Brand,
        market: MarketName,
        start: Annotated[dt.date | None, Query(description="first week (default: the training window)")] = None,
        end: Annotated[dt.date | None, Query(description="last week")] = None,
    ) -> ChannelSummary:
        """ROAS, contribution share, mROAS, half-life and half-saturation spend, with mean and 90% HDI."""
        return await _compute(request, service.channel_summary, brand, market, start, end)

    @router.post("/markets/{brand}/{market}/optimize", response_model=OptimizeAnswer, tags=["champion"])
    async def optimize(request: Request, brand: Brand, market: MarketName, problem: BudgetProblem) -> OptimizeAnswer:
        """Split a budget (or spend to a target ROAS) over the horizon, within bounds and locks, on the champion."""
        return await _compute(request, service.optimize, brand, market, problem)

    @router.post("/markets/{brand}/{market}/what-if", response_model=WhatIfAnswer, tags=["champion"])
    async def what_if(request: Request, brand: Brand, market: MarketName, body: WhatIfRequest) -> WhatIfAnswer:
        """A weekly spend plan's outcome quantiles, and its difference from the current plan with its HDI."""
        return await _compute(request, service.what_if, brand, market, body)

    app.include_router(router)
    app.add_middleware(ServerTiming)
    _add_error_handlers(app)
    return app


async def _compute(request: Request, function: Callable[..., T], *args: object) -> T:
    """``function(*args)`` in a worker thread, at most one per core at a time."""
    return await anyio.to_thread.run_sync(function, *args, limiter=request.app.state.compute)


def _add_error_handlers(app: FastAPI) -> None:
    def status(code: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
        async def handler(_request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=code)

        return handler

    async def invalid(_request: Request, exc: InvalidRequestError) -> JSONResponse:
        detail = [{"loc": list(exc.loc), "msg": str(exc), "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=422)

    app.add_exception_handler(InvalidRequestError, invalid)
    for error, code in (
        (UnknownMarketError, 404),
        (NotFoundError, 404),
        (NoChampionError, 409),
        (OptimizationError, 422),
        (DataError, 422),
    ):
        app.add_exception_handler(error, status(code))
