"""One group's training inside a Spark worker: fit, diagnose, gate, review, summarise, track and register.

Returns one status row per market of the group (a group is one market, or with the brand unit one
brand's markets): ``success`` (fitted, registered, gate passed, review verdict PASS or REVIEW in
``review_verdict``), ``rejected`` (fitted and registered, but the gate or the review failed: the
version gets no alias) or ``failed`` (with the error). An exception never
escapes, so one bad market never stops the others.

Runs in the Spark worker's fit process (``pipelines.training.worker``). A market this training run has
already registered (a retried task) is not fitted again: its run, version and stored row are reused.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time

import pandas as pd

from mmm_models import analysis, chains, fitting
from mmm_models.brand import TooFewMarketsError, market_view, prepare_brand, sample_brand
from mmm_models.chains import ChainBlock
from mmm_models.data import DataError, ScalingFactors
from mmm_models.diagnostics import diagnose
from mmm_models.fitted import FittedModel, fit, fit_batch, prepare_market
from mmm_models.spec import ModelSpec
from pipelines.config import BrandConfig, GateSettings, ReviewSettings, TrainingSettings
from pipelines.data.model_input import market_frame
from pipelines.names import model_name
from pipelines.registry.promotion import CHAMPION
from pipelines.registry.store import RegistryStore
from pipelines.training.contract import SAMPLE_COLUMNS, TrainJob
from pipelines.training.gate import evaluate_gate, failures
from pipelines.training.review import FAIL, review_json, review_model, worst
from pipelines.training.tracking import PooledWith, recorded, registered_run, reuse, track, track_failure
from pipelines.training.worker import initial_result, inject_test_fault, result_frame

log = logging.getLogger(__name__)

# Posterior draws behind the summaries: 1000 keep the 90% HDI ends within about
# 2% of the full posterior's (their Monte Carlo error); more only costs time on every market.
SUMMARY_DRAWS = 1000
SUMMARY_METRICS = ("roas", "contribution_share", "adstock_half_life", "half_saturation_spend", "marginal_roas")


def lift_tests_for(
    job: TrainJob, brand: str, market: str, frame: pd.DataFrame, date_column: str
) -> pd.DataFrame | None:
    """The market's lift tests that fall inside its training weeks (None when it has none).

    A test outside the weeks (one that ends in the week still running, say) cannot be modelled yet;
    it is left for a later run and logged.
    """
    tests = pd.DataFrame(job.lift_tests.get(f"{brand}/{market}", []))
    if tests.empty:
        return None
    weeks = pd.to_datetime(frame[date_column])
    starts, ends = (pd.to_datetime(tests[c]) for c in ("start", "end"))
    inside = (starts - pd.to_timedelta(starts.dt.dayofweek, "D") >= weeks.min()) & (
        ends - pd.to_timedelta(ends.dt.dayofweek, "D") <= weeks.max()
    )
    if not inside.all():
        log.warning("%s/%s: %d lift tests fall outside the training weeks; left out", brand, market, (~inside).sum())
    return tests[inside].reset_index(drop=True) if inside.any() else None


def settings_for(job: TrainJob, brand: str, market: str) -> tuple[TrainingSettings, GateSettings]:
    override = job.overrides.get(f"{brand}/{market}", {})
    training = TrainingSettings.model_validate({**job.training, **override.get("training", {})})
    gate = GateSettings.model_validate({**job.gate, **override.get("gate", {})})
    return training, gate


def review_settings_for(job: TrainJob, brand: str, market: str) -> ReviewSettings:
    """The market's review thresholds: the job's, with its ``review`` override."""
    return ReviewSettings.model_validate({**job.review, **job.overrides.get(f"{brand}/{market}", {}).get("review", {})})


def current_champion(job: TrainJob, brand: str, market: str) -> tuple[FittedModel | None, str]:
    """The market's champion as saved (to compare ELPD with), or None and why there is none."""
    name = model_name(job.model_prefix, brand, market)
    try:
        store = RegistryStore(job.tracking_uri, job.registry_uri)
        version = store.alias_version(name, CHAMPION)
        if version is None:
            return None, "the market has no champion yet"
        return store.load_run_model(store.market_run_id(name, version, brand, market)), ""
    except Exception as exc:  # the comparison is left out, with the reason; the review goes on
        return None, f"champion not loaded ({type(exc).__name__}: {str(exc)[:200]})"


