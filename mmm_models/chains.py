"""Chain blocks: one model's chains sampled in separate processes (or Spark tasks), merged into one posterior.

NUTS chains adapt independently (nutpie's mass matrix and step size are per chain), so chains sampled
apart are statistically the chains sampled together. A ``ChainBlock`` is a run of the configured
chains; its seed is derived from the configured seed and the block's first chain, so a merged run is
reproducible for the same chains and blocks, and the block holding chain 0 keeps the configured seed
(one block samples exactly as an unsplit run). ``merge_chain_blocks`` concatenates the blocks along
``chain``, renumbered in order. Blocks travel as netCDF bytes (``to_bytes`` / ``from_bytes``), never
pickled. What is computed on the merged posterior of a brand model (the brand-level summary and diagnostics, one
market's slice) is here too. Only ArviZ, xarray and pandas: a Spark driver merges without loading PyTensor
or JAX.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

import arviz as az
import pandas as pd
import xarray as xr

from mmm_models.constants import MARKET

CHAIN = "chain"
GROUPS = ("posterior", "sample_stats")  # what a block carries: the draws and the sampler's statistics
_SEED_STEP = 0x9E3779B1  # odd, so distinct first chains give distinct seeds modulo 2**31
_SEED_RANGE = 2**31  # every sampler's seed type takes it (numpyro's PRNGKey, nutpie's u64, NumPy's)


@dataclass(frozen=True)
class ChainBlock:
    """Chains ``first`` .. ``first + count - 1`` of a run."""

    first: int
    count: int

    def seed(self, seed: int) -> int:
        """This block's sampler seed: the configured ``seed`` for the block of chain 0, a distinct one otherwise."""
        return (seed + self.first * _SEED_STEP) % _SEED_RANGE if self.first else seed

    @property
    def chains(self) -> list[int]:
        return list(range(self.first, self.first + self.count))


def chain_blocks(chains: int, tasks: int) -> list[ChainBlock]:
    """``chains`` cut into ``min(tasks, chains)`` contiguous blocks whose sizes differ by at most one."""
    if chains < 1 or tasks < 1:
        raise ValueError(f"chains ({chains}) and tasks ({tasks}) must be at least 1")
    parts = min(tasks, chains)
    size, extra = divmod(chains, parts)
    counts = [size + (i < extra) for i in range(parts)]
    return [ChainBlock(sum(counts[:i]), count) for i, count in enumerate(counts)]


def merge_chain_blocks(blocks: Sequence[az.InferenceData]) -> az.InferenceData:
    """One posterior of every block's chains, in the blocks' order, ``chain`` renumbered 0 .. n-1.

    Each block must hold the same variables and draws; its own chain labels are dropped. Only the
    groups every block has among ``GROUPS`` are kept.
    """
    if not blocks:
        raise ValueError("no chain blocks to merge")
    groups = [g for g in GROUPS if all(hasattr(block, g) for block in blocks)]
    merged = {}
    for group in groups:
        parts = [getattr(block, group) for block in blocks]
        draws = {part.sizes["draw"] for part in parts}
        if len(draws) > 1:
            raise ValueError(f"chain blocks differ in draws ({sorted(draws)}) in {group}")
        joined = xr.concat(parts, dim=CHAIN, coords="minimal", compat="override", combine_attrs="drop_conflicts")
        merged[group] = joined.assign_coords({CHAIN: range(joined.sizes[CHAIN])})
    return az.InferenceData(**merged)


def to_bytes(idata: az.InferenceData) -> bytes:
    """``idata`` (its ``GROUPS``) as the bytes of one netCDF file: a safe form to ship between processes."""
    kept = az.InferenceData(**{g: getattr(idata, g) for g in GROUPS if hasattr(idata, g)})
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "chains.nc")
        kept.to_netcdf(path, compress=False)
        with open(path, "rb") as file:
            return file.read()


def from_bytes(raw: bytes) -> az.InferenceData:
    """The ``InferenceData`` that ``to_bytes`` wrote, loaded into memory."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "chains.nc")
        with open(path, "wb") as file:
            file.write(raw)
        loaded = az.from_netcdf(path)
        loaded.load()
        return loaded


def brand_level_summary(idata: az.InferenceData) -> pd.DataFrame:
    """ArviZ summary (90% HDI) of the parameters without a market axis: pooled means, spreads, GP hyperparameters."""
    names = [v for v, da in idata.posterior.data_vars.items() if MARKET not in da.dims]
    return az.summary(idata, var_names=names, hdi_prob=0.9) if names else pd.DataFrame()


def brand_level_diagnostics(summary: pd.DataFrame) -> dict[str, float]:
    """Worst R-hat and bulk ESS in a ``brand_level_summary`` (a market's own diagnostics lack these)."""
    if summary.empty:
        return {"max_rhat": 1.0, "min_ess_bulk": float("inf")}
    return {"max_rhat": float(summary["r_hat"].max()), "min_ess_bulk": float(summary["ess_bulk"].min())}


def market_slice(idata: az.InferenceData, market: str) -> az.InferenceData:
    """What one market's view needs of a brand posterior: its own parameters (a market axis of length one),
    the brand-level ones, and the sampler statistics; the other markets' parameters are left behind."""
    kept = az.InferenceData(posterior=idata.posterior.sel({MARKET: [market]}))
    if hasattr(idata, "sample_stats"):
        kept.add_groups(sample_stats=idata.sample_stats)
    return kept
