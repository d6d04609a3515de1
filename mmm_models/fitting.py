"""Fitting: three NUTS samplers behind one function, with a compile-once cache per model structure.

- ``numpyro`` (default): numpyro's NUTS kernel (dense mass matrix) over the model's log density,
  jaxified from PyMC with the market's data as *arguments*. One jitted function per structure serves
  every market of the same padded length; chains run in parallel on the host devices.
- ``nutpie``: the model compiled once with numba, other markets going through ``with_data``; a brand
  model compiled with JAX for its brand's data. It adapts a low-rank modified mass matrix (the
  parameters are correlated).
- ``pymc``: PyMC's own NUTS; PyTensor's on-disk C cache avoids recompiling across fits.

A market's fit therefore pays only for sampling once its structure has been compiled in the process.
"""

from __future__ import annotations

import hashlib
import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal

import arviz as az
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mmm_models import backend
from mmm_models import constants as C
from mmm_models.data import Design
from mmm_models.equations import ChannelLayout
from mmm_models.hierarchy import BrandDesign, BrandLift
from mmm_models.lift import LiftDesign
from mmm_models.model import build_model, model_coords, model_data
from mmm_models.spec import ModelSpec

log = logging.getLogger(__name__)

SamplerName = Literal["numpyro", "nutpie", "pymc"]


class FitSettings(BaseModel):
    """Sampler settings; the defaults give reliable diagnostics for a weekly MMM."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sampler: SamplerName = "numpyro"
    chains: int = Field(default=4, ge=1)
    draws: int = Field(default=1000, ge=10)
    tune: int = Field(default=1000, ge=10)
    target_accept: float = Field(default=0.9, gt=0.5, lt=1.0)
    seed: int = 0
    cores: int | None = Field(default=None, ge=1, description="parallel chains; default: all cores")
    holdout_weeks: int = Field(default=0, ge=0, description="last weeks left out of the fit, for validation")
    # numpyro: how one device runs its lanes (chains x markets). ``vectorised`` steps them together (vmap),
    # which a GPU needs; ``sequential`` runs them one after another (lax.map), which a CPU core prefers:
    # there a lane's gradient costs about as much vectorised as alone, and lock-stepped lanes wait for the
    # deepest tree (benchmarks/batch_size.py). ``auto``: sequential on a CPU, vectorised on an accelerator.
    lanes: Literal["auto", "vectorised", "sequential"] = "auto"


@dataclass
class SamplerRun:
    """What one sampling call produced."""

    idata: az.InferenceData
    compiled: bool  # True when this call paid for compilation (then ``seconds`` includes it)
    seconds: float


@dataclass
class _CompiledJax:
    """One model structure's jitted sampler and what is needed to turn its output into a posterior."""

    run: Any
    devices: int
    postprocess: Any
    initial_point: Any
    value_names: list[str]
    output_names: list[str]
    dims: dict[str, list[str]]
    coords: dict[str, list[str]]
    data_names: list[str]
    shapes_seen: set[tuple[int, ...]] = field(default_factory=set)


_CACHE: dict[tuple[Any, ...], Any] = {}
COMPILE_COUNT = {"count": 0}  # compilations in this process, for benchmarks and tests


def sample(
    spec: ModelSpec, design: Design | BrandDesign, settings: FitSettings, lift: LiftDesign | BrandLift | None = None
) -> SamplerRun:
    """Sample the posterior of ``spec`` on ``design`` (and lift tests) with the chosen sampler.

    A ``BrandDesign`` samples the brand's hierarchical model; its compiled form is shared by every
    brand with the same structure and number of markets, and the markets' names are set afterwards.
    """
    runner = {"numpyro": _sample_numpyro, "nutpie": _sample_nutpie, "pymc": _sample_pymc}[settings.sampler]
    run = runner(spec, design, settings, lift)
    if isinstance(design, BrandDesign):
        run.idata = run.idata.assign_coords({C.MARKET: design.markets}, groups="posterior")
    return run


def _structure(spec: ModelSpec, design: Design | BrandDesign, lift: LiftDesign | BrandLift | None) -> tuple[Any, ...]:
    """What decides the compiled graph: the spec's structure, the unit, and whether lift tests enter."""
    unit = ("brand", len(design.markets)) if isinstance(design, BrandDesign) else ("market",)
    return (spec.structure_key(), *unit, lift is not None)