def train_group(rows: pd.DataFrame, job: TrainJob) -> pd.DataFrame:
    """One ``applyInPandas`` group of independent models: a market, or a batch of a brand's markets (unit
    ``market``; with unit ``brand``, a market whose brand has fewer than two valid markets).

    Returns one status row per market in the group, whatever happens.
    """
    start = time.perf_counter()
    compilations_before = fitting.COMPILE_COUNT["count"]
    brand = str(rows["brand"].iloc[0])
    by_market = {str(m): part for m, part in rows.groupby("market", sort=True)}
    results = {market: initial_result(part, job, brand, market) for market, part in by_market.items()}
    try:
        brand_config = BrandConfig.model_validate(job.brands[brand])
        spec = brand_config.spec()
        frames = {}
        for market, part in by_market.items():
            try:
                frames[market] = market_frame(part, brand_config, spec.date_column, spec.target.column)
            except Exception as exc:  # this market's rows only: the others still train
                _fail(results[market], job, brand, market, exc)
        _train_markets(spec, frames, TrainingSettings.model_validate(job.training), job, brand, results)
    except Exception as exc:  # a brand-wide failure (config, spec)
        for market, result in results.items():
            if result["status"] == "failed" and not result.get("error"):
                _fail(result, job, brand, market, exc)
    compilations = fitting.COMPILE_COUNT["count"] - compilations_before
    total = time.perf_counter() - start
    for index, result in enumerate(results.values()):
        result["compilations"] = compilations if index == 0 else 0  # the group's, counted once
        result["total_seconds"] = total / len(results)
    return result_frame(list(results.values()))


def _train_markets(
    spec: ModelSpec,
    frames: dict[str, pd.DataFrame],
    training: TrainingSettings,
    job: TrainJob,
    brand: str,
    results: dict[str, dict],
) -> None:
    """Fit the group's markets independently: together in one batch (``fit_batch``) where the job batches and
    a market has no training override of its own, else one at a time."""
    done: set[str] = set()
    if training.batch_size > 1:
        shared = [m for m in frames if not job.overrides.get(f"{brand}/{m}", {}).get("training")]
        done = {m for m in shared if _reuse_registered(job, brand, m, results[m])}
        together = {m: frames[m] for m in shared if m not in done}
        if len(together) > 1:
            _train_batch(spec, together, training, job, brand, results)
            done |= set(together)
    for market, frame in frames.items():
        if market not in done:
            _train_market(spec, frame, job, brand, market, results[market])


def _reuse_registered(job: TrainJob, brand: str, market: str, result: dict) -> bool:
    """A retry: when this training run registered the market already, its row is reused (True)."""
    try:
        found = registered_run(job, brand, market)
    except Exception as exc:  # the store is unreachable: the market fails like any other tracking error
        _fail(result, job, brand, market, exc)
        return True
    if found is not None:
        reuse(result, found)
    return found is not None


def _train_batch(
    spec: ModelSpec,
    frames: dict[str, pd.DataFrame],
    training: TrainingSettings,
    job: TrainJob,
    brand: str,
    results: dict[str, dict],
) -> None:
    """Fit markets together in one compiled call, then gate, summarise and track each on its own."""
    tests = {}
    for market, frame in frames.items():
        inject_test_fault(job, brand, market)
        tests[market] = lift_tests_for(job, brand, market, frame, spec.date_column)
    fitted = fit_batch(
        spec,
        frames,
        training.fit_settings(),
        lift_tests={m: t for m, t in tests.items() if t is not None},
        allow_target_gaps=True,
    )
    for market, model in fitted.items():
        result = results[market]
        if isinstance(model, Exception):
            _fail(result, job, brand, market, model)
            continue
        try:
            _, gate = settings_for(job, brand, market)
            result["fit_seconds"] = model.timings["wall_s"]
            result["compiled"] = bool(model.timings["compiled"])
            _finish(model, diagnose(model).to_dict(), training, gate, job, brand, market, result)
        except Exception as exc:
            _fail(result, job, brand, market, exc)


