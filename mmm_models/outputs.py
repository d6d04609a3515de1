"""A fitted model's outputs on disk: the saved model, CSV tables and PNG plots, in one folder.

Used by ``mmm fit`` and by the training job, which logs the folder to MLflow.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from mmm_models import analysis, persistence, plots
from mmm_models.fitted import FittedModel


def write_outputs(model: FittedModel, summary: pd.DataFrame, folder: Path) -> None:
    """Saved model (``model/``), channel summary, decomposition, response and adstock curves, and plots."""
    folder = Path(folder)
    persistence.save(model, folder / "model")
    decomposition = analysis.decomposition(model)
    curves = analysis.response_curves(model)
    summary.to_csv(folder / "channel_summary.csv", index=False)
    decomposition.to_csv(folder / "decomposition.csv", index=False)
    curves.to_csv(folder / "response_curves.csv", index=False)
    analysis.adstock_curves(model).to_csv(folder / "adstock_curves.csv", index=False)
    for name, figure in (
        ("fit", plots.plot_fit(model, decomposition)),
        ("decomposition", plots.plot_decomposition(model, decomposition)),
        ("response_curves", plots.plot_response_curves(model, curves)),
    ):
        figure.savefig(folder / f"{name}.png", dpi=110)
        plt.close(figure)