# --- numpyro -----------------------------------------------------------------------------------


def _compile_numpyro(
    spec: ModelSpec, design: Design | BrandDesign, settings: FitSettings, lift: LiftDesign | BrandLift | None
) -> _CompiledJax:
    """One structure's sampler over *lanes*: every lane is one chain of one unit (a market, or a brand),
    with that unit's data as its own arguments, so a batch of markets samples in one compiled call."""
    backend.configure()  # before JAX starts and before pymc.sampling.jax rewrites XLA_FLAGS
    import jax
    from numpyro.infer.hmc import hmc
    from pymc.initial_point import make_initial_point_fn
    from pymc.sampling.jax import get_jaxified_graph
    from pytensor.graph.replace import clone_replace

    model = build_model(spec, design, lift)
    data_vars = list(model.data_vars)
    data_inputs = [v.type() for v in data_vars]
    for var, inp in zip(data_vars, data_inputs, strict=True):
        inp.name = var.name
    replace = dict(zip(data_vars, data_inputs, strict=True))
    value_vars = model.value_vars
    # One jaxified graph gives the log density (output 0) and the posterior's constrained values
    # and deterministics (the rest): one PyTensor rewrite pass instead of two. It is jitted on its
    # own, so NUTS traces it once and XLA drops the outputs a caller does not use.
    outputs = clone_replace([model.logp(), *model.unobserved_value_vars], replace)
    graph_fn = jax.jit(get_jaxified_graph(inputs=value_vars + data_inputs, outputs=outputs))
    value_names = [v.name for v in value_vars]

    def potential_gen(*data: Any) -> Any:
        def potential(z: dict[str, Any]) -> Any:
            return -graph_fn(*[z[n] for n in value_names], *data)[0]

        return potential

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")
    tune, draws = settings.tune, settings.draws

    def run_chain(key: Any, z0: dict[str, Any], data: tuple[Any, ...]) -> Any:
        state = init_kernel(
            z0,
            num_warmup=tune,
            model_args=data,
            rng_key=key,
            target_accept_prob=settings.target_accept,
            dense_mass=True,
        )

        def step(state: Any, _: Any) -> tuple[Any, Any]:
            state = sample_kernel(state, model_args=data)
            stats = (state.diverging, state.num_steps, state.energy, state.accept_prob, state.potential_energy)
            return state, (state.z, stats)

        _, trace = jax.lax.scan(step, state, None, length=tune + draws)
        return jax.tree.map(lambda a: a[tune:], trace)

    # Devices (one per core on a CPU) take equal shares of the lanes; see ``FitSettings.lanes`` for how
    # a device runs its share.
    vectorised = settings.lanes == "vectorised" or (settings.lanes == "auto" and jax.default_backend() != "cpu")

    def lanes(keys: Any, z0: dict[str, Any], data: tuple[Any, ...]) -> Any:
        if vectorised:
            return jax.vmap(run_chain)(keys, z0, data)
        return jax.lax.map(lambda lane: run_chain(*lane), (keys, z0, data))

    devices = _parallel_devices(settings)
    run = jax.pmap(lanes) if devices > 1 else jax.jit(lanes)

    def postprocess(z: dict[str, Any], *data: Any) -> list[Any]:
        return graph_fn(*[z[n] for n in value_names], *data)[1:]

    layout = ChannelLayout.from_spec(spec)
    dims = {name: list(d) for name, d in model.named_vars_to_dims.items()}
    return _CompiledJax(
        run=run,
        devices=devices,
        postprocess=jax.jit(jax.vmap(postprocess, in_axes=(0,) + (None,) * len(data_vars))),
        initial_point=make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs), return_transformed=True),
        value_names=value_names,
        output_names=[v.name for v in model.unobserved_value_vars],
        dims=dims,
        coords=model_coords(spec, layout, design.markets if isinstance(design, BrandDesign) else None),
        data_names=[v.name for v in data_vars],
    )


def _parallel_devices(settings: FitSettings) -> int:
    """Devices to spread chains over: as many as allowed that divide the chains evenly."""
    available = min(backend.device_count(), settings.cores or backend.device_count())
    return max(d for d in range(1, available + 1) if settings.chains % d == 0)