def _train_market(spec: ModelSpec, frame: pd.DataFrame, job: TrainJob, brand: str, market: str, result: dict) -> None:
    """Fit one market on its own, then gate, summarise and track it; failures land in ``result``."""
    try:
        if (found := registered_run(job, brand, market)) is not None:  # a retry: registered already
            reuse(result, found)
            return
        training, gate = settings_for(job, brand, market)
        tests = lift_tests_for(job, brand, market, frame, spec.date_column)
        inject_test_fault(job, brand, market)
        model = fit(
            spec, frame, training.fit_settings(), market=f"{brand}/{market}", lift_tests=tests, allow_target_gaps=True
        )
        result["fit_seconds"] = model.timings["wall_s"]
        result["compiled"] = bool(model.timings["compiled"])
        _finish(model, diagnose(model).to_dict(), training, gate, job, brand, market, result)
    except Exception as exc:  # any failure becomes this market's status row
        _fail(result, job, brand, market, exc)


def sample_block(rows: pd.DataFrame, job: TrainJob) -> pd.DataFrame:
    """Stage 1 of a brand model: one block of its chains (the rows' ``first_chain`` and ``chains``), sampled
    over the brand's rows; one ``SAMPLE_SCHEMA`` row whatever happens.

    Every block prepares the same markets from the same rows, so the blocks agree on which markets are
    left out (with the reason) and on each market's scaling. Fewer than two valid markets: ``pooled`` is
    false and nothing is sampled (each market is fitted on its own in stage 2). Nothing is tracked here:
    a retried task only samples again. The joint fit uses the job's training settings; a market's own
    ``training`` override cannot apply to it (its gate override does).
    """
    start = time.perf_counter()
    compilations_before = fitting.COMPILE_COUNT["count"]
    brand = str(rows["brand"].iloc[0])
    block = ChainBlock(int(rows["first_chain"].iloc[0]), int(rows["chains"].iloc[0]))
    row: dict = {"brand": brand, "chain_block": int(rows["chain_block"].iloc[0]), "first_chain": block.first}
    row.update(chains=block.count, pooled=False, worker=f"pid {os.getpid()}")
    try:
        brand_config = BrandConfig.model_validate(job.brands[brand])
        spec = brand_config.spec()
        settings = TrainingSettings.model_validate(job.training).fit_settings()
        frames, failed = {}, {}
        for market, part in rows.groupby("market", sort=True):
            try:
                frames[str(market)] = market_frame(part, brand_config, spec.date_column, spec.target.column)
            except Exception as exc:  # this market's rows only: the others still train
                failed[str(market)] = f"{type(exc).__name__}: {exc}"
        overridden = sorted(m for m in frames if job.overrides.get(f"{brand}/{m}", {}).get("training"))
        if overridden:
            log.warning("%s: training overrides of %s do not apply to the joint brand fit", brand, overridden)
        tests = {m: lift_tests_for(job, brand, m, frame, spec.date_column) for m, frame in frames.items()}
        for market in frames:
            inject_test_fault(job, brand, market)
        try:
            prepared = prepare_brand(
                spec,
                frames,
                settings,
                brand=brand,
                lift_tests={m: found for m, found in tests.items() if found is not None},
                allow_target_gaps=True,
            )
        except TooFewMarketsError:  # one valid market: its independent model is the brand model
            prepared = None
        if prepared is not None:
            run = sample_brand(prepared, settings, block)
            failed.update({m: f"{DataError.__name__}: {reason}" for m, reason in prepared.failed.items()})
            kept = {m: {"scaling": p.scaling.to_dict()} for m, p in prepared.markets.items()}
            row.update(posterior=chains.to_bytes(run.idata), pooled=True, sampler_seconds=run.seconds)
            row.update(
                compiled=run.compiled, markets=json.dumps({**kept, **{m: {"error": e} for m, e in failed.items()}})
            )
    except Exception as exc:  # the block cannot be sampled: the brand's markets fail with this reason
        row["error"] = f"{type(exc).__name__}: {exc}"
    row["compilations"] = fitting.COMPILE_COUNT["count"] - compilations_before
    row["wall_seconds"] = time.perf_counter() - start
    return pd.DataFrame([[row.get(c) for c in SAMPLE_COLUMNS]], columns=SAMPLE_COLUMNS, dtype=object)


