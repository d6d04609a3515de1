"""Which model versions to compare, and their posteriors, from the MLflow registry.

The version under review is the one a training run registered for a market. It is compared with the
market's reference: the ``champion`` alias when that is another version, else (the new version was
already auto-promoted) the latest earlier version that passed the gate. Each version's saved model
(posterior NetCDF, spec, scaling) is the artifact of the model its MLflow run logged, loaded back
with ``RegistryStore.load_run_model``: the draws themselves, not the summaries, so drift sees the
whole posterior.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipelines.registry.promotion import CHAMPION
from pipelines.registry.store import RegistryStore


@dataclass(frozen=True)
class VersionPair:
    """One market's version under review and the version it is compared with (None: its first version)."""

    brand: str
    market: str
    model_name: str
    challenger_version: str
    challenger_run_id: str
    champion_version: str | None
    champion_run_id: str | None


def reference_version(
    store: RegistryStore, model_name: str, new_version: str, history: pd.DataFrame, brand: str, market: str
) -> tuple[str, str] | None:
    """(version, MLflow run id) of the champion, or of the latest earlier gate-passing version; None if none.

    The champion's tags must name ``brand``/``market`` (see ``RegistryStore.market_run_id``).
    """
    champion = store.alias_version(model_name, CHAMPION)
    if champion is not None and champion != str(new_version):
        return champion, store.market_run_id(model_name, champion, brand, market)
    earlier = history[
        (history["model_name"] == model_name)
        & (history["status"] == "success")
        & (history["model_version"].astype(int) < int(new_version))
    ]
    if earlier.empty:
        return None
    latest = earlier.loc[earlier["model_version"].astype(int).idxmax()]
    return str(latest["model_version"]), str(latest["mlflow_run_id"])
