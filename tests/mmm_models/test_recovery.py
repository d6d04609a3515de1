"""The model recovers known truth: simulated markets (reduced size) and the reference data.

These fit real posteriors and so are marked ``slow``; they run in the default suite.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmm_models import analysis
from mmm_models.diagnostics import diagnose
from mmm_models.fitted import fit
from mmm_models.fitting import FitSettings
from mmm_models.simulator import SimulationConfig, simulate_market, simulation_spec

pytestmark = pytest.mark.slow


def test_recovery_on_simulated_markets() -> None:
    """4 markets x 3 channels, 104 weeks, 2 chains x 500 draws.

    With correct 90% intervals, the number of 12 intervals that cover the truth is Binomial(12, 0.9):
    P(covered <= 8) = 2.6%, so requiring >= 9 fails a calibrated model rarely and a broken one
    (say 60% coverage) most of the time. The relative-error bound is the issue's 15% at full size,
    widened to 25% for two-thirds of the history and 3 channels that each carry more noise.
    """
    config = SimulationConfig(weeks=104, channels=("tv", "search", "social"))
    spec = simulation_spec(config)
    settings = FitSettings(chains=2, draws=500, tune=500, seed=7)
    rows = []
    for seed in range(4):
        market = simulate_market(config, seed=100 + seed)
        model = fit(spec, market.data, settings, market=f"sim{seed}")
        assert diagnose(model).divergences == 0
        summary = analysis.channel_summary(model, max_draws=1000).set_index("channel")
        for channel, truth in market.truth.roas.items():
            row = summary.loc[channel]
            rows.append(
                {
                    "covered": row["roas_hdi_low"] <= truth <= row["roas_hdi_high"],
                    "relative_error": abs(row["roas_mean"] / truth - 1),
                }
            )
    table = pd.DataFrame(rows)
    assert table["covered"].sum() >= 9, table
    assert table["relative_error"].median() <= 0.25, table


def test_reference_example_recovers_known_truth(example_spec, example_frame) -> None:
    """Acceptance 1 of the model library: mmm_example with its reference structure, 4 x 1000 draws.

    Truth from ../shared/data/pymc_marketing/README.md.
    """
    model = fit(example_spec, example_frame, FitSettings(chains=4, draws=1000, tune=1000, seed=0))
    d = diagnose(model)
    assert d.divergences == 0 and d.max_rhat <= 1.01 and d.min_ess_bulk >= 400
    hdi = model.summary(["adstock_geometric_alpha", "saturation_logistic_lam"])
    assert hdi.loc["adstock_geometric_alpha[x1]", "hdi_5%"] <= 0.4 <= hdi.loc["adstock_geometric_alpha[x1]", "hdi_95%"]
    assert hdi.loc["saturation_logistic_lam[x1]", "hdi_5%"] <= 4.0 <= hdi.loc["saturation_logistic_lam[x1]", "hdi_95%"]
    shares = analysis.channel_summary(model).set_index("channel")
    for channel, truth in {"x1": 0.2905, "x2": 0.0697}.items():
        assert (
            shares.loc[channel, "contribution_share_hdi_low"]
            <= truth
            <= shares.loc[channel, "contribution_share_hdi_high"]
        )
    roas = shares["roas_mean"].to_numpy()
    np.testing.assert_allclose(roas, [4967.8, 2274.9], rtol=0.1)