def finish_market(rows: pd.DataFrame, shipped: pd.DataFrame, job: TrainJob) -> pd.DataFrame:
    """Stage 2 of a brand model: one market's status row from what the driver shipped for it (``SHIPPED_SCHEMA``).

    ``pooled``: the market's view of the merged posterior is gated, reviewed, summarised and tracked, its
    diagnostics carrying the brand-level parameters' worst R-hat and ESS (so a brand model that did not
    converge fails every market's gate). ``independent``: the market is fitted on its own. ``failed``:
    the market gets the reason (left out of the brand model, or the brand's sampling failed).
    """
    if shipped.empty:  # the driver ships every market it has rows of; a status row all the same
        shipped = pd.DataFrame([{"posterior": None, "context": json.dumps({"mode": "failed", "error": NOTHING})}])
    context = json.loads(shipped["context"].iloc[0])
    if context["mode"] == "independent":
        return train_group(rows, job)
    start = time.perf_counter()
    brand, market = str(rows["brand"].iloc[0]), str(rows["market"].iloc[0])
    result = initial_result(rows, job, brand, market)
    try:
        if context["mode"] == "failed":
            _failed(result, job, brand, market, context["error"])
        elif not _reuse_registered(job, brand, market, result):
            _finish_view(rows, shipped["posterior"].iloc[0], context, job, brand, market, result)
    except Exception as exc:  # any failure becomes this market's status row
        _fail(result, job, brand, market, exc)
    result.update(worker=context.get("worker", result["worker"]), compilations=context.get("compilations", 0))
    result["total_seconds"] = context.get("sampling_seconds", 0.0) + time.perf_counter() - start
    return result_frame([result])


NOTHING = "the training driver shipped nothing for this market"


def _finish_view(
    rows: pd.DataFrame, posterior: bytes, context: dict, job: TrainJob, brand: str, market: str, result: dict
) -> None:
    """Prepare the market as its brand's sampling did (same rows, its shipped scaling), read it from its slice
    of the merged posterior, then gate, summarise and track it."""
    brand_config = BrandConfig.model_validate(job.brands[brand])
    spec = brand_config.spec()
    _, gate = settings_for(job, brand, market)
    training = TrainingSettings.model_validate(job.training)  # the joint fit's settings, as sampled
    settings = training.fit_settings()
    frame = market_frame(rows, brand_config, spec.date_column, spec.target.column)
    tests = lift_tests_for(job, brand, market, frame, spec.date_column)
    scaling = ScalingFactors.from_dict(context["scaling"])
    prepared = prepare_market(spec, frame, settings, scaling, market, tests, True, None)
    timings = context["timings"]
    model = market_view(spec, chains.from_bytes(posterior), prepared, settings, market, f"{brand}/{market}", timings)
    result["fit_seconds"] = timings["wall_s"] / timings["markets"]  # the market's share
    result["compiled"] = bool(timings["compiled"])
    diagnostics = diagnose(model).to_dict()
    shared = context["brand_diagnostics"]
    diagnostics["max_rhat"] = max(diagnostics["max_rhat"], shared["max_rhat"])
    diagnostics["min_ess_bulk"] = min(diagnostics["min_ess_bulk"], shared["min_ess_bulk"])
    summary = pd.read_json(io.StringIO(context["brand_summary"]), orient="split")
    pooled_with = PooledWith(markets=context["pooled_markets"], brand_summary=summary)
    _finish(model, diagnostics, training, gate, job, brand, market, result, pooled_with)


