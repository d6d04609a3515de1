"""Save and load a fitted model: one folder with the posterior (NetCDF), spec, scaling and data.

``posterior.nc`` holds the posterior, the sampler statistics, the training frame (group
``constant_data``) and, when the model has them, the predictive groups of ``mmm_models.predictive``
(``observed_data``, ``log_likelihood``, prior and predictive draws); ``spec.yaml``, ``scaling.json``
and ``fit.json`` hold the rest. Loading gives a model whose predictions are identical to the original's.
"""

from __future__ import annotations

import json
from pathlib import Path

import arviz as az
import pandas as pd
import xarray as xr

from mmm_models.data import ScalingFactors
from mmm_models.fitted import FittedModel
from mmm_models.fitting import FitSettings
from mmm_models.predictive import PREDICTIVE_GROUPS
from mmm_models.spec import ModelSpec

POSTERIOR_FILE = "posterior.nc"
SPEC_FILE = "spec.yaml"
SCALING_FILE = "scaling.json"
FIT_FILE = "fit.json"
LIFT_FILE = "lift_tests.csv"  # only when the fit was calibrated with lift tests
KEPT_GROUPS = ("posterior", "sample_stats", *PREDICTIVE_GROUPS)


def save(model: FittedModel, folder: str | Path) -> Path:
    """Write ``model`` into ``folder`` (created if needed); returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    idata = az.InferenceData(**{g: model.idata[g] for g in KEPT_GROUPS if g in model.idata.groups()})
    frame = model.data.rename(columns={model.spec.date_column: "week"}).set_index("week")
    idata.add_groups(constant_data=xr.Dataset.from_dataframe(frame))
    # uncompressed: zlib saves ~7% of the size of posterior draws and costs a third of the write time
    idata.to_netcdf(str(folder / POSTERIOR_FILE), compress=False)
    (folder / SPEC_FILE).write_text(model.spec.to_yaml())
    (folder / SCALING_FILE).write_text(json.dumps(model.scaling.to_dict(), indent=2))
    fit_info = {"market": model.market, "settings": model.settings.model_dump(), "timings": model.timings}
    (folder / FIT_FILE).write_text(json.dumps(fit_info, indent=2))
    if model.lift_tests is not None:
        model.lift_tests.to_csv(folder / LIFT_FILE, index=False)
    return folder


def load(folder: str | Path) -> FittedModel:
    """Read a model written by ``save``."""
    folder = Path(folder)
    missing = [f for f in (POSTERIOR_FILE, SPEC_FILE, SCALING_FILE, FIT_FILE) if not (folder / f).exists()]
    if missing:
        raise FileNotFoundError(f"{folder} is not a saved model: missing {missing}")
    spec = ModelSpec.from_yaml(folder / SPEC_FILE)
    idata = az.from_netcdf(str(folder / POSTERIOR_FILE))
    frame: pd.DataFrame = idata.constant_data.to_dataframe().reset_index()
    frame = frame.rename(columns={"week": spec.date_column})
    fit_info = json.loads((folder / FIT_FILE).read_text())
    return FittedModel(
        spec=spec,
        scaling=ScalingFactors.from_dict(json.loads((folder / SCALING_FILE).read_text())),
        idata=az.InferenceData(**{g: idata[g].load() for g in KEPT_GROUPS if g in idata.groups()}),
        data=frame,
        settings=FitSettings(**fit_info["settings"]),
        market=fit_info["market"],
        timings=fit_info["timings"],
        lift_tests=pd.read_csv(folder / LIFT_FILE, parse_dates=["start", "end"])
        if (folder / LIFT_FILE).exists()
        else None,
    )
