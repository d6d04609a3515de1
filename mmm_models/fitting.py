"""Fitting: three NUTS samplers behind one function, with a compile-once cache per model structure.

- ``numpyro`` (default): numpyro's NUTS kernel (dense mass matrix) over the model's log density,
  jaxified from PyMC with the market's data as *arguments*. One jitted function per structure serves
  every market of the same padded length; chains run in parallel on the host devices.
- ``nutpie``: the model compiled once with numba (a brand model with JAX); other markets go through
  ``with_data``. Brand models adapt a low-rank modified mass matrix (their pooled parameters are
  correlated).
- ``pymc``: PyMC's own NUTS; PyTensor's on-disk C cache avoids recompiling across fits.

A market's fit therefore pays only for sampling once its structure has been compiled in the process.
"""

from __future__ import annotations

import logging
import time
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

    devices = _parallel_devices(settings)

    def per_device(keys: Any, z0: dict[str, Any], data: tuple[Any, ...]) -> Any:
        # Chains on one device run one after another: on a CPU core that costs the same as
        # vectorising them, and avoids tracing NUTS's while loops through vmap's batching rules.
        return jax.lax.map(lambda chain: run_chain(chain[0], chain[1], data), (keys, z0))

    run = jax.pmap(per_device, in_axes=(0, 0, None)) if devices > 1 else jax.jit(per_device)

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
    import jax

    key = (
        "numpyro",
        *_structure(spec, design, lift),
        settings.chains,
        settings.draws,
        settings.tune,
        settings.target_accept,
        settings.cores,
    )
    start = time.perf_counter()
    compiled: _CompiledJax | None = _CACHE.get(key)
    if compiled is None:
        log.info("building sampler for model structure %s (once per process)", spec.structure_key())
        compiled = _CACHE[key] = _compile_numpyro(spec, design, settings, lift)
    data_values = model_data(spec, design, lift)
    data = tuple(np.asarray(data_values[name], dtype=float) for name in compiled.data_names)
    shape = tuple(a.shape for a in data)
    first_time = shape not in compiled.shapes_seen
    if first_time:
        COMPILE_COUNT["count"] += 1
        log.info("compiling for %d weeks (first of this length)", data_values["mask"].shape[-1])

    run, devices = compiled.run, compiled.devices
    chains = settings.chains
    inits = [compiled.initial_point(settings.seed * 1000 + c) for c in range(chains)]
    z0 = {n: np.stack([np.asarray(p[n], dtype=float) for p in inits]) for n in compiled.value_names}
    keys = jax.random.split(jax.random.PRNGKey(settings.seed), chains)
    if devices > 1:
        z0 = {n: v.reshape((devices, chains // devices, *v.shape[1:])) for n, v in z0.items()}
        keys = keys.reshape((devices, chains // devices, *keys.shape[1:]))
    z, stats = jax.block_until_ready(run(keys, z0, data))
    compiled.shapes_seen.add(shape)

    flat_z = {
        n: np.asarray(v).reshape((chains * settings.draws, *np.asarray(v).shape[3 if devices > 1 else 2 :]))
        for n, v in z.items()
    }
    outputs = compiled.postprocess(flat_z, *data)
    posterior = {
        name: np.asarray(value).reshape((chains, settings.draws, *np.asarray(value).shape[1:]))
        for name, value in zip(compiled.output_names, outputs, strict=True)
    }
    diverging, num_steps, energy, accept, potential = (np.asarray(s).reshape(chains, settings.draws) for s in stats)
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
    return SamplerRun(idata=idata, compiled=first_time, seconds=time.perf_counter() - start)


# --- nutpie ------------------------------------------------------------------------------------


def _sample_nutpie(
    spec: ModelSpec, design: Design | BrandDesign, settings: FitSettings, lift: LiftDesign | BrandLift | None
) -> SamplerRun:
    import nutpie

    key = ("nutpie", *_structure(spec, design, lift))
    start = time.perf_counter()
    compiled_model = _CACHE.get(key)
    first_time = compiled_model is None
    if first_time:
        brand = isinstance(design, BrandDesign)
        log.info(
            "compiling model structure %s with %s (once per process)", spec.structure_key(), "JAX" if brand else "numba"
        )
        model = build_model(spec, design, lift)
        if brand:
            # A brand's log density is one vectorised program over its markets, which XLA compiles
            # quickly and runs on any JAX device: on the 40 Meridian geos numba took 283 s to
            # compile it and JAX 9 s (load average 11 on 2 cores). Every market count is a new
            # structure, so this is paid once per brand size and worker.
            backend.configure()
            compiled_model = nutpie.compile_pymc_model(
                model,
                backend="jax",
                gradient_backend="jax",
                freeze_model=False,  # data stay swappable
            )
        else:
            compiled_model = nutpie.compile_pymc_model(model)
        _CACHE[key] = compiled_model
        COMPILE_COUNT["count"] += 1
    data = model_data(spec, design, lift)
    if isinstance(design, BrandDesign):  # on the JAX device once, not copied at every gradient
        import jax.numpy as jnp

        data = {name: jnp.asarray(value) for name, value in data.items()}
    runnable = compiled_model.with_data(**data)
    sampler = nutpie.sample(
        runnable,
        chains=settings.chains,
        draws=settings.draws,
        tune=settings.tune,
        seed=settings.seed,
        cores=settings.cores or backend.usable_cores(),
        target_accept=settings.target_accept,
        progress_bar=False,
        # A brand model's market offsets, spreads and brand means are correlated, which a diagonal
        # mass matrix cannot follow: measured on a simulated 8-market brand, diagonal adaptation left
        # R-hat 1.03 and bulk ESS 145 (2000 tuning steps: 1.05 / 108); the low-rank update gave
        # 1.01 / 573 for 1.4x the sampling time.
        low_rank_modified_mass_matrix=isinstance(design, BrandDesign),
        blocking=False,
    )
    idata = _wait_logging_progress(sampler, settings.chains * (settings.tune + settings.draws))
    return SamplerRun(idata=idata, compiled=first_time, seconds=time.perf_counter() - start)


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