def _finish(
    model: FittedModel,
    diagnostics: dict,
    training: TrainingSettings,
    gate: GateSettings,
    job: TrainJob,
    brand: str,
    market: str,
    result: dict,
    pooled_with: PooledWith | None = None,
) -> None:
    """Gate, review, summarise and track one fitted market; fills ``result``.

    The review adds the predictive groups to the model's InferenceData (saved with the version). A FAIL
    verdict (a gate failure included) rejects the version; REVIEW registers it as ``status`` success
    with ``review_verdict`` REVIEW, which promotion never makes champion by itself.
    """
    clock = time.perf_counter()
    checks = evaluate_gate(diagnostics, gate)
    draws = analysis.channel_metric_draws(model, max_draws=SUMMARY_DRAWS)
    metrics = analysis.summarise_metric_draws(draws)
    champion, why_none = current_champion(job, brand, market)
    review = review_model(
        model, diagnostics, checks, draws, review_settings_for(job, brand, market), champion, why_none
    )
    result["summary_seconds"] = time.perf_counter() - clock
    for key in ("max_rhat", "min_ess_bulk", "r2_train", "mape_train", "wape_train", "r2_holdout"):
        result[key] = diagnostics[key]
    result.update(mape_holdout=diagnostics["mape_holdout"], wape_holdout=diagnostics["wape_holdout"])
    result["divergences"] = int(diagnostics["divergences"])
    result["gate"] = json.dumps({c.name: c.describe() for c in checks})
    result["summaries"] = json.dumps(summary_rows(metrics))
    by_name = {c.name: c for c in review}
    result.update(
        review_verdict=worst(review),
        review=review_json(review),
        elpd_loo=by_name["psis_loo"].details["elpd_loo"],
        p_loo=by_name["psis_loo"].details["p_loo"],
        elpd_diff_champion=by_name["versus_champion"].value,
    )
    failed = [c for c in review if c.verdict == FAIL]
    outcome = {"status": "rejected" if failed else "success", "error": None}
    if failed:
        outcome["error"] = ("gate: " if failures(checks) else "review: ") + "; ".join(
            f"{c.name} {c.describe()}" for c in failed
        )
    clock = time.perf_counter()
    summary = analysis.widen_channel_metrics(model, metrics)
    record = recorded({**result, **outcome})  # saved with the run, for a retry to reuse
    run_id, version = track(
        model, diagnostics, checks, summary, training, job, brand, market, pooled_with, record, review
    )
    result["tracking_seconds"] = time.perf_counter() - clock
    result.update(mlflow_run_id=run_id, model_version=version, **outcome)


def _fail(result: dict, job: TrainJob, brand: str, market: str, exc: Exception) -> None:
    _failed(result, job, brand, market, f"{type(exc).__name__}: {exc}")


def _failed(result: dict, job: TrainJob, brand: str, market: str, error: str) -> None:
    result["status"] = "failed"
    result["error"] = error
    track_failure(job, brand, market, error)


def summary_rows(metrics: pd.DataFrame) -> list[dict]:
    """Rows (channel, metric, mean, sd, hdi_low, hdi_high) of ``SUMMARY_METRICS`` for ``posterior_summaries``."""
    chosen = metrics[metrics["metric"].isin(SUMMARY_METRICS)]
    stats = ("mean", "sd", "hdi_low", "hdi_high")
    return [
        {"channel": row.channel, "metric": row.metric, **{s: _finite(getattr(row, s)) for s in stats}}
        for row in chosen.itertuples(index=False)
    ]


def _finite(value: float) -> float | None:
    return None if pd.isna(value) else float(value)