def _sample_numpyro(
    spec: ModelSpec, design: Design | BrandDesign, settings: FitSettings, lift: LiftDesign | BrandLift | None
) -> SamplerRun:
    return _sample_numpyro_units(spec, [design], settings, [lift], [model_data(spec, design, lift)])[0]


def sample_batch(
    spec: ModelSpec,
    designs: list[Design],
    settings: FitSettings,
    lifts: list[LiftDesign | None] | None = None,
) -> list[SamplerRun]:
    """Sample several markets of one spec in as few compiled calls as their shapes allow (numpyro).

    Markets whose data arrays have the same shapes (the same padded history length and lift-test
    layout) share one call in which every market's chains are lanes of one NUTS (``FitSettings.lanes``); each
    market keeps its own data, initial points, step size and mass matrix, so its posterior is the
    one a fit of that market alone gives (up to the random numbers). ``seconds`` is the call's time
    shared equally by its markets. Results come back in the order of ``designs``.
    """
    if settings.sampler != "numpyro":
        raise ValueError(f"batched fitting needs the numpyro sampler, not {settings.sampler!r}")
    lifts = lifts or [None] * len(designs)
    arrays = [model_data(spec, design, lift) for design, lift in zip(designs, lifts, strict=True)]
    by_shape: dict[tuple[Any, ...], list[int]] = {}
    for index, unit in enumerate(arrays):
        by_shape.setdefault(tuple(sorted((name, np.shape(value)) for name, value in unit.items())), []).append(index)
    runs: list[SamplerRun | None] = [None] * len(designs)
    for indices in by_shape.values():
        group = _sample_numpyro_units(
            spec, [designs[i] for i in indices], settings, [lifts[i] for i in indices], [arrays[i] for i in indices]
        )
        for index, run in zip(indices, group, strict=True):
            runs[index] = run
    return runs  # type: ignore[return-value]


