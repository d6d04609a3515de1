"""The `mmm fit` command: report, outputs, and a clean error on bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from jobs.cli import main
from mmm_models.spec import ModelSpec
from tests.conftest import EXAMPLE_CSV, EXAMPLE_SPEC, ROOT, SHARED_DATA

MULTI_GEO_CSV = SHARED_DATA / "mmm_multidimensional_example.csv"
MULTI_GEO_SPEC = ROOT / "conf" / "models" / "mmm_multidimensional_example.yaml"

SHORT_CHAINS = ["--chains", "2", "--draws", "300", "--tune", "300"]  # quick, enough for a report


def test_fit_prints_report_and_writes_outputs(tmp_path: Path, capsys) -> None:
    status = main(
        [
            "fit",
            "--spec",
            str(EXAMPLE_SPEC),
            "--data",
            str(EXAMPLE_CSV),
            *SHORT_CHAINS,
            "--seed",
            "1",
            "--holdout-weeks",
            "13",
            "--output",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "max R-hat" in out and "held out" in out and "x1" in out and "ROAS" in out
    for name in (
        "channel_summary.csv",
        "decomposition.csv",
        "response_curves.csv",
        "fit.png",
        "decomposition.png",
        "response_curves.png",
        "model/posterior.nc",
        "model/spec.yaml",
    ):
        assert (tmp_path / name).exists(), name


def test_bad_spec_exits_1_with_message(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\ntarget: {column: y}\nchannels: [{name: x1, adstock: {type: geometric, l_max: -1}}]\n")
    assert main(["fit", "--spec", str(spec), "--data", str(EXAMPLE_CSV)]) == 1
    assert "channels.0.adstock.geometric.l_max" in capsys.readouterr().err


def test_bad_data_exits_1_with_message(tmp_path: Path, capsys) -> None:
    data = tmp_path / "bad.csv"
    data.write_text(EXAMPLE_CSV.read_text().replace(",0.0,0.0,0.0,92,0", ",-1.0,0.0,0.0,92,0", 1))
    assert main(["fit", "--spec", str(EXAMPLE_SPEC), "--data", str(data)]) == 1
    assert "negative spend" in capsys.readouterr().err


def test_fit_with_lift_tests_reports_them(tmp_path: Path, capsys) -> None:
    from mmm_models.simulator import SimulationConfig, simulate_lift_tests, simulate_market, simulation_spec

    config = SimulationConfig(weeks=78, channels=("tv", "search"))
    market = simulate_market(config, seed=2)
    market.data.to_csv(tmp_path / "market.csv", index=False)
    simulate_lift_tests(market, seed=1).to_csv(tmp_path / "lift.csv", index=False)
    (tmp_path / "spec.yaml").write_text(simulation_spec(config).to_yaml())
    status = main(
        [
            "fit",
            "--spec",
            str(tmp_path / "spec.yaml"),
            "--data",
            str(tmp_path / "market.csv"),
            "--lift-tests",
            str(tmp_path / "lift.csv"),
            *SHORT_CHAINS,
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "Lift tests (observed against the calibrated model)" in out and "z_score" in out


@pytest.mark.slow
def test_fit_with_market_column_fits_one_brand_model(tmp_path: Path, capsys) -> None:
    """The shared 2-geo example as one brand model, x1 time-varying: a report per geo with its ROAS by
    quarter, the brand-level parameters, and each geo's outputs (multiplier plot included) in its folder."""
    spec = ModelSpec.from_yaml(MULTI_GEO_SPEC).model_dump(mode="json")
    spec["time_varying"] = {"basis_functions": 12, "media": [{"channels": ["x1"]}]}
    (tmp_path / "spec.yaml").write_text(ModelSpec.from_dict(spec).to_yaml())
    args = ["fit", "--spec", str(tmp_path / "spec.yaml"), "--data", str(MULTI_GEO_CSV), "--market", "pymc"]
    status = main([*args, "--market-column", "geo", *SHORT_CHAINS, "--output", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert status == 0
    assert "Brand model 'pymc': one hierarchical model over 2 markets" in out
    assert "channel_effect_brand[x1]" in out and "market 'pymc/geo_a'" in out and "market 'pymc/geo_b'" in out
    assert out.count("ROAS by quarter") == 2
    for geo in ("geo_a", "geo_b"):
        for name in ("channel_summary.csv", "channel_multipliers.csv", "roas_by_quarter.csv", "model/posterior.nc"):
            assert (tmp_path / "out" / geo / name).exists(), (geo, name)
        assert (tmp_path / "out" / geo / "channel_multipliers.png").stat().st_size > 10_000
    brand_level = pd.read_csv(tmp_path / "out" / "brand_summary.csv", index_col=0)
    assert {"channel_effect_brand[x1]", "channel_effect_market_sd[x2]"} <= set(brand_level.index)


def test_unknown_market_column_exits_1_with_message(capsys) -> None:
    args = ["fit", "--spec", str(MULTI_GEO_SPEC), "--data", str(MULTI_GEO_CSV), "--market-column", "region"]
    assert main(args) == 1
    assert "--market-column 'region' is not in the data" in capsys.readouterr().err


def test_the_cli_starts_without_the_model_stack() -> None:
    """``mmm --help`` stays fast (0.5 s here, from 4-5 s) because the parser loads no JAX, ArviZ, pandas or Spark."""
    import subprocess
    import sys

    heavy = {"jax", "arviz", "pandas", "pyspark", "pymc", "pytensor", "mlflow", "prefect"}
    code = f"import sys, jobs.cli; print(sorted({{m.split('.')[0] for m in sys.modules}} & {heavy!r}))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
