"""Chain blocks: cut, seeded, merged (shape, chain numbering, values) and shipped as netCDF bytes."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from mmm_models.chains import (
    ChainBlock,
    brand_level_diagnostics,
    brand_level_summary,
    chain_blocks,
    from_bytes,
    market_slice,
    merge_chain_blocks,
    to_bytes,
)

MARKETS = ["DE", "FR", "US"]


def block(first: int, count: int, draws: int = 50, seed: int = 0) -> az.InferenceData:
    """A block of ``count`` chains numbered from ``first``: a brand-level, a market-level parameter and stats."""
    rng = np.random.default_rng(seed)
    chains = list(range(first, first + count))
    posterior = az.from_dict(
        posterior={
            "effect_sd": rng.normal(size=(count, draws)),
            "channel_effect": rng.normal(size=(count, draws, len(MARKETS), 2)),
        },
        sample_stats={"diverging": rng.random((count, draws)) < 0.1, "tree_depth": rng.integers(1, 6, (count, draws))},
        coords={"chain": chains, "market": MARKETS, "channel": ["tv", "search"]},
        dims={"channel_effect": ["market", "channel"]},
    )
    return posterior


def test_chains_are_cut_into_near_equal_blocks_with_their_own_seeds() -> None:
    assert chain_blocks(4, 2) == [ChainBlock(0, 2), ChainBlock(2, 2)]
    assert chain_blocks(5, 2) == [ChainBlock(0, 3), ChainBlock(3, 2)]
    assert chain_blocks(2, 8) == [ChainBlock(0, 1), ChainBlock(1, 1)]  # never an empty block
    assert chain_blocks(4, 1) == [ChainBlock(0, 4)]
    # the block of chain 0 keeps the configured seed (one block samples as an unsplit run); the others differ
    seeds = [b.seed(7) for b in chain_blocks(8, 8)]
    assert seeds[0] == 7 and len(set(seeds)) == 8 and all(0 <= s < 2**31 for s in seeds)
    assert ChainBlock(3, 1).seed(7) == ChainBlock(3, 2).seed(7)  # by the first chain, reproducibly
    with pytest.raises(ValueError):
        chain_blocks(4, 0)


def test_merged_blocks_hold_each_blocks_draws_renumbered_in_order() -> None:
    first, second = block(0, 2, seed=1), block(2, 1, seed=2)
    merged = merge_chain_blocks([first, second])
    assert dict(merged.posterior.sizes) == {"chain": 3, "draw": 50, "market": 3, "channel": 2}
    assert list(merged.posterior.chain.values) == [0, 1, 2]
    assert list(merged.sample_stats.chain.values) == [0, 1, 2]
    for group in ("posterior", "sample_stats"):
        for name, values in getattr(merged, group).data_vars.items():
            np.testing.assert_array_equal(values.isel(chain=slice(0, 2)).values, getattr(first, group)[name].values)
            np.testing.assert_array_equal(values.isel(chain=slice(2, 3)).values, getattr(second, group)[name].values)
    # chain labels of the blocks do not matter, only their order
    relabelled = merge_chain_blocks([block(5, 2, seed=1), block(0, 1, seed=2)])
    np.testing.assert_array_equal(relabelled.posterior.channel_effect.values, merged.posterior.channel_effect.values)
    with pytest.raises(ValueError, match="draws"):
        merge_chain_blocks([block(0, 1, draws=50), block(1, 1, draws=40)])


def test_blocks_travel_as_netcdf_bytes_and_markets_as_slices() -> None:
    merged = merge_chain_blocks([block(0, 2, seed=1), block(2, 2, seed=2)])
    back = from_bytes(to_bytes(merged))
    for group in ("posterior", "sample_stats"):
        for name, values in getattr(merged, group).data_vars.items():
            np.testing.assert_array_equal(getattr(back, group)[name].values, values.values)
    assert back.sample_stats.diverging.dtype == bool
    fr = from_bytes(to_bytes(market_slice(merged, "FR")))
    assert list(fr.posterior.market.values) == ["FR"] and "effect_sd" in fr.posterior
    np.testing.assert_array_equal(
        fr.posterior.channel_effect.sel(market="FR").values, merged.posterior.channel_effect.sel(market="FR").values
    )
    # the brand-level parameters' diagnostics come from the merged chains
    summary = brand_level_summary(merged)
    assert list(summary.index) == ["effect_sd"]
    assert brand_level_diagnostics(summary)["max_rhat"] == pytest.approx(summary["r_hat"].iloc[0])