def _sample_numpyro_units(
    spec: ModelSpec,
    designs: list[Design] | list[BrandDesign],
    settings: FitSettings,
    lifts: list[LiftDesign | None] | list[BrandLift | None],
    per_unit: list[dict[str, np.ndarray]],
) -> list[SamplerRun]:
    """Sample units (markets of one shape, or one brand) as lanes of one compiled call: units x chains.
    ``per_unit`` holds each unit's data arrays (``model_data``)."""
    import jax

    units, chains, draws = len(designs), settings.chains, settings.draws
    lane_count = units * chains
    key = (
        "numpyro",
        *_structure(spec, designs[0], lifts[0]),
        chains,
        draws,
        settings.tune,
        settings.target_accept,
        settings.cores,
        settings.lanes,
    )
    start = time.perf_counter()
    compiled: _CompiledJax | None = _CACHE.get(key)
    if compiled is None:
        log.info("building sampler for model structure %s (once per process)", spec.structure_key())
        compiled = _CACHE[key] = _compile_numpyro(spec, designs[0], settings, lifts[0])
    data = [np.stack([np.asarray(u[name], dtype=float) for u in per_unit]) for name in compiled.data_names]
    shape = tuple(a.shape for a in data)
    first_time = shape not in compiled.shapes_seen
    if first_time:
        COMPILE_COUNT["count"] += 1
        log.info("compiling for %d unit(s) of %d weeks (first of this shape)", units, per_unit[0]["mask"].shape[-1])

    # Lane u * chains + c is chain c of unit u, with the seeds a single-unit fit would use.
    lane_data = tuple(np.repeat(a, chains, axis=0) for a in data)
    inits = [compiled.initial_point(settings.seed * 1000 + c) for _ in range(units) for c in range(chains)]
    z0 = {n: np.stack([np.asarray(p[n], dtype=float) for p in inits]) for n in compiled.value_names}
    keys = np.tile(np.asarray(jax.random.split(jax.random.PRNGKey(settings.seed), chains)), (units, 1))
    devices = compiled.devices  # it divides the chains, so the lanes too
    arguments = (keys, z0, lane_data)
    if devices > 1:
        arguments = jax.tree.map(lambda a: a.reshape((devices, lane_count // devices, *a.shape[1:])), arguments)
    z, stats = jax.block_until_ready(compiled.run(*arguments))
    compiled.shapes_seen.add(shape)
    z = {
        n: np.asarray(v).reshape((units, chains, draws, *np.asarray(v).shape[(3 if devices > 1 else 2) :]))
        for n, v in z.items()
    }
    stats = [np.asarray(s).reshape(units, chains, draws) for s in stats]
    seconds = (time.perf_counter() - start) / units
    runs = []
    for unit in range(units):
        flat_z = {n: v[unit].reshape((chains * draws, *v.shape[3:])) for n, v in z.items()}
        outputs = compiled.postprocess(flat_z, *(a[unit] for a in data))
        posterior = {
            name: np.asarray(value).reshape((chains, draws, *np.asarray(value).shape[1:]))
            for name, value in zip(compiled.output_names, outputs, strict=True)
        }
        diverging, num_steps, energy, accept, potential = (s[unit] for s in stats)
        sample_stats = {
            "diverging": diverging.astype(bool),
            "n_steps": num_steps,
            "tree_depth": np.floor(np.log2(num_steps)).astype(int) + 1,
            "energy": energy,
            "acceptance_rate": accept,
            "lp": -potential,
        }
        idata = az.from_dict(
            posterior=posterior,
            sample_stats=sample_stats,
            coords=compiled.coords,
            dims={k: v for k, v in compiled.dims.items() if k in posterior},
        )
        runs.append(SamplerRun(idata=idata, compiled=first_time, seconds=seconds))
    return runs


# --- nutpie ------------------------------------------------------------------------------------


def _sample_nutpie(
    spec: ModelSpec, design: Design | BrandDesign, settings: FitSettings, lift: LiftDesign | BrandLift | None
) -> SamplerRun:
    import nutpie

    brand = isinstance(design, BrandDesign)
    data = model_data(spec, design, lift)
    key = ("nutpie", *_structure(spec, design, lift), *((_digest(data),) if brand else ()))
    start = time.perf_counter()
    compiled_model = _CACHE.get(key)
    first_time = compiled_model is None
    with _single_precision() if brand else nullcontext():
        if first_time:
            log.info(
                "compiling model structure %s with %s",
                spec.structure_key(),
                "JAX in single precision (once per brand and process)" if brand else "numba (once per process)",
            )
            if brand:
                for other in [k for k in _CACHE if k[0] == "nutpie" and k[2] == "brand"]:
                    del _CACHE[other]  # one brand's compiled model at a time: each holds its data
                compiled_model = _compile_brand(spec, design, lift)
            else:
                compiled_model = nutpie.compile_pymc_model(build_model(spec, design, lift))
            _CACHE[key] = compiled_model
            COMPILE_COUNT["count"] += 1
        runnable = compiled_model if brand else compiled_model.with_data(**data)
        sampler = nutpie.sample(
            runnable,
            chains=settings.chains,
            draws=settings.draws,
            tune=settings.tune,
            seed=settings.seed,
            cores=settings.cores or backend.usable_cores(),
            target_accept=settings.target_accept,
            progress_bar=False,
            # The low-rank update follows correlated parameters, which a diagonal mass matrix cannot. A
            # brand model's market offsets, spreads and brand means: on a simulated 8-market brand,
            # diagonal adaptation left R-hat 1.03 and bulk ESS 145 (2000 tuning steps: 1.05 / 108), the
            # low-rank update gave 1.01 / 573 for 1.4x the sampling time. A market's channel effects,
            # adstock and saturation: on 10 simulated 5-channel, 156-week markets (4 x 1000 draws, 500
            # tuning steps) it halved the leapfrog steps per draw (25-33 -> 14-15) and cut the CPU time
            # by a quarter, every market converged (min bulk ESS 520 against 1008).
            low_rank_modified_mass_matrix=True,
            blocking=False,
        )
        idata = _wait_logging_progress(sampler, settings.chains * (settings.tune + settings.draws))
    if brand:  # every consumer computes in double precision (SciPy's SLSQP in the optimiser requires it)
        idata.posterior = idata.posterior.map(lambda draws: draws.astype("float64", copy=False), keep_attrs=True)
    return SamplerRun(idata=idata, compiled=first_time, seconds=time.perf_counter() - start)


def _compile_brand(spec: ModelSpec, design: BrandDesign, lift: BrandLift | None) -> Any:
    """A brand model's log density for nutpie, compiled with JAX for this brand's data (call it inside
    ``_single_precision``).

    A brand's log density is one vectorised program over its markets, which XLA compiles quickly
    and runs on any JAX device: on the 40 Meridian geos numba took 283 s to compile it and JAX 9 s
    (load average 11 on 2 cores). The data are frozen into the program as constants, so XLA folds
    what depends on data alone, and PyTensor's own gradient graph is used: on the 40 geos a log
    density and gradient took 0.57 ms against 1.1 ms with the data as arguments and JAX's gradient.
    A brand therefore compiles once per worker for its data, not once per structure.
    """
    import nutpie

    return nutpie.compile_pymc_model(
        build_model(spec, design, lift), backend="jax", gradient_backend="pytensor", freeze_model=True
    )


def _digest(data: dict[str, np.ndarray]) -> str:
    """A fingerprint of a model's data arrays (names, shapes, values), to key a compiled model that holds them."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(data):
        value = np.ascontiguousarray(data[name])
        digest.update(f"{name}{value.shape}{value.dtype}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


@contextmanager
def _single_precision() -> Iterator[None]:
    """Build, compile and sample a brand model in single precision, as Meridian samples.

    PyTensor builds the graph with ``floatX`` float32 and JAX traces it without 64-bit types (PyTensor's
    JAX linker also switches them off for a float32 graph); both settings are restored afterwards, for
    the double-precision work around it. On the 40 Meridian geos a gradient in nutpie took 1.8 ms of
    CPU against 2.8 ms in double precision (runs one after the other, load 8-15). The data are scaled
    to order one, nutpie keeps the energy and its adaptation in double precision, and
    ``tests/mmm_models/test_brand.py`` checks the log density and its gradient against double precision.
    """
    backend.configure()  # first: it switches 64-bit types on, once per process
    import jax
    import pytensor

    x64 = jax.config.jax_enable_x64
    try:
        with pytensor.config.change_flags(floatX="float32"), warnings.catch_warnings():
            # nutpie hands JAX its positions in float64, which JAX takes in float32 as asked; PyTensor's
            # C backend (nutpie's initial point only) has no BLAS in a pip install
            warnings.filterwarnings("ignore", "Explicitly requested dtype float64", UserWarning)
            warnings.filterwarnings("ignore", "PyTensor could not link to a BLAS", UserWarning)
            jax.config.update("jax_enable_x64", False)
            yield
    finally:
        jax.config.update("jax_enable_x64", x64)


PROGRESS_EVERY_S = 30.0


def _wait_logging_progress(sampler: Any, iterations: int, every: float = PROGRESS_EVERY_S) -> az.InferenceData:
    """Wait for nutpie's background ``sampler``, logging a line every ``every`` seconds: the
    iterations done over all chains (tuning included) and the divergences so far, so that a long fit
    (a large brand) shows that it is alive and how far it has come, in the CLI and the job's log."""
    start = time.perf_counter()
    while True:
        try:
            return sampler.wait(timeout=every)
        except TimeoutError:  # still sampling: it goes on in the background
            # The raw trace's row counts are cheap; nutpie's public inspect() converts the whole trace.
            _, stats = sampler._sampler.inspect().get_arrow_trace()
            done = sum(batch.num_rows for batch in stats)
            divergences = sum(sum(map(bool, batch.column("diverging").to_pylist())) for batch in stats)
            log.info(
                "sampling: %d of %d iterations (%.0f%%, tuning included), %d divergences, %.0f s",
                done, iterations, 100 * done / iterations, divergences, time.perf_counter() - start,
            )  # fmt: skip


# --- pymc --------------------------------------------------------------------------------------


def _sample_pymc(
    spec: ModelSpec, design: Design | BrandDesign, settings: FitSettings, lift: LiftDesign | BrandLift | None
) -> SamplerRun:
    import pymc as pm

    start = time.perf_counter()
    key = ("pymc", *_structure(spec, design, lift))
    model = _CACHE.get(key)
    first_time = model is None
    if first_time:
        model = _CACHE[key] = build_model(spec, design, lift)
        COMPILE_COUNT["count"] += 1
    with model:
        pm.set_data(model_data(spec, design, lift))
        idata = pm.sample(
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            cores=settings.cores or backend.usable_cores(),
            random_seed=settings.seed,
            target_accept=settings.target_accept,
            progressbar=False,
            compute_convergence_checks=False,
            mp_ctx="forkserver",  # JAX threads run in this process; a plain fork could deadlock
        )
    return SamplerRun(idata=idata, compiled=first_time, seconds=time.perf_counter() - start)
