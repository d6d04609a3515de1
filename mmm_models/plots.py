"""Plots a reviewer reads: fit over time, decomposition, response curves (matplotlib, no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from mmm_models.fitted import FittedModel


def plot_fit(model: FittedModel, decomposition: pd.DataFrame) -> Figure:
    """Observed target against the expected outcome, held-out weeks shaded."""
    fig, ax = plt.subplots(figsize=(11, 4))
    ax.plot(decomposition["date"], decomposition["observed"], color="black", lw=1, label="observed")
    ax.plot(decomposition["date"], decomposition["expected"], color="tab:blue", lw=1.5, label="model (posterior mean)")
    held_out = decomposition.loc[decomposition["held_out"], "date"]
    if len(held_out):
        ax.axvspan(held_out.iloc[0], held_out.iloc[-1], color="tab:orange", alpha=0.15, label="held out")
    ax.set_title(f"{model.market}: fit of {model.spec.target.column}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def plot_decomposition(model: FittedModel, decomposition: pd.DataFrame) -> Figure:
    """Stacked weekly contributions of baseline parts and channels."""
    parts = [c for c in decomposition.columns if c not in ("date", "observed", "expected", "held_out")]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    ax.stackplot(decomposition["date"], *[decomposition[p].clip(lower=0) for p in parts], labels=parts, alpha=0.8)
    ax.plot(decomposition["date"], decomposition["observed"], color="black", lw=1, label="observed")
    ax.set_title(f"{model.market}: decomposition of {model.spec.target.column}")
    ax.legend(loc="upper left", ncol=4, fontsize="small")
    fig.tight_layout()
    return fig


def plot_response_curves(model: FittedModel, curves: pd.DataFrame) -> Figure:
    """Per channel: contribution (top) and marginal ROAS (bottom) against total spend, with 90% HDI
    bands; the dot marks the current spend."""
    channels = list(dict.fromkeys(curves["channel"]))
    fig, axes = plt.subplots(2, len(channels), figsize=(4 * len(channels), 6.5), squeeze=False, sharex="col")
    for column, channel in enumerate(channels):
        curve = curves[curves["channel"] == channel]
        current = curve.iloc[(curve["multiplier"] - 1.0).abs().argmin()]
        for row, quantity in enumerate(("contribution", "marginal_roas")):
            ax = axes[row][column]
            ax.fill_between(curve["spend"], curve[f"{quantity}_hdi_low"], curve[f"{quantity}_hdi_high"], alpha=0.3)
            ax.plot(curve["spend"], curve[f"{quantity}_mean"])
            ax.plot(current["spend"], current[f"{quantity}_mean"], "o", color="black")
        axes[0][column].set_title(channel)
        axes[1][column].set_xlabel("spend in period")
    axes[0][0].set_ylabel("contribution")
    axes[1][0].set_ylabel("marginal ROAS")
    fig.suptitle(f"{model.market}: response curves")
    fig.tight_layout()
    return fig


def plot_channel_multipliers(model: FittedModel, multipliers: pd.DataFrame) -> Figure:
    """Each time-varying channel's weekly effectiveness multiplier with its 90% HDI band; the dashed
    line at 1 is the channel's typical (geometric-mean) effectiveness over the training window."""
    channels = list(dict.fromkeys(multipliers["channel"]))
    fig, axes = plt.subplots(len(channels), 1, figsize=(11, 2.8 * len(channels)), squeeze=False, sharex=True)
    for ax, channel in zip(axes[:, 0], channels, strict=True):
        path = multipliers[multipliers["channel"] == channel]
        ax.fill_between(path["date"], path["hdi_low"], path["hdi_high"], alpha=0.3, label="90% HDI")
        ax.plot(path["date"], path["mean"], label="posterior mean")
        ax.axhline(1.0, color="black", lw=0.8, ls="--")
        ax.set_ylabel(f"{channel} multiplier")
    axes[0][0].legend(loc="upper left")
    fig.suptitle(f"{model.market}: time-varying channel effectiveness")
    fig.tight_layout()
    return fig
