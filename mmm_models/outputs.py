"""A fitted model's outputs on disk: the saved model, CSV tables and PNG plots, in one folder.

Used by ``mmm fit`` and by the training job, which logs the folder to MLflow.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from mmm_models import analysis, persistence, plots
from mmm_models.fitted import FittedModel


def write_outputs(
    model: FittedModel,
    summary: pd.DataFrame,
    folder: Path,
    curve_draws: int | None = 1000,
    roas_by_quarter: pd.DataFrame | None = None,
) -> None:
    """Saved model (``model/``), channel summary, decomposition, response and adstock curves, and plots.
    With time-varying channels, also their weekly multipliers and the ROAS and contributions by quarter
    (``roas_by_quarter``, when the caller has computed it already).

    ``curve_draws`` caps the posterior draws behind the response curves (a counterfactual per channel
    and spend level): the training job passes fewer, since there the curves are for reading, not for
    decisions (the optimizer recomputes them from the full posterior).
    """
    folder = Path(folder)
    persistence.save(model, folder / "model")
    decomposition = analysis.decomposition(model)
    curves = analysis.response_curves(model, max_draws=curve_draws)
    summary.to_csv(folder / "channel_summary.csv", index=False)
    decomposition.to_csv(folder / "decomposition.csv", index=False)
    curves.to_csv(folder / "response_curves.csv", index=False)
    analysis.adstock_curves(model).to_csv(folder / "adstock_curves.csv", index=False)
    figures = {
        "fit": plots.plot_fit(model, decomposition),
        "decomposition": plots.plot_decomposition(model, decomposition),
        "response_curves": plots.plot_response_curves(model, curves),
    }
    multipliers = analysis.channel_multipliers(model)
    if len(multipliers):
        multipliers.to_csv(folder / "channel_multipliers.csv", index=False)
        if roas_by_quarter is None:
            roas_by_quarter = analysis.roas_by_period(model, "QS", max_draws=curve_draws)
        roas_by_quarter.to_csv(folder / "roas_by_quarter.csv", index=False)
        figures["channel_multipliers"] = plots.plot_channel_multipliers(model, multipliers)
    for name, figure in figures.items():
        figure.savefig(folder / f"{name}.png", dpi=110)
        plt.close(figure)
