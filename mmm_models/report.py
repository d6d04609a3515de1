"""A fit report a person reads in a terminal: data, sampler, diagnostics, and the channel table."""

from __future__ import annotations

import pandas as pd

from mmm_models.diagnostics import Diagnostics
from mmm_models.fitted import FittedModel


def readable(value: float) -> str:
    """A number as people read it: 361,234 (not 3.61e+05) from 100 up, three significant digits below."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def channel_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The channel summary as readable strings: mean [90% HDI]."""

    def cell(row: pd.Series, quantity: str, fmt: str | None = None) -> str:
        show = readable if fmt is None else (lambda v: f"{v:{fmt}}")
        return (
            f"{show(row[f'{quantity}_mean'])} [{show(row[f'{quantity}_hdi_low'])}, {show(row[f'{quantity}_hdi_high'])}]"
        )

    return pd.DataFrame(
        {
            "channel": summary["channel"],
            "spend": summary["spend"].map(readable),
            "contribution share": [cell(r, "contribution_share", ".1%") for _, r in summary.iterrows()],
            "ROAS": [cell(r, "roas") for _, r in summary.iterrows()],
            "marginal ROAS": [cell(r, "marginal_roas") for _, r in summary.iterrows()],
            "half-life (weeks)": [cell(r, "adstock_half_life", ".2f") for _, r in summary.iterrows()],
            "half-saturation spend/week": [cell(r, "half_saturation_spend") for _, r in summary.iterrows()],
        }
    )


def format_report(model: FittedModel, diagnostics: Diagnostics, summary: pd.DataFrame) -> str:
    dates = model.data[model.spec.date_column]
    s = model.settings
    checks = [
        ("max R-hat", f"{diagnostics.max_rhat:.3f}"),
        ("min bulk ESS", f"{diagnostics.min_ess_bulk:.0f}"),
        ("min tail ESS", f"{diagnostics.min_ess_tail:.0f}"),
        ("divergences", f"{diagnostics.divergences}"),
        ("min BFMI", f"{diagnostics.min_bfmi:.2f}"),
        ("R2 / MAPE in sample", f"{diagnostics.r2_train:.3f} / {diagnostics.mape_train:.1%}"),
    ]
    if diagnostics.r2_holdout is not None:
        checks.append(
            (
                f"R2 / MAPE last {diagnostics.holdout_weeks} weeks held out",
                f"{diagnostics.r2_holdout:.3f} / {diagnostics.mape_holdout:.1%}",
            )
        )
    lines = [
        f"Model {model.spec.name!r}, market {model.market!r}",
        f"  data: {len(dates)} weeks, {dates.iloc[0].date()} .. {dates.iloc[-1].date()}; "
        f"target {model.spec.target.column!r} ({model.spec.target.likelihood}, {model.spec.target.link} link)",
        f"  sampler: {s.sampler}, {s.chains} chains x {s.draws} draws ({s.tune} tuning), seed {s.seed}; "
        f"wall {model.timings.get('wall_s', float('nan')):.1f} s"
        + (" including compilation" if model.timings.get("compiled") else " (compiled model reused)"),
        "",
        "Diagnostics",
        *(f"  {name:<40} {value}" for name, value in checks),
        "",
        "Channels over the training window (posterior mean [90% HDI])",
        channel_table(summary).to_string(index=False),
    ]
    return "\n".join(lines)
